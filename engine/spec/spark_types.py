"""Stage: spec. Parse Spark SQL type strings without Spark, and print them as Spark's simpleString().

Validation needs this before any JVM exists; the schema data tests compare `canonical(declared)` with
`field.dataType.simpleString()` of what the engine produced.
"""

from __future__ import annotations

import re
from functools import lru_cache

_SIMPLE = {
    "string": "string", "boolean": "boolean", "bool": "boolean",
    "tinyint": "tinyint", "byte": "tinyint", "smallint": "smallint", "short": "smallint",
    "int": "int", "integer": "int", "bigint": "bigint", "long": "bigint",
    "float": "float", "real": "float", "double": "double",
    "date": "date", "timestamp": "timestamp", "timestamp_ltz": "timestamp", "timestamp_ntz": "timestamp_ntz",
    "binary": "binary", "void": "void", "variant": "variant",
}
_TOKEN = re.compile(r"\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>\d+)|(?P<sym>[<>(),:])|(?P<quoted>`[^`]+`|'(?:[^'\\]|\\.)*'))")


class TypeSyntaxError(ValueError):
    """A type string that Spark would reject; the message says what was expected."""


@lru_cache(maxsize=4096)  # a catalog repeats a few dozen distinct types thousands of times
def canonical(type_text: str) -> str:
    """`MAP<STRING, DECIMAL(38,18)>` -> `map<string,decimal(38,18)>`; raises TypeSyntaxError."""
    tokens = _tokenize(type_text)
    parser = _Parser(tokens, type_text)
    result = parser.parse_type()
    if parser.pos != len(tokens):
        raise TypeSyntaxError(f"unexpected '{tokens[parser.pos]}' after a complete type")
    return result


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise TypeSyntaxError(f"unexpected character '{text[pos]}'")
        tokens.append(match.group().strip())
        pos = match.end()
    return [t for t in tokens if t]


class _Parser:
    def __init__(self, tokens: list[str], text: str):
        self.tokens, self.pos, self.text = tokens, 0, text

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None:
            raise TypeSyntaxError(f"type ends early{f': expected {expected!r}' if expected else ''}")
        if expected is not None and token != expected:
            raise TypeSyntaxError(f"expected '{expected}' but found '{token}'")
        self.pos += 1
        return token

    def parse_type(self) -> str:
        word = self.take().lower()
        if word in _SIMPLE:
            return _SIMPLE[word]
        if word in ("decimal", "dec", "numeric"):
            if self.peek() != "(":
                return "decimal(10,0)"
            self.take("(")
            precision = self._int(1, 38, "decimal precision")
            scale = 0
            if self.peek() == ",":
                self.take(",")
                scale = self._int(0, precision, "decimal scale")
            self.take(")")
            return f"decimal({precision},{scale})"
        if word in ("varchar", "char"):
            self.take("(")
            length = self._int(1, 2**31 - 1, f"{word} length")
            self.take(")")
            return f"{word}({length})"
        if word == "array":
            self.take("<")
            element = self.parse_type()
            self.take(">")
            return f"array<{element}>"
        if word == "map":
            self.take("<")
            key = self.parse_type()
            self.take(",")
            value = self.parse_type()
            self.take(">")
            return f"map<{key},{value}>"
        if word == "struct":
            self.take("<")
            fields = []
            while self.peek() != ">":
                name = self.take()
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*|`[^`]+`", name):
                    raise TypeSyntaxError(f"expected a struct field name but found '{name}'")
                name = name.strip("`")
                if self.peek() == ":":
                    self.take(":")
                fields.append(f"{name}:{self.parse_type()}")
                if self.peek() and self.peek().upper() == "COMMENT":
                    self.take()
                    self.take()
                if self.peek() == ",":
                    self.take(",")
                elif self.peek() != ">":
                    raise TypeSyntaxError(f"expected ',' or '>' in struct but found '{self.peek()}'")
            self.take(">")
            return f"struct<{','.join(fields)}>"
        raise TypeSyntaxError(f"'{word}' is not a Spark SQL type (expected e.g. STRING, BIGINT, DECIMAL(38,18), ARRAY<…>, MAP<…>, STRUCT<…>)")

    def _int(self, low: int, high: int, what: str) -> int:
        token = self.take()
        if not token.isdigit() or not low <= int(token) <= high:
            raise TypeSyntaxError(f"{what} must be a whole number from {low} to {high}, not '{token}'")
        return int(token)
