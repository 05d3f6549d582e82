"""The stages import one way: each module only from its own stage or an earlier layer.

Every module under engine/ is read with `ast` (imports inside functions count: a lazy import is
still an arrow). The layers are the real graph's, drawn one way:

    0  errors, escape, atomic, engine/__init__     the base: standard library only
    1  names                                       `${name}` references and "did you mean" (quotes with escape)
    2  sql                                         the SQL and type toolkit on sqlglot (finds `${name}` with names)
    3  sources, graph (the DAG algorithm)           the system-table catalog; spec finds cycles with the DAG
    4  spec, demo                                   the frozen Project; the demo data (system tables only)
    5  sharing, graph.show                          plain views derived from the Project
    6  runtime                                      registers and runs the tables
    7  render, testing                              files from the specs; the generated tests' runner
    8  report, alerts, deploy                       read a run's tables, or a workspace
    9  cli                                          the one place that wires them together

Two stages of one layer never import each other. On top: only the CLI imports engine.cli, the
demo generator (the runtime asks for demo data through the CLI), click or rich.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"

LAYERS = {
    "engine": 0, "engine.errors": 0, "engine.escape": 0, "engine.atomic": 0,
    "engine.names": 1,
    "engine.sql": 2,
    "engine.sources": 3, "engine.graph": 3,
    "engine.spec": 4, "engine.demo": 4,
    "engine.sharing": 5, "engine.graph.show": 5,
    "engine.runtime": 6,
    "engine.render": 7, "engine.testing": 7,
    "engine.report": 8, "engine.alerts": 8, "engine.deploy": 8,
    "engine.cli": 9,
}
ONLY_FOR_THE_CLI = ("engine.cli", "engine.demo", "click", "rich")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in the file; `from a import b` names a.b when b is a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; the stages import by full name"
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.append((node.lineno, name if _is_module(name) else node.module))
    return found


def _entry(module: str) -> str | None:
    """The longest LAYERS key the module belongs to (`engine` itself only by its own name)."""
    if module == "engine":
        return "engine"
    keys = [k for k in LAYERS if k != "engine" and (module == k or module.startswith(k + "."))]
    return max(keys, key=len) if keys else None


MODULES = sorted(ENGINE.rglob("*.py"))


def test_every_engine_module_has_a_layer():
    assert MODULES, "no engine modules found"
    assert [str(p.relative_to(ROOT)) for p in MODULES if _entry(_module_name(p)) is None] == []


def test_no_stage_imports_a_later_stage_or_a_peer():
    offenders = []
    for path in MODULES:
        source = _entry(_module_name(path))
        for line, target in _imports(path):
            if target != "engine" and not target.startswith("engine."):
                continue
            imported = _entry(target)
            if imported is None or imported == source:
                continue
            if LAYERS[imported] >= LAYERS[source]:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {source} (layer {LAYERS[source]}) imports "
                                 f"{target} (layer {LAYERS[imported]})")
    assert offenders == []


@pytest.mark.parametrize("guarded", ONLY_FOR_THE_CLI)
def test_only_the_cli_imports(guarded):
    offenders = []
    for path in MODULES:
        importer = _module_name(path)
        if _entry(importer) in ("engine.cli", guarded):
            continue
        offenders += [f"{path.relative_to(ROOT)}:{line}: imports {target}" for line, target in _imports(path)
                      if target == guarded or target.startswith(guarded + ".")]
    assert offenders == []


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The walker sees a lazy import inside a function, and the layers reject a backward arrow."""
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from engine.cli import main\n    import rich.console\n")
    assert [t for _, t in _imports(module)] == ["engine.cli", "rich.console"]
    assert LAYERS[_entry("engine.runtime.run")] < LAYERS[_entry("engine.cli")]
    assert _entry("engine.graph.show") == "engine.graph.show" and _entry("engine.graph.dag") == "engine.graph"
    assert LAYERS[_entry("engine.graph.show")] > LAYERS[_entry("engine.spec.model")] > LAYERS[_entry("engine.graph.dag")]
