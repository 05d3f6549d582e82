"""The plain YAML path (libyaml events straight to data) builds exactly what the marked path builds.

engine/spec/loader.py reads most specs without PyYAML's node tree; a document it cannot vouch for
(an anchor, a tag, a merge key, a duplicate key, a syntax error, ...) goes to the marked path. So on
any text: the plain path either declines, or returns the marked path's data, which is PyYAML's safe
loading (YAML 1.1: yes/no/on/off, octal and sexagesimal numbers, .inf/.nan) with timestamps kept as
strings and keys as strings. Checked on every file of the catalog and the corpus, and on generated
documents written plain, quoted, in block and flow style.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.spec.loader import NOT_PLAIN, parse_marked, plain_document

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
FILES = sorted([*(ROOT / "specs").rglob("*.y*ml"), *HERE.rglob("*.y*ml")])


class _SafeWithoutTimestamps(yaml.CSafeLoader):
    """PyYAML's C safe loader with the one resolver specs drop: dates and times stay strings."""


_SafeWithoutTimestamps.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


def _mapping_with_text_keys(loader, node):
    # Keys become text as each is read: in a Python dict `no` (False) and `0.` (0.0) are one key.
    return {str(k): v for k, v in loader.construct_pairs(node, deep=True)}


_SafeWithoutTimestamps.add_constructor("tag:yaml.org,2002:map", _mapping_with_text_keys)


def _keys_as_text(value):
    if isinstance(value, dict):
        return {str(k): _keys_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys_as_text(v) for v in value]
    return value


def _same(a, b) -> bool:
    """Equality that also holds for NaN and tells 1 from 1.0 and True from 1."""
    return json.dumps(a, sort_keys=True, default=repr) == json.dumps(b, sort_keys=True, default=repr) and \
        _types(a) == _types(b)


def _types(value):
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


def _agree(text: str, *, declines_only_bad: bool = False) -> bool:
    """The plain path declines or matches the marked path (and PyYAML); True when it answered.

    With `declines_only_bad` (a text without anchors or tags), it may decline only what the marked
    path reports a problem in.
    """
    plain = plain_document(text)
    doc, problems = parse_marked(Path("x.yaml"), "x.yaml", text)
    if plain is NOT_PLAIN:
        assert problems or not declines_only_bad, f"declined a good document: {text!r}"
        return False
    assert doc is not None and not problems, problems
    assert _same(plain, doc.data)
    assert _same(plain, _keys_as_text(yaml.load(text, Loader=_SafeWithoutTimestamps)))
    return True


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_catalog_and_corpus_file(path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # the binary corpus cases never reach the parser
    answered = _agree(text)
    if ROOT / "specs" in path.parents:
        assert answered, "every catalog spec is plain YAML: the fast path must not decline it"


# Plain scalars whose meaning YAML 1.1 decides: each must resolve as PyYAML resolves it.
TRICKY = ["yes", "Yes", "YES", "no", "No", "on", "On", "OFF", "off", "y", "n", "Y", "N", "true", "True", "FALSE",
          "false", "null", "Null", "NULL", "~", "0", "-0", "+12", "012", "0o12", "09", "0x1F", "0b1010", "1_000",
          "190:20:30", "-1:30", "1.5", "1e3", "1.5e+3", ".5", "+.inf", "-.Inf", ".NaN", ".nan", "6.8523015e+5",
          "685.230_15e+03", "190:20:30.15", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2002-1-2", "1.0.0",
          "0.", "._", "STRING", "DECIMAL(38,18)", "record_id IS NOT NULL", "-", "+", ".", "0x", "1:2:3:4", "<<",
          "=", "!", "&", "*", "é", "naïve text"]
identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
words = st.one_of(st.sampled_from(TRICKY), identifiers,
                  st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))  # YAML has no lone surrogates
trees = st.recursive(words, lambda inner: st.lists(inner, max_size=4)
                     | st.lists(st.tuples(st.one_of(st.sampled_from(TRICKY), identifiers), inner), max_size=4,
                                unique_by=lambda pair: pair[0]),
                     max_leaves=12)
_FLOW_UNSAFE = set(",[]{}#:'\"&*!|>%@`?\\") | {"\n", "\t"}


def _scalar(text: str, quote: str, flow: bool) -> str:
    plain_ok = text == text.strip() and text != "" and not (set(text) & _FLOW_UNSAFE if flow else
                                                            set(text) & {"#", "\n", "\t", "'", '"', "\\"} or ": " in text
                                                            or text.endswith(":") or text[0] in "&*!|>%@`?-[]{},")
    if quote == "plain" and plain_ok:
        return text
    if quote == "single" and "\n" not in text:
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _flow(node, quote) -> str:
    if isinstance(node, str):
        return _scalar(node, quote, flow=True)
    if node and isinstance(node[0], tuple) or node == []:
        pairs = [f"{_scalar(k, quote, True)}: {_flow(v, quote)}" for k, v in node] if node else []
        return "{" + ", ".join(pairs) + "}"
    return "[" + ", ".join(_flow(item, quote) for item in node) + "]"


def _block(node, quote, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(node, str) or not node:
        return [pad + _flow(node, quote)]
    out = []
    for item in node:
        if isinstance(item, tuple):
            key, value = item
            head = pad + _scalar(key, quote, flow=False) + ":"
        else:
            value, head = item, pad + "-"
        if isinstance(value, str):
            out.append(head + " " + _scalar(value, quote, flow=False))
        elif value:
            out.append(head)
            out.extend(_block(value, quote, indent + 2))
        else:
            out.append(head + " " + _flow(value, quote))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, quote=st.sampled_from(["plain", "single", "double"]), style=st.sampled_from(["block", "flow"]))
def test_generated_documents(tree, quote, style):
    text = "\n".join(_block(tree, quote, 0)) + "\n" if style == "block" else _flow(tree, quote) + "\n"
    _agree(text, declines_only_bad=True)  # `&`, `*` and `!` are always quoted by _scalar


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_specs(data):
    """Lines of a real spec duplicated, cut or prefixed with anchors, aliases, tags and merge keys."""
    lines = (ROOT / "specs" / "billing" / "billing_usage_bronze.yaml").read_text().splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(lines) - 1))
        prefix = data.draw(st.sampled_from(["", "  ", "- ", "&a ", "*a ", "!!str ", "!!binary ", "<<: *a\n", "? ",
                                            "yes: ", "~: ", "--- ", "...\n"]))
        lines[index] = prefix + (lines[index] if data.draw(st.booleans()) else "\n")
    _agree("".join(lines))


def test_what_the_plain_path_declines():
    for text in ["a: &x 1\nb: *x\n", "a: !!str 1\n", "<<: {a: 1}\n", "a: 1\na: 2\n", "~: 1\n", "[1]: 2\n",
                 "a: =\n", "a: 1\n---\nb: 2\n", "", "a: [\n", "\n".join(f"{'  ' * i}k:" for i in range(70)) + " 1\n"]:
        assert plain_document(text) is NOT_PLAIN, text
    assert plain_document("yes: 012\nOff: -.inf\n0x10: ~\nd: 2024-01-02\nt: 1:30\nq: '012'\n") == \
        {"True": 10, "False": float("-inf"), "16": None, "d": "2024-01-02", "t": 90, "q": "012"}
    assert plain_document("yes: 1\non: 2\n") is NOT_PLAIN  # both keys are True: a duplicate


@pytest.mark.parametrize("path", sorted((ROOT / "specs").rglob("*.yaml"))[:12], ids=lambda p: p.name)
def test_positions_found_later_are_the_marked_ones(path):
    """A plain document's positions, worked out when first asked for, are those the marked parse records."""
    from engine.spec.loader import parse_yaml

    text = path.read_text(encoding="utf-8")
    lazy, _ = parse_yaml(path, "x.yaml", text)
    marked, _ = parse_marked(path, "x.yaml", text)
    assert lazy.positions._values is None  # nothing marked until asked
    assert lazy.positions.values == marked.positions.values and lazy.positions.keys == marked.positions.keys
    assert lazy.positions.at(("columns", 0, "type")) == marked.positions.at(("columns", 0, "type"))


@pytest.mark.parametrize("depth", [63, 64, 65])
@pytest.mark.parametrize("leaf", ["1", ""])
def test_nesting_limit_as_the_marked_path_draws_it(depth, leaf):
    from engine.spec.loader import MAX_DEPTH

    text = "[" * depth + leaf + "]" * depth
    answered = _agree(text)
    assert answered == (depth <= MAX_DEPTH)  # deeper: declined, and the marked path decides (YAML_TOO_LARGE)


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_value_limit_as_the_marked_path_draws_it(extra):
    from engine.spec.loader import MAX_VALUES

    text = "[" + ",".join("1" for _ in range(MAX_VALUES - 1 + extra)) + "]"  # the list itself is a value too
    answered = _agree(text)
    assert answered == (extra <= 0)
    if not answered:
        _, problems = parse_marked(Path("x.yaml"), "x.yaml", text)
        assert [p.code for p in problems] == ["YAML_TOO_LARGE"]
