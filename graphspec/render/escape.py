"""One escaping function per output format, for every text that came from outside graphspec.

File names, node names, run-folder names, plugin names, host names and parameter values
can hold anything a file system or YAML allows: control characters (an ESC that
recolours a terminal, a newline that starts a new line), GitHub workflow commands
(`::error::`, `::add-mask::`), Markdown and HTML, spreadsheet formulas. Each writer
passes what it prints through the function for its format, at the point of output:

* :func:`printable` - terminal text (lint, diff, runs, messages): control characters
  shown as visible escapes (`\\x1b`, `\\n`);
* :func:`gh_data`, :func:`gh_prop`, :func:`gh_log` - GitHub Actions workflow commands,
  following the runner's own escaping (`%`, CR and LF in data; also `:` and `,` in
  properties), and plain log lines that could otherwise be read as a command;
* :func:`md_code`, :func:`md_text`, :func:`md_cell` - Markdown (CommonMark / GFM tables);
* :func:`csv_cell` - CSV cells safe from formula injection (OWASP's rule).

Nothing here imports more than the standard library.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls, DEL, and the Unicode characters that move or reorder text on a terminal
# or in a browser (line and paragraph separators, bidirectional overrides and isolates).
# Lone surrogates too: a file name that is not UTF-8 reaches Python with its bytes as U+DC80-U+DCFF
# (`os.fsdecode`), which no output can encode; each is shown as the byte it stands for (`\xff`).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_control(m: re.Match[str]) -> str:
    c = m.group(0)
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte `os.fsdecode` could not decode
        code -= 0xDC00
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` safe for a terminal: each control character as a visible escape (`\\x1b`, `\\n`).

    With `keep_newlines`, line feeds stay (text that graphspec itself laid out on several lines).
    """
    if keep_newlines:
        return "\n".join(_CONTROLS.sub(_escape_control, line) for line in text.split("\n"))
    return _CONTROLS.sub(_escape_control, text)


# -- GitHub Actions workflow commands ------------------------------------------------------------------------
def gh_data(value: str) -> str:
    """The message of a workflow command (after the second `::`): `%`, CR and LF escaped."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_prop(value: str) -> str:
    """A property value of a workflow command (`file=...`, `title=...`): also `:` and `,` escaped."""
    return gh_data(value).replace(":", "%3A").replace(",", "%2C")


def gh_log(line: str) -> str:
    """A plain log line of the github format: never read as a workflow command.

    The runner reads a line as a command when it starts (after blanks) with `::` or `##[`;
    the text it holds comes from file and model names, so every `::` is broken, CR and LF
    escaped (one line stays one line), and controls shown as escapes.
    """
    text = printable(gh_data(line))
    text = text.replace("::", ":%3A")
    if text.lstrip().startswith("##["):
        text = text.replace("##[", "#%23[", 1)
    return text


# -- Markdown ------------------------------------------------------------------------------------------------
# What Markdown acts on inside a line: escapes, code, emphasis, links and images, raw HTML and
# entities, strikethrough, table cells. (Block markers such as `#` or `-` only count at a line's start,
# and graphspec never starts a line with outside text.)
_MD_PUNCT = re.compile(r"([\\`*_\[\]<>&|~])")
_TICKS = re.compile(r"`+")


def md_text(text: str) -> str:
    """Plain text in Markdown: every punctuation character that Markdown or HTML could act on
    backslash-escaped (no raw HTML, no link, no emphasis, no table cell break), controls and
    newlines as visible escapes."""
    return _MD_PUNCT.sub(r"\\\1", printable(text))


def md_code(text: str, *, in_table: bool = False) -> str:
    """`text` as a CommonMark code span: a fence of backticks longer than the longest run in it,
    a space inside each end when it starts or ends with a backtick or a blank. Backslashes are
    literal inside a code span and stay as they are; in a table cell `|` is escaped, which GFM
    undoes before the span is read."""
    body = printable(text)
    longest = max((len(m.group(0)) for m in _TICKS.finditer(body)), default=0)
    fence = "`" * (longest + 1)
    if not body or body[0] in "` " or body[-1] in "` ":
        body = f" {body} "
    span = f"{fence}{body}{fence}"
    return span.replace("|", "\\|") if in_table else span


def md_cell(text: str) -> str:
    """Plain text in a GFM table cell (see :func:`md_text`: `|` is escaped with the rest)."""
    return md_text(text)


# -- CSV ----------------------------------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell safe to open in a spreadsheet: a string that starts with `=`, `+`, `-`, `@`, a tab or
    a carriage return gets a leading `'` (OWASP's rule against formula injection), and its controls
    and newlines become visible escapes; numbers (negative ones too) stay numbers."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return printable(value)


__all__ = ["csv_cell", "gh_data", "gh_log", "gh_prop", "md_cell", "md_code", "md_text", "printable"]
