"""Stage: runtime. One warm local Spark engine per output folder, shared by every command.

`session(layout)` connects to the folder's Spark Connect server, starting it on first use: a
detached process (`python -m engine.runtime.server serve <root>`) hosting the JVM, with the
folder's Hive/Derby catalog, listening on a free loopback port with a random token, recorded in
`<root>/server/server.json` (mode 0600). Later commands reuse it, so a re-run skips the JVM start.
It stops on `tablesmith stop` (`stop(layout)`), or by itself once no command has used it for
TABLESMITH_IDLE_MINUTES (default 30), or when its folder disappears.

Derby lets one process open the metastore, and the server holds it for its lifetime: everything
that reads the warehouse goes through the server (`session(layout)`, which `local_session` in
engine.runtime.local is), or runs after `tablesmith stop`. Connected commands hold a shared lock
on `<root>/server/clients.lock`; the server stops for idleness only when it can take that lock
exclusively, and keeps it while stopping, so a command never connects to a server going away.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.atomic import write_text
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

    @property
    def url(self) -> str:
        return f"sc://localhost:{self.port}"


def _info_file(layout: LocalLayout) -> Path:
    return layout.server_dir / "server.json"


def _log_file(layout: LocalLayout) -> Path:
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a recycled pid is not our server
        return b"engine.runtime.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid


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
        info = ServerInfo(int(data["pid"]), int(data["port"]), str(data["token"]), str(data["fingerprint"]), str(data["instance"]))
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


def ensure(layout: LocalLayout, echo: Callable[[str], None] = print) -> ServerInfo:
    """The folder's server, started if none runs (or if it runs other settings or code)."""
    _require_java()
    write_spark_conf(layout)
    _hold_client_lock(layout)
    with _start_lock(layout):
        info = running(layout)
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
    _SESSIONS[root] = (info.instance, spark)
    return spark


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
    import shutil

    from engine.errors import UserError

    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise UserError("Spark needs Java 17: install it (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME")


def _start(layout: LocalLayout, wanted: str, echo: Callable[[str], None]) -> ServerInfo:
    from engine.errors import UserError

    instance = secrets.token_hex(8)
    _info_file(layout).unlink(missing_ok=True)
    echo(f"starting the local Spark server for {layout.root} (kept warm; `tablesmith stop` ends it)")
    log = open(_log_file(layout), "ab")
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
    tail = _log_file(layout).read_text(errors="replace").splitlines()[-15:]
    raise UserError(f"the local Spark server did not start (log {_log_file(layout)}):\n" + "\n".join(tail))


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
    info = {"pid": os.getpid(), "port": port, "token": token, "fingerprint": wanted, "instance": instance,
            "started": time.time()}
    path = _info_file(layout)
    write_text(path, json.dumps(info), mode=0o600)  # holds the token
    print(f"tablesmith: Spark server {instance} listening on 127.0.0.1:{port}", flush=True)

    clients = os.open(layout.server_dir / "clients.lock", os.O_RDWR | os.O_CREAT, 0o600)
    reason = watch(root, clients, idle_seconds, lambda: bool(context.statusTracker().getActiveJobsIds()), stopping)
    print(f"tablesmith: Spark server {instance} stopping ({reason})", flush=True)
    try:
        current = json.loads(path.read_text())
        if current.get("instance") == instance:
            path.unlink()
    except (OSError, ValueError):
        pass
    context.stop()
    os.close(clients)
    return 0


def watch(root: Path, clients: int, idle_seconds: float, busy: Callable[[], bool], stopping: list[str]) -> str:
    """Wait until the server should stop; returns why. Stopping for idleness keeps the clients lock
    (fd `clients`) exclusively, so a command arriving meanwhile waits and then starts a new server."""
    last_busy = time.monotonic()
    while not stopping:
        time.sleep(CHECK_EVERY)
        if not root.is_dir():
            return "its folder is gone"
        try:
            fcntl.flock(clients, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            last_busy = time.monotonic()  # a command is connected
            continue
        if time.monotonic() - last_busy > idle_seconds and not busy():
            return f"idle for {idle_seconds / 60:.1f} min"
        fcntl.flock(clients, fcntl.LOCK_UN)
    return stopping[0]


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
