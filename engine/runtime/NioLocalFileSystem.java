package tablesmith.hadoop;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's raw local file system, setting permissions through Java instead of a `chmod` process.
 *
 * <p>Without Hadoop's native library (pyspark ships none), RawLocalFileSystem starts `chmod` for
 * every file and folder it creates with a permission: about 400 processes in a one-more-day re-run
 * of the demo catalog. Compiled by engine/runtime/hadoop_fs.py; the sticky bit, which Java's POSIX
 * permissions cannot express, still goes through Hadoop's own code.
 */
public class NioLocalFileSystem extends RawLocalFileSystem {
  // Mode bit i (0 = others' execute ... 8 = owner's read), as `chmod` reads an octal mode.
  private static final PosixFilePermission[] BITS = {
    PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
    PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
    PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
  };

  @Override
  public void setPermission(Path p, FsPermission permission) throws IOException {
    if (permission.getStickyBit()) {
      super.setPermission(p, permission);
      return;
    }
    Set<PosixFilePermission> wanted = EnumSet.noneOf(PosixFilePermission.class);
    int mode = permission.toShort();
    for (int bit = 0; bit < BITS.length; bit++) {
      if ((mode & (1 << bit)) != 0) {
        wanted.add(BITS[bit]);
      }
    }
    try {
      Files.setPosixFilePermissions(pathToFile(p).toPath(), wanted);
    } catch (NoSuchFileException e) {
      throw new FileNotFoundException("File " + p + " does not exist");  // what Hadoop's callers expect
    }
  }
}
