"""Stage: runtime. The local server's file system class: Hadoop's, without a process per `chmod`.

pyspark ships no Hadoop native library, so Hadoop's RawLocalFileSystem starts a `chmod` process
for every file and folder Spark creates with a permission (about 400 in a one-more-day re-run of
the demo catalog; without them it runs ~8% faster here: docs/PERFORMANCE.md).
NioLocalFileSystem.java, beside this module, sets them through Java instead. The JDK's `javac`
compiles it once per machine into the user's cache; without a JDK the server keeps Hadoop's class
(slower, same tables), as it does with TABLESMITH_HADOOP_FS=hadoop (to rule ours out).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.spec.cache import user_cache_root

SOURCE = Path(__file__).with_name("NioLocalFileSystem.java")
CLASS_NAME = "tablesmith.hadoop.NioLocalFileSystem"
HADOOP_CLASS_NAME = "org.apache.hadoop.fs.RawLocalFileSystem"
_CLASS_FILE = Path(*CLASS_NAME.split(".")).with_suffix(".class")
CHOICE_ENV = "TABLESMITH_HADOOP_FS"  # "hadoop": Hadoop's class even when ours compiles
_JAVA_RELEASE = "17"  # Spark 4's oldest Java: the class loads on any JVM Spark runs on


@dataclass(frozen=True)
class LocalFileSystem:
    """What `fs.file.impl` names, the folder that holds it (None: on Spark's own class path), and
    why Hadoop's slower class is used when it is."""

    class_name: str
    class_path: Path | None = None
    why_hadoops: str = ""


def hadoop_jar() -> Path | None:
    """The Hadoop API jar pyspark ships (what the class is compiled against)."""
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    return jars[-1] if jars else None


def find_javac() -> Path | None:
    """`javac` of the JDK whose `java` Spark starts (JAVA_HOME, else `java` on PATH), else any on PATH."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "javac")
    java = shutil.which("java")
    if java:
        candidates.append(Path(java).resolve().parent / "javac")
    javac = shutil.which("javac")
    if javac:
        candidates.append(Path(javac))
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def local_file_system(cache: Path | None = None) -> LocalFileSystem:
    """The class for `fs.file.impl`: ours, compiled now unless the cache has it, or Hadoop's."""
    if os.environ.get(CHOICE_ENV) == "hadoop":
        return LocalFileSystem(HADOOP_CLASS_NAME, why_hadoops=f"{CHOICE_ENV}=hadoop")
    jar = hadoop_jar()
    if jar is None:
        return LocalFileSystem(HADOOP_CLASS_NAME, why_hadoops="pyspark ships no hadoop-client-api jar")
    key = hashlib.sha256(SOURCE.read_bytes() + jar.name.encode()).hexdigest()[:16]
    folder = (cache or user_cache_root()) / "hadoop-fs" / key
    if (folder / _CLASS_FILE).is_file():
        return LocalFileSystem(CLASS_NAME, folder)
    javac = find_javac()
    if javac is None:
        return LocalFileSystem(HADOOP_CLASS_NAME, why_hadoops="no `javac` (a JDK, e.g. openjdk-17-jdk-headless, "
                               "lets Spark set file permissions without starting a `chmod` process for each file)")
    why = _compile(javac, jar, folder)
    return LocalFileSystem(HADOOP_CLASS_NAME, why_hadoops=why) if why else LocalFileSystem(CLASS_NAME, folder)


def _compile(javac: Path, jar: Path, folder: Path) -> str:
    """Compiles SOURCE into `folder` (whole or not at all); returns why not, or ''."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".compiling-") as scratch:
            classes = Path(scratch) / "classes"
            done = subprocess.run(
                [str(javac), "--release", _JAVA_RELEASE, "-nowarn", "-cp", str(jar), "-d", str(classes), str(SOURCE)],
                capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                return f"{javac} could not compile {SOURCE.name}: {(done.stderr or done.stdout).strip()[:500]}"
            try:
                os.rename(classes, folder)
            except OSError:
                if not (folder / _CLASS_FILE).is_file():  # not another process's copy, finished first
                    raise
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not compile {SOURCE.name} into {folder}: {exc}"
    return ""
