"""Stage: runtime. One warm local Spark engine per output folder, shared by every command.

`session(layout)` connects to the folder's Spark Connect server, starting it on first use: a
detached process (`python -m engine.runtime.server serve <root>`) hosting the JVM, with the
folder's Hive/Derby catalog, listening on a free loopback port with a random token, recorded in
`<root>/server/server.json` (mode 0600). Later commands reuse it, so a re-run skips the JVM start.
It stops on `tablesmith stop` (`stop(layout)`), or by itself once no command has used it for
TABLESMITH_IDLE_MINUTES (default 30), or when its folder or its record there disappears, or when its JVM ends (a JVM can
die alone: code cache or memory exhausted). A run watches the server and its JVM (`ServerWatch`) and
fails within a second of their death, naming the server's log, instead of retrying a dead address.

Derby lets one process open the metastore, and the server holds it for its lifetime: everything
that reads the warehouse goes through the server (`session(layout)`, which `local_session` in
engine.runtime.local is), or runs after `tablesmith stop`. Connected commands hold a shared lock
on `<root>/server/clients.lock`; the server stops for idleness only when it can take that lock
exclusively, and keeps it while stopping, so a command never connects to a server going away.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.atomic import write_text
from engine.errors import UserError
from engine.runtime import hadoop_fs
from engine.runtime.layout import LocalLayout, write_spark_conf

DEFAULT_IDLE_MINUTES = 30.0
START_TIMEOUT = 300.0  # seconds; a loaded 2-core machine needs a minute to start a JVM
CHECK_EVERY = 2.0


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    token: str
    fingerprint: str
    instance: str
    jvm_pid: int = 0  # the JVM the server process hosts (its child): it can die alone (CodeCache, memory)

    @property
    def url(self) -> str:
        return f"sc://localhost:{self.port}"


def _info_file(layout: LocalLayout) -> Path:
    return layout.server_dir / "server.json"


def log_file(layout: LocalLayout) -> Path:
    """The server's output: its JVM's errors land here too."""
    return layout.server_dir / "server.log"


def observations_dir(layout: LocalLayout) -> Path:
    return layout.server_dir / "observed"


def fingerprint(layout: LocalLayout) -> str:
    """What a running server must have been started with to be reused: same settings, Spark and server code."""
    import pyspark

    digest = hashlib.sha256()
    digest.update(layout.spark_defaults().encode())
    digest.update(pyspark.__version__.encode())
    digest.update(sys.executable.encode())
    for module in ("server.py", "observed.py"):
        digest.update(Path(__file__).with_name(module).read_bytes())
    return digest.hexdigest()[:16]


def _exists(pid: int) -> bool:
    """A process with this pid exists (perhaps another user's, perhaps a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int) -> bool:
    if not _exists(pid):
        return False
    try:  # a recycled pid is not our server
        return b"engine.runtime.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid


def _jvm_alive(pid: int) -> bool:
    """The JVM runs (a dead one stays a zombie until its parent, the server process, reaps it)."""
    if not _exists(pid):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return not Path("/proc").is_dir()  # no /proc (macOS): trust the pid


def serving(info: ServerInfo) -> bool:
    """The server process and its JVM both run."""
    return _alive(info.pid) and (not info.jvm_pid or _jvm_alive(info.jvm_pid))


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def running(layout: LocalLayout) -> ServerInfo | None:
    """The folder's server, if one is up."""
    try:
        data = json.loads(_info_file(layout).read_text())
        info = ServerInfo(int(data["pid"]), int(data["port"]), str(data["token"]), str(data["fingerprint"]), str(data["instance"]),
                          int(data.get("jvm_pid", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(info.pid) else None


# -- client side -----------------------------------------------------------------------------------

_SESSIONS: dict[Path, tuple[str, Any]] = {}  # root -> (server instance, Spark Connect session)
_CLIENT_LOCKS: dict[Path, int] = {}  # root -> fd holding the shared clients lock for this process
_CHANNEL_LOCK = threading.Lock()


def _hold_client_lock(layout: LocalLayout) -> None:
    root = layout.root.resolve()
    if root in _CLIENT_LOCKS:
        return
    layout.server_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.server_dir / "clients.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a server is stopping (it holds the lock exclusively)
    _CLIENT_LOCKS[root] = fd


def release(layout: LocalLayout) -> None:
    """This process stops using the folder's server (it may then idle out)."""
    root = layout.root.resolve()
    _close_session(root)
    fd = _CLIENT_LOCKS.pop(root, None)
    if fd is not None:
        os.close(fd)


def reader_layout(layout: LocalLayout, info: ServerInfo | None) -> LocalLayout:
    """A reader (report, alerts, `local_session`: `large_input` None) does not know the input's size:
    the running server is taken whichever JIT a run chose for it, instead of restarting it."""
    if layout.large_input is None and info is not None:
        large = dataclasses.replace(layout, large_input=True)
        if info.fingerprint == fingerprint(large):
            return large
    return layout


def ensure(layout: LocalLayout, echo: Callable[[str], None] = print) -> ServerInfo:
    """The folder's server, started if none runs (or if it runs other settings or code)."""
    _require_java()
    write_spark_conf(layout)
    _hold_client_lock(layout)
    with _start_lock(layout):
        info = running(layout)
        settled = reader_layout(layout, info)
        if settled is not layout:
            layout = settled
            write_spark_conf(layout)  # the settings the running server has
        wanted = fingerprint(layout)
        if info is not None and info.fingerprint != wanted:
            echo("restarting the local Spark server (its settings or code changed)")
            _terminate(layout, info)
            info = None
        if info is not None and _listening(info.port):
            return info
        if info is not None:
            _terminate(layout, info)  # alive but deaf
        return _start(layout, wanted, echo)


def session(layout: LocalLayout, echo: Callable[[str], None] = print) -> Any:
    """A Spark Connect session on the folder's warm server (started on first use)."""
    info = ensure(layout, echo)
    root = layout.root.resolve()
    cached = _SESSIONS.get(root)
    if cached and cached[0] == info.instance:
        return cached[1]
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    with _CHANNEL_LOCK:  # the token travels in the environment: one channel built at a time
        os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # pyspark.sql.functions dispatches on this
        os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = info.token  # read when the channel is built
        spark = ConnectSession.builder.remote(info.url).create()
    _quiet_query_errors()
    _SESSIONS[root] = (info.instance, spark)
    return spark


def _quiet_query_errors() -> None:
    """pyspark logs every error that carries a query context as JSON with the JVM's stack trace on
    stderr, as it is raised; the run reports each failed table itself, in its spec's terms."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True


@contextlib.contextmanager
def answered_at_once(spark: Any) -> Iterator[None]:
    """Commands whose answer comes at once (registration, DDL) sent as one plain call each.

    Spark Connect makes every operation reattachable by default, for networks that drop long
    streams: two server threads and a second call to release it. To a local server that is a
    third of each registration call's time (5 ms against 8-11 ms), and a run makes ~90 of them in
    a row. The run's own event stream stays reattachable."""
    client = spark.client
    client.disable_reattachable_execute()
    try:
        yield
    finally:
        client.enable_reattachable_execute()


class ServerWatch:
    """Fails a command whose server dies under it (a JVM can die alone: code cache, memory, kill -9).

    A thread checks every `every` seconds that the server process and its JVM still run. When either
    is gone it closes the command's channel to the server, so a call waiting on it (the client would
    otherwise retry a dead address for minutes) fails at once, and the command raises `died()`."""

    def __init__(self, layout: LocalLayout, info: ServerInfo, spark: Any, every: float = 0.5):
        self.layout, self.info, self.spark, self.every = layout, info, spark, every
        try:
            self.log_start = log_file(layout).stat().st_size  # what the server prints from now on is this run's
        except OSError:
            self.log_start = 0
        self.dead = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tablesmith-server-watch", daemon=True)

    def __enter__(self) -> "ServerWatch":
        self._thread.start()
        return self

    def __exit__(self, kind: Any, error: Any, _: Any) -> None:
        self._done.set()
        self._thread.join()
        if error is not None and not isinstance(error, UserError) and (self.dead.is_set() or not serving(self.info)):
            raise self.died() from error

    def _watch(self) -> None:
        while not self._done.wait(self.every):
            if not serving(self.info):
                self.dead.set()
                _SESSIONS.pop(self.layout.root.resolve(), None)
                try:
                    self.spark.client._channel.close()  # no RPC: its calls fail now instead of retrying
                except Exception:  # noqa: BLE001 - a channel half gone is as good as closed
                    pass
                return

    def check(self) -> None:
        """Raise `died()` if the server died (a failure seen by the command may be that death)."""
        if self.dead.is_set() or not serving(self.info):
            self.dead.set()
            raise self.died()

    def died(self) -> UserError:
        log = log_file(self.layout)
        try:
            with open(log, "rb") as output:
                output.seek(self.log_start)
                printed = [line for line in output.read().decode(errors="replace").splitlines() if line.strip()][-12:]
        except OSError:
            printed = []
        gone = (f"its JVM (pid {self.info.jvm_pid}) ended" if self.info.jvm_pid and not _jvm_alive(self.info.jvm_pid)
                else f"its process (pid {self.info.pid}) ended")
        return UserError(f"the local Spark server died during the run: {gone}; see its log {log}"
                         + (", which ends with:\n" + "\n".join(printed) if printed else "")
                         + "\nthe next `tablesmith run` starts a new server and redoes what this run was changing")


class _start_lock:
    """Serialises starting and stopping a folder's server between processes."""

    def __init__(self, layout: LocalLayout):
        self.path = layout.server_dir / "start.lock"

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_: Any) -> None:
        os.close(self.fd)


def _require_java() -> None:
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise UserError("Spark needs Java 17: install it (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME")


def _start(layout: LocalLayout, wanted: str, echo: Callable[[str], None]) -> ServerInfo:
    instance = secrets.token_hex(8)
    _info_file(layout).unlink(missing_ok=True)
    # What servers that died left (a server removes its own folder when it stops): any server still
    # alive has lost its record, so it serves no one and is stopping (`why_gone`).
    shutil.rmtree(layout.server_temp(), ignore_errors=True)
    echo(f"starting the local Spark server for {layout.root} (kept warm; `tablesmith stop` ends it)")
    file_system = hadoop_fs.local_file_system()
    if file_system.why_hadoops:
        echo(f"note: Hadoop's own local file system, slower: {file_system.why_hadoops}")
    log = open(log_file(layout), "ab")
    env = {**os.environ, "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)  # the server is a classic driver
    env.pop("SPARK_REMOTE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.runtime.server", "serve", str(layout.root.resolve()),
         "--instance", instance, "--fingerprint", wanted],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
        start_new_session=True,  # its own process group: a Ctrl-C in the terminal does not stop it
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        info = running(layout)
        if info is not None and info.instance == instance:
            return info
        if process.poll() is not None:
            break
        time.sleep(0.2)
    if process.poll() is None:
        process.kill()
    tail = log_file(layout).read_text(errors="replace").splitlines()[-15:]
    raise UserError(f"the local Spark server did not start (log {log_file(layout)}):\n" + "\n".join(tail))


def stop(layout: LocalLayout) -> int | None:
    """Stop the folder's server; returns its pid, None when none ran."""
    release(layout)
    with _start_lock(layout):
        info = running(layout)
        if info is None:
            _info_file(layout).unlink(missing_ok=True)
            return None
        _terminate(layout, info)
        return info.pid


def _close_session(root: Path) -> None:
    cached = _SESSIONS.pop(root, None)
    if cached is not None:
        try:
            cached[1].stop()  # releases the session on the server while it still listens
        except Exception:  # noqa: BLE001 - the server may be gone already
            pass


def _terminate(layout: LocalLayout, info: ServerInfo, timeout: float = 60.0) -> None:
    _close_session(layout.root.resolve())
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(info.pid):
        os.killpg(info.pid, signal.SIGKILL)  # the server leads its process group: the JVM goes too
    _info_file(layout).unlink(missing_ok=True)


# -- server side -----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(root: Path, instance: str, wanted: str, idle_seconds: float) -> int:
    layout = LocalLayout(root)
    os.environ["SPARK_CONF_DIR"] = str(layout.conf_dir)
    token = secrets.token_hex(16)
    os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = token  # the server reads it at start
    temp = layout.server_temp(instance)
    temp.mkdir(parents=True, exist_ok=True)
    # Read by spark-submit's launcher for the driver JVM; not in spark-defaults.conf, which is the
    # same for every server of the folder (its fingerprint decides reuse).
    os.environ["SPARK_SUBMIT_OPTS"] = f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} -Djava.io.tmpdir={temp.resolve()}".strip()
    stopping: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append("stopped"))
    signal.signal(signal.SIGINT, lambda *_: stopping.append("interrupted"))

    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    from engine.runtime import observed

    port = _free_port()
    conf = SparkConf(loadDefaults=True).setAll([
        ("spark.master", "local[*]"),
        ("spark.app.name", f"tablesmith {root}"),
        ("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin"),
        ("spark.connect.grpc.binding.address", "127.0.0.1"),
        ("spark.connect.grpc.binding.port", str(port)),
        (f"spark.scheduler.listenerbus.eventqueue.{observed.QUEUE}.capacity", "100000"),
    ])
    context = SparkContext(conf=conf)
    SparkSession(context)
    observed.install(context, observations_dir(layout))
    jvm = context._gateway.proc  # pyspark's launcher: spark-submit execs the JVM in this process
    info = {"pid": os.getpid(), "jvm_pid": jvm.pid, "port": port, "token": token, "fingerprint": wanted,
            "instance": instance, "started": time.time()}
    path = _info_file(layout)
    write_text(path, json.dumps(info), mode=0o600)  # holds the token
    print(f"tablesmith: Spark server {instance} listening on 127.0.0.1:{port}", flush=True)

    clients = os.open(layout.server_dir / "clients.lock", os.O_RDWR | os.O_CREAT, 0o600)
    reason = watch(root, clients, idle_seconds, lambda: bool(context.statusTracker().getActiveJobsIds()), stopping,
                   engine=lambda: why_gone(jvm, path, instance))
    print(f"tablesmith: Spark server {instance} stopping ({reason})", flush=True)
    if _names(path, instance):
        path.unlink(missing_ok=True)
    if jvm.poll() is None:
        context.stop()
    shutil.rmtree(temp, ignore_errors=True)
    os.close(clients)
    return 0 if jvm.returncode in (None, 0) else 1


def watch(root: Path, clients: int, idle_seconds: float, busy: Callable[[], bool], stopping: list[str],
          engine: Callable[[], str] = lambda: "") -> str:
    """Wait until the server should stop; returns why. Stopping for idleness keeps the clients lock
    (fd `clients`) exclusively, so a command arriving meanwhile waits and then starts a new server.
    `engine`: why the server can serve no one (`why_gone`), "" while it can."""
    last_busy = time.monotonic()
    while not stopping:
        time.sleep(CHECK_EVERY)
        if not root.is_dir():
            return "its folder is gone"
        ended = engine()
        if ended:
            return ended
        try:
            fcntl.flock(clients, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            last_busy = time.monotonic()  # a command is connected
            continue
        if time.monotonic() - last_busy > idle_seconds and not busy():
            return f"idle for {idle_seconds / 60:.1f} min"
        fcntl.flock(clients, fcntl.LOCK_UN)
    return stopping[0]


def why_gone(jvm: subprocess.Popen, record: Path, instance: str) -> str:
    """Why this server can serve no one, "" while it can: its JVM ended, or its record is gone or names
    another server (its folder removed and made again, `rm -rf out && tablesmith run`: no command finds
    this server any more, and a new one may already serve the new folder)."""
    if jvm.poll() is not None:
        return f"its JVM ended (exit code {jvm.returncode})"
    return "" if _names(record, instance) else "its record (server/server.json) is gone or names another server"


def _names(record: Path, instance: str) -> bool:
    """The server record at `record` is this server's (a readable record naming `instance`)."""
    try:
        return json.loads(record.read_text()).get("instance") == instance
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.runtime.server")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("serve", help="host the warm Spark Connect server of an output folder")
    start.add_argument("root", type=Path)
    start.add_argument("--instance", required=True)
    start.add_argument("--fingerprint", required=True)
    args = parser.parse_args(argv)
    idle = float(os.environ.get("TABLESMITH_IDLE_MINUTES", DEFAULT_IDLE_MINUTES)) * 60
    return serve(args.root, args.instance, args.fingerprint, idle)


if __name__ == "__main__":
    sys.exit(main())
