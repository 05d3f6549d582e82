"""The local server's static settings: the JIT tuned for the loop, the full JIT for large inputs, replaceable."""

from __future__ import annotations

from engine.runtime.layout import LARGE_INPUT_BYTES, LOCAL_JVM_OPTIONS, SCALE_JVM_OPTIONS, LocalLayout
from engine.runtime.server import ServerInfo, fingerprint


def _java_options(layout: LocalLayout) -> str:
    [line] = [line for line in layout.spark_defaults().splitlines() if line.startswith("spark.driver.extraJavaOptions ")]
    return line


def test_the_loop_runs_c1_only_with_a_code_cache_large_enough(tmp_path, monkeypatch):
    monkeypatch.delenv("TABLESMITH_JVM_OPTIONS", raising=False)
    options = _java_options(LocalLayout(tmp_path))
    assert "-Dderby.system.durability=test" in options and options.endswith(LOCAL_JVM_OPTIONS)
    assert "-XX:TieredStopAtLevel=1" in options and "-XX:ReservedCodeCacheSize=240m" in options


def test_tablesmith_jvm_options_replace_the_jit_setting_and_restart_the_server(tmp_path, monkeypatch):
    monkeypatch.delenv("TABLESMITH_JVM_OPTIONS", raising=False)
    layout = LocalLayout(tmp_path)
    before = fingerprint(layout)
    monkeypatch.setenv("TABLESMITH_JVM_OPTIONS", "-XX:+UseG1GC")
    options = _java_options(layout)
    assert options.endswith("-Dderby.system.durability=test -XX:+UseG1GC") and "TieredStopAtLevel" not in options
    assert fingerprint(layout) != before  # a running server with the other setting is not reused


def test_a_large_input_gets_the_full_jit_and_its_own_server(tmp_path, monkeypatch):
    monkeypatch.delenv("TABLESMITH_JVM_OPTIONS", raising=False)
    usage, prices = tmp_path / "source" / "billing" / "usage", tmp_path / "source" / "billing" / "list_prices"
    usage.mkdir(parents=True)
    prices.mkdir(parents=True)
    with open(usage / "part-0.parquet", "wb") as f:
        f.truncate(LARGE_INPUT_BYTES - 1)  # sparse: the size counts, not the disk
    (usage / "notes.txt").write_bytes(b"x" * 10)  # only Parquet files count
    small = LocalLayout(tmp_path / "out").sized_for([usage, prices, tmp_path / "source" / "missing"])
    assert not small.large_input and _java_options(small).endswith(LOCAL_JVM_OPTIONS)
    (prices / "part-0.parquet").write_bytes(b"x")
    large = LocalLayout(tmp_path / "out").sized_for([usage, prices])
    assert large.large_input and large.root == small.root and large.server_dir == small.server_dir
    options = _java_options(large)
    assert options.endswith(SCALE_JVM_OPTIONS) and "TieredStopAtLevel" not in options
    assert "-XX:ReservedCodeCacheSize=240m" in options
    assert fingerprint(large) != fingerprint(small)  # crossing the size restarts the server with the other JIT
    monkeypatch.setenv("TABLESMITH_JVM_OPTIONS", "-XX:+UseG1GC")  # the override wins over the size
    assert _java_options(large).endswith("-XX:+UseG1GC") and _java_options(small).endswith("-XX:+UseG1GC")


def test_a_reader_takes_the_running_server_whichever_jit_a_run_chose(tmp_path, monkeypatch):
    """Readers do not know the input's size: a server a large run started is taken as it is (not
    restarted with the loop's JIT); a run, which knows, gets the server its input wants."""
    from engine.runtime.server import reader_layout

    monkeypatch.delenv("TABLESMITH_JVM_OPTIONS", raising=False)
    reader, small = LocalLayout(tmp_path), LocalLayout(tmp_path, large_input=False)
    started_large = ServerInfo(pid=1, port=1, token="t", fingerprint=fingerprint(LocalLayout(tmp_path, large_input=True)), instance="i")
    started_small = ServerInfo(pid=1, port=1, token="t", fingerprint=fingerprint(small), instance="i")
    assert fingerprint(reader_layout(reader, started_large)) == started_large.fingerprint
    assert fingerprint(reader_layout(reader, started_small)) == started_small.fingerprint
    assert reader_layout(reader, None) is reader  # no server: the loop's settings
    assert reader_layout(small, started_large) is small  # a run decided: the server restarts
