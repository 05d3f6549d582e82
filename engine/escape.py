"""One escaping rule per output target, for every value a spec author controls.

Spec text reaches generated SQL, Markdown, YAML and the terminal. Each target has exactly one
function here, and every renderer and message goes through it, so a value can never end a comment,
close a literal or forge terminal output. Standard library only: the pipeline runtime imports it.

    sql_string("it's")        -> 'it\\'s'          (Databricks literals take backslash escapes)
    sql_identifier("a`b")     -> `a``b`
    sql_comment("x\\n DROP")  -> 'x DROP'           (one line: a newline would end the comment)
    markdown("<b>|")          -> '&lt;b&gt;\\|'       (one line, no raw HTML, no table break)
    terminal("\\x1b[32mok")   -> '\\x1b[32mok' shown as text, never interpreted
"""

from __future__ import annotations

import html
import re

# C0/C1 control characters, DEL, and the Unicode line/paragraph separators that some tools treat
# as newlines; tab and newline are handled by each target explicitly.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NON_PRINTING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Every run of whitespace (newlines included) becomes one space; control characters go."""
    return " ".join(_CONTROL.sub(" ", text).split())


def sql_string(text: str) -> str:
    """A Databricks SQL string literal on one line.

    Databricks literals take backslash escapes, so '' would be read as two adjacent literals:
    quote and backslash are escaped with a backslash instead.
    """
    return "'" + one_line(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_identifier(*parts: str) -> str:
    """`a`.`b`.`c`: backticks on every part, backticks inside doubled, as Databricks quotes them."""
    for part in parts:
        if _NON_PRINTING.search(part):
            raise ValueError(f"identifier {part!r} holds a control character or newline")
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def sql_comment(text: str) -> str:
    """Text for a `-- ...` line comment: one line, so nothing after it can become SQL."""
    return one_line(text)


def markdown(text: str) -> str:
    """Text for a Markdown table cell or paragraph line: one line, HTML escaped, pipes escaped."""
    return html.escape(one_line(text), quote=False).replace("|", "\\|")


def terminal(text: str) -> str:
    """Text for a terminal: newlines and tabs kept, every other control character made visible."""
    return _NON_PRINTING.sub(lambda m: m.group(0) if m.group(0) in "\n\t" else repr(m.group(0))[1:-1], text)
