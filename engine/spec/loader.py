"""Stage: spec. Parse YAML once, keeping the line and column of every key and value.

The parsed document is plain Python data plus a `Positions` map from key paths to locations,
so later stages can point at `file:line:col` without ever re-reading the file.
Dates stay strings: YAML's timestamp resolver is removed (a spec never means a datetime).

Most specs are plain YAML: no anchors, tags, merge keys or duplicate keys. Those are read from
libyaml's event stream straight into dicts and lists, without building PyYAML's node tree or any
mark (three times faster); their positions are found from the text only when something asks for
one, as for a spec from the cache. Anything else, and every document with a problem, takes the
marked path below, so every diagnostic is the one it always was.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
import yaml.events as _events

from engine.spec.errors import Diagnostic, display_path, snippet

try:  # libyaml is ~10x faster; fall back to the pure-Python composer where it is missing
    _BaseLoader = yaml.CSafeLoader
    _CParser = yaml.cyaml.CParser
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader
    _CParser = None


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """libyaml composes; tag resolution (Python, called per node) is memoised per distinct scalar."""

    _resolved: dict[tuple[str, bool], str] = {}

    def resolve(self, kind, value, implicit):  # noqa: D102 - yaml.resolver.BaseResolver.resolve
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit[0])
        tag = self._resolved.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._resolved) < 100_000:
                self._resolved[key] = tag
        return tag

    # Path resolvers are never registered here, so descending/ascending has nothing to track.
    def descend_resolver(self, current_node, current_index):  # noqa: D102
        return None

    def ascend_resolver(self):  # noqa: D102
        return None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}

KeyPath = tuple[str | int, ...]
_MISSING = object()
_STR_TAG = "tag:yaml.org,2002:str"


class Location:
    """Where a value starts in a spec file (1-based line and column).

    A plain document or a spec read from the spec cache has no marks: its locations are worked out
    from the file's text the first time one is asked for (an error message, a generated comment),
    not on every load.
    """

    __slots__ = ("file", "_line", "_col", "_positions", "_path", "_key")

    def __init__(self, file: str, line: int | None = None, col: int | None = None, *,
                 positions: Positions | None = None, path: KeyPath = (), key: bool = False):
        self.file = file
        self._line, self._col = line, col
        self._positions, self._path, self._key = positions, path, key  # where to look, until looked up

    def _resolved(self) -> tuple[int, int]:
        if self._line is None:
            assert self._positions is not None
            self._line, self._col = self._positions.line_col(self._path, self._key)
            self._positions, self._path = None, ()
        return self._line, self._col  # type: ignore[return-value]

    @property
    def line(self) -> int:
        return self._resolved()[0]

    @property
    def col(self) -> int:
        return self._resolved()[1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return (self.file, *self._resolved()) == (other.file, *other._resolved())

    def __hash__(self) -> int:
        return hash((self.file, *self._resolved()))

    def __repr__(self) -> str:
        return f"Location({self.file!r}, {self.line}, {self.col})"


class Positions:
    """Where each key path starts: the value's position, and the key's for mapping entries.

    Built while parsing a document that needs the marked path, else (a plain document, a spec from
    the cache) on first use by parsing the text again; `has` and `child_keys` answer from the data,
    so the checks of a valid spec never need the marks.
    """

    def __init__(self, file: str, text: str, data: Any = None, *, marked: bool = True):
        self.file, self.text, self.data = file, text, data
        self._values: dict[KeyPath, tuple[int, int]] | None = {} if marked else None
        self._keys: dict[KeyPath, tuple[int, int]] | None = {} if marked else None

    @property
    def values(self) -> dict[KeyPath, tuple[int, int]]:
        if self._values is None:
            self._mark()
        return self._values  # type: ignore[return-value]

    @property
    def keys(self) -> dict[KeyPath, tuple[int, int]]:
        if self._keys is None:
            self._mark()
        return self._keys  # type: ignore[return-value]

    def _mark(self) -> None:
        marked = Positions(self.file, self.text)
        loader = _Loader(self.text)
        try:
            node = loader.get_single_node()
            _construct(loader, node, (), marked, [], _Budget())
        finally:
            loader.dispose()
        self._values, self._keys = marked._values, marked._keys

    def has(self, path: KeyPath) -> bool:
        """True when the document has a value at `path` (written by the user, not defaulted)."""
        return self._node(path) is not _MISSING

    def child_keys(self, path: KeyPath) -> list[str]:
        """The keys of the mapping at `path`, as written (empty when it is not a mapping)."""
        node = self._node(path)
        return list(node) if isinstance(node, dict) else []

    def _node(self, path: KeyPath) -> Any:
        node = self.data
        for part in path:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return _MISSING
        return node

    def at(self, path: KeyPath, *, key: bool = False) -> Location:
        """The closest recorded position at or above `path` (a missing key points at its parent)."""
        if self._values is None:
            return Location(self.file, positions=self, path=path, key=key)
        return Location(self.file, *self.line_col(path, key))

    def line_col(self, path: KeyPath, key: bool = False) -> tuple[int, int]:
        table = self.keys if key else self.values
        values = self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in values:
                return values[probe]
            probe = probe[:-1]
        return values.get((), (1, 1))

    def diagnostic(self, path: KeyPath, code: str, message: str, *, key: bool = False) -> Diagnostic:
        loc = self.at(path, key=key)
        return Diagnostic(
            file=self.file,
            line=loc.line,
            col=loc.col,
            code=code,
            message=message,
            key_path=format_key_path(path),
            snippet=snippet(self.text, loc.line, loc.col),
        )


@dataclass
class Document:
    path: Path
    data: Any
    positions: Positions


def format_key_path(path: KeyPath) -> str:
    """`columns[2].type` rather than `/columns/2/type`: the form a user reads in the file."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def load_yaml(path: Path, root: Path | None = None) -> tuple[Document | None, list[Diagnostic]]:
    """Parse one YAML file. Returns the document, or None with diagnostics; never raises."""
    shown = display_path(path, root)
    text, problems = read_spec_text(path, shown)
    if text is None:
        return None, problems
    return parse_yaml(path, shown, text)


def read_spec_text(path: Path, shown: str) -> tuple[str | None, list[Diagnostic]]:
    """A spec file's text: a regular, readable UTF-8 file without control characters."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            return None, [Diagnostic(shown, 1, 1, "SPEC_NOT_REGULAR_FILE", "not a regular file; it is never opened")]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Diagnostic(shown, 1, 1, "FILE_UNREADABLE", f"cannot read file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Diagnostic(shown, line, 1, "FILE_NOT_TEXT", "file is not UTF-8 text (binary content?)")]
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        return None, [
            Diagnostic(shown, line, col, "FILE_NOT_TEXT", "file contains control characters (binary content?)",
                       snippet=snippet(text, line, col))
        ]
    return text, []


def parse_yaml(path: Path, shown: str, text: str) -> tuple[Document | None, list[Diagnostic]]:
    """The document of a spec's text, its positions found when first asked for; or None with diagnostics."""
    data = plain_document(text)
    if data is not NOT_PLAIN:
        return Document(path=path, data=data, positions=Positions(shown, text, data, marked=False)), []
    return parse_marked(path, shown, text)


def parse_marked(path: Path, shown: str, text: str) -> tuple[Document | None, list[Diagnostic]]:
    """The document of a spec's text, every value's position marked; or None with diagnostics."""
    positions = Positions(file=shown, text=text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [Diagnostic(shown, 1, 1, "YAML_EMPTY", "file is empty: expected a mapping of spec keys")]
        diagnostics: list[Diagnostic] = []
        data = _construct(loader, node, (), positions, diagnostics, _Budget())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if "expected a single document" in str(exc):
            problem = "found more than one YAML document: one spec per file"
        return None, [Diagnostic(shown, line, col, "YAML_SYNTAX", problem, snippet=snippet(text, line, col))]
    except _TooLarge as exc:
        return None, [Diagnostic(shown, exc.line, exc.col, "YAML_TOO_LARGE", str(exc), snippet=snippet(text, exc.line, exc.col))]
    except yaml.YAMLError as exc:  # reader errors (e.g. unacceptable characters) carry no mark
        return None, [Diagnostic(shown, 1, 1, "YAML_SYNTAX", str(exc).splitlines()[0])]
    finally:
        loader.dispose()
    if diagnostics:
        return None, diagnostics
    positions.data = data
    return Document(path=path, data=data, positions=positions), []


# Aliases let a few lines expand into billions of values ("billion laughs"); a spec has hundreds.
MAX_VALUES = 100_000
MAX_DEPTH = 64


class _TooLarge(Exception):
    def __init__(self, message: str, node: yaml.Node):
        super().__init__(message)
        self.line, self.col = node.start_mark.line + 1, node.start_mark.column + 1


@dataclass
class _Budget:
    values: int = 0


def _construct(loader: Any, node: yaml.Node, path: KeyPath, positions: Positions, diagnostics: list[Diagnostic],
               budget: _Budget) -> Any:
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise _TooLarge(f"the document expands to more than {MAX_VALUES:,} values (aliases repeating aliases?)", node)
    if len(path) > MAX_DEPTH:
        raise _TooLarge(f"values nested more than {MAX_DEPTH} levels deep (a recursive alias?)", node)
    positions._values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                positions._values[path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                diagnostics.append(positions.diagnostic(path, "YAML_UNSUPPORTED", "merge keys (<<) are not supported in specs"))
                continue
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value if key_node.tag == _STR_TAG else loader.construct_object(key_node)
            else:
                key = None
            if not isinstance(key, (str, int, float, bool)) or key is None:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                diagnostics.append(
                    Diagnostic(positions.file, line, col, "YAML_BAD_KEY", "mapping keys must be plain scalars",
                               key_path=format_key_path(path), snippet=snippet(positions.text, line, col))
                )
                continue
            key = str(key)
            child = path + (key,)
            positions._keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                line, col = positions._keys[child]
                diagnostics.append(
                    Diagnostic(positions.file, line, col, "YAML_DUPLICATE_KEY", f"key '{key}' appears twice in this mapping",
                               key_path=format_key_path(child), snippet=snippet(positions.text, line, col))
                )
                continue
            result[key] = _construct(loader, value_node, child, positions, diagnostics, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, path + (i,), positions, diagnostics, budget) for i, item in enumerate(node.value)]
    if node.tag == _STR_TAG:
        return node.value  # most scalars: skip the constructor dispatch (a fifth of validate's time)
    value = loader.construct_object(node, deep=True)
    if isinstance(value, bytes):  # !!binary: no spec field holds bytes
        return repr(value)
    return value


# The plain path: libyaml's events (parsed in C) straight to Python data.

NOT_PLAIN = object()  # the document needs the marked path: an anchor, a tag, a problem, ...
_SCALAR_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"}


class _NotPlain(Exception):
    pass


class _PlainScalars(yaml.constructor.SafeConstructor, yaml.resolver.BaseResolver):
    """PyYAML's own YAML 1.1 resolution and construction of an untagged plain scalar, as _Loader does it."""

    yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


_SCALARS = _PlainScalars()
# A plain scalar whose first character starts no implicit resolver (most names and types) is a string.
_MAY_RESOLVE = frozenset(_Loader.yaml_implicit_resolvers) if None not in _Loader.yaml_implicit_resolvers else None
_plain_values: dict[str, Any] = {}  # plain scalar text -> its value (immutable: str, int, float, bool, None)


def _plain_scalar(event: Any) -> Any:
    if event.tag is not None or event.anchor is not None:
        raise _NotPlain
    text = event.value
    if not event.implicit[0] or (text and _MAY_RESOLVE is not None and text[0] not in _MAY_RESOLVE):
        return text  # quoted and block scalars are always strings
    value = _plain_values.get(text, NOT_PLAIN)
    if value is NOT_PLAIN:
        tag = _SCALARS.resolve(yaml.ScalarNode, text, (True, False))
        if tag not in _SCALAR_TAGS:  # `<<` (merge), `=` (value): the marked path reports them
            raise _NotPlain
        value = _SCALARS.yaml_constructors[tag](_SCALARS, yaml.ScalarNode(tag, text))
        if len(_plain_values) < 100_000:
            _plain_values[text] = value
    return value


def plain_document(text: str) -> Any:
    """The data of a plain YAML document, exactly as the marked path builds it; NOT_PLAIN otherwise."""
    if _CParser is None:  # pragma: no cover - PyYAML without libyaml
        return NOT_PLAIN
    parser = _CParser(text)
    try:
        get = parser.get_event
        get()  # stream start
        if get().__class__ is not _events.DocumentStartEvent:
            return NOT_PLAIN  # empty
        budget = _Budget(values=1)
        root = get()
        data = _plain_scalar(root) if root.__class__ is _events.ScalarEvent else _plain_collection(root, get, 0, budget)
        get()  # document end
        if get().__class__ is not _events.StreamEndEvent or budget.values > MAX_VALUES:
            return NOT_PLAIN  # a second document; too many values (the marked path says which)
        return data
    except (_NotPlain, yaml.YAMLError):
        return NOT_PLAIN
    finally:
        parser.dispose()


def _plain_collection(event: Any, get: Any, depth: int, budget: _Budget) -> Any:
    """A mapping or sequence and everything in it; scalars are read in the loop (most values are)."""
    kind = event.__class__
    if kind is _events.AliasEvent or event.tag is not None or event.anchor is not None \
            or depth >= MAX_DEPTH or budget.values > MAX_VALUES:
        raise _NotPlain
    scalar = _events.ScalarEvent
    if kind is _events.MappingStartEvent:
        mapping: dict[str, Any] = {}
        while True:
            key_event = get()
            if key_event.__class__ is not scalar:
                if key_event.__class__ is _events.MappingEndEvent:
                    return mapping
                raise _NotPlain
            key = _plain_scalar(key_event)
            if key.__class__ is not str:
                if key is None or not isinstance(key, (int, float, bool)):
                    raise _NotPlain
                key = str(key)
            if key in mapping:
                raise _NotPlain
            value = get()
            budget.values += 1
            mapping[key] = _plain_scalar(value) if value.__class__ is scalar else _plain_collection(value, get, depth + 1, budget)
    if kind is _events.SequenceStartEvent:
        sequence: list[Any] = []
        while True:
            item = get()
            if item.__class__ is scalar:
                sequence.append(_plain_scalar(item))
            elif item.__class__ is _events.SequenceEndEvent:
                return sequence
            else:
                sequence.append(_plain_collection(item, get, depth + 1, budget))
            budget.values += 1
    raise _NotPlain  # pragma: no cover - libyaml yields no other event here
