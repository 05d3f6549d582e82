import java.io.IOException;
import java.net.URI;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Writes through Hadoop's FileSystem API with the local file system class named by args[0] under
 * the folder args[1], as Spark's writers do (tests/runtime/test_hadoop_fs.py compares the modes).
 */
public class LocalFileSystemCheck {
  public static void main(String[] args) throws Exception {
    Configuration conf = new Configuration();
    conf.set("fs.file.impl", args[0]);
    conf.set("fs.permissions.umask-mode", "027");
    FileSystem fs = FileSystem.get(new URI("file:///"), conf);
    System.out.println("class " + fs.getClass().getName());
    Path root = new Path(args[1]);
    fs.mkdirs(new Path(root, "table/part=1"), new FsPermission((short) 0750));
    try (FSDataOutputStream out = fs.create(new Path(root, "table/part=1/data.parquet"), true)) {
      out.writeBytes("rows");
    }
    try (FSDataOutputStream out = fs.create(new Path(root, "table/other.parquet"), new FsPermission((short) 0604),
        true, 4096, (short) 1, 1 << 20, null)) {
      out.writeBytes("rows");
    }
    fs.setPermission(new Path(root, "table/part=1"), new FsPermission((short) 0711));
    try {
      fs.setPermission(new Path(root, "missing"), new FsPermission((short) 0644));
      System.out.println("missing: no error");
    } catch (IOException e) {
      System.out.println("missing: " + e.getClass().getSimpleName());
    }
  }
}
