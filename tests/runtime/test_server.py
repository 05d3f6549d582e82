"""The warm server's lifecycle decisions, without a JVM: when it stops by itself, and that a command
never connects to a server that is going away. (Starting, reuse and `tablesmith stop` of a real
server: test_crash_safety.py.)"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from engine.runtime import server


@pytest.fixture(autouse=True)
def fast_checks(monkeypatch):
    monkeypatch.setattr(server, "CHECK_EVERY", 0.02)


def _lock(path, kind):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _watch_in_thread(root, idle, busy=lambda: False, stopping=None, engine=lambda: ""):
    clients = os.open(root / "clients.lock", os.O_RDWR | os.O_CREAT, 0o600)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "reason", server.watch(root, clients, idle, busy, stopping or [], engine=engine)))
    thread.start()
    return thread, result


def test_an_idle_server_stops_and_keeps_new_commands_waiting(tmp_path):
    started = time.monotonic()
    thread, result = _watch_in_thread(tmp_path, idle=0.2)
    thread.join(timeout=10)
    assert result["reason"].startswith("idle") and time.monotonic() - started >= 0.2
    assert _lock(tmp_path / "clients.lock", fcntl.LOCK_SH) is None  # held while stopping: a command waits


def test_a_connected_command_keeps_it_running(tmp_path):
    client = _lock(tmp_path / "clients.lock", fcntl.LOCK_SH)
    thread, result = _watch_in_thread(tmp_path, idle=0.1)
    time.sleep(0.6)
    assert thread.is_alive()
    os.close(client)  # the command ended
    thread.join(timeout=10)
    assert result["reason"].startswith("idle")


def test_running_jobs_keep_it_running(tmp_path):
    jobs = [True]
    thread, result = _watch_in_thread(tmp_path, idle=0.05, busy=lambda: jobs[0])
    time.sleep(0.4)
    assert thread.is_alive()
    jobs[0] = False
    thread.join(timeout=10)
    assert result["reason"].startswith("idle")


def test_it_stops_when_its_folder_is_gone_or_when_told(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    thread, result = _watch_in_thread(folder, idle=3600)
    shutil.rmtree(folder)
    thread.join(timeout=10)
    assert result["reason"] == "its folder is gone"

    thread, result = _watch_in_thread(tmp_path, idle=3600, stopping=["stopped"])
    thread.join(timeout=10)
    assert result["reason"] == "stopped"


def test_it_stops_when_its_jvm_ended_even_with_a_command_connected(tmp_path):
    client = _lock(tmp_path / "clients.lock", fcntl.LOCK_SH)
    ended = [""]
    thread, result = _watch_in_thread(tmp_path, idle=3600, engine=lambda: ended[0])
    time.sleep(0.3)
    assert thread.is_alive()
    ended[0] = "its JVM ended (exit code -9)"
    thread.join(timeout=10)
    assert result["reason"] == "its JVM ended (exit code -9)"
    os.close(client)


def test_a_server_whose_record_is_gone_or_taken_over_serves_no_one(tmp_path):
    """`rm -rf out && tablesmith run`: the folder is back before the old server looks, but its record
    (server.json) is gone, or a new server's: no command can find the old one, which leaves."""
    record = tmp_path / "server.json"
    jvm = subprocess.Popen(["sleep", "60"])
    try:
        record.write_text(json.dumps({"instance": "old"}))
        assert server.why_gone(jvm, record, "old") == ""
        record.write_text(json.dumps({"instance": "new"}))
        assert "names another server" in server.why_gone(jvm, record, "old")
        record.unlink()
        assert "is gone" in server.why_gone(jvm, record, "old")
        record.write_text("[]")  # not a record at all
        assert server.why_gone(jvm, record, "old") != ""
    finally:
        jvm.kill()
        jvm.wait()
    record.write_text(json.dumps({"instance": "old"}))
    assert server.why_gone(jvm, record, "old") == "its JVM ended (exit code -9)"


def test_commands_answered_at_once_go_out_as_plain_calls_then_the_session_is_as_before():
    from pyspark.sql.connect.client import SparkConnectClient

    class Session:  # what answered_at_once touches of a Spark Connect session: its client (no server needed)
        client = SparkConnectClient("sc://localhost:1")

    session = Session()
    try:
        assert session.client._use_reattachable_execute  # pyspark's default, kept for the run's event stream
        with server.answered_at_once(session):
            assert not session.client._use_reattachable_execute
        assert session.client._use_reattachable_execute
        with pytest.raises(RuntimeError), server.answered_at_once(session):
            raise RuntimeError("a registration failed")
        assert session.client._use_reattachable_execute
    finally:
        # Closed, its exit hook sends nothing: unclosed, `pytest -n 0` hung at exit for minutes retrying
        # calls to the address no server listens on.
        session.client.close()
