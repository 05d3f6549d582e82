"""The local server's static settings: the JIT tuned for the loop, replaceable for large runs."""

from __future__ import annotations

from engine.runtime.layout import LOCAL_JVM_OPTIONS, LocalLayout
from engine.runtime.server import fingerprint


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
    monkeypatch.setenv("TABLESMITH_JVM_OPTIONS", "-XX:+UseParallelGC")
    options = _java_options(layout)
    assert options.endswith("-Dderby.system.durability=test -XX:+UseParallelGC") and "TieredStopAtLevel" not in options
    assert fingerprint(layout) != before  # a running server with the other setting is not reused
