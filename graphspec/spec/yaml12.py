"""YAML 1.2 core-schema scalars, and the YAML 1.1 forms that read differently.

PyYAML resolves plain scalars with YAML 1.1 rules: `1:3` is 63 (base 60), `010` is 8
(octal), `0b11` is 3, `1_000` is 1000, and `yes`/`no`/`on`/`off` are booleans. YAML 1.2
(JSON-compatible, what editors and most other tools read) takes all of them as text,
`010` as 10, and `1e-4`, `.5e3`, `0o17` as numbers. graphspec reads YAML 1.2: a plain
scalar the two versions read alike is taken as it is; one that YAML 1.1 reads as text
and 1.2 as a number takes the 1.2 number; one that YAML 1.1 reads as another value
than 1.2 is refused (GS007), because the author may have meant either.
"""

from __future__ import annotations

import math
import re
from typing import Any

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")
_WORDS = {"yes", "no", "on", "off"}


def resolve(text: str) -> Any:
    """The value of a plain scalar under the YAML 1.2 core schema."""
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT10.match(text):
        return int(text)
    if _INT8.match(text):
        return int(text[2:], 8)
    if _INT16.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return text


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type (True is not 1; NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'the text "{value}"'
    return f"{value:,}" if isinstance(value, int) else repr(value)


def difference(text: str, v11: Any, v12: Any) -> tuple[str, str]:
    """(message, hint) for a plain scalar that YAML 1.1 reads as `v11` and YAML 1.2 as `v12`."""
    if isinstance(v11, bool) and text.lower() in _WORDS:
        word = "true" if v11 else "false"
        return (f"`{text}` is {word} in YAML 1.1 but {_shown(v12)} in YAML 1.2",
                f"write `{word}` for a boolean, or quote it (\"{text}\") for text")
    if ":" in text:
        kind = "a base-60 number"
        hint = "write the number in decimal, a list such as `[1, 3]`, or quote it for text"
    elif re.match(r"^[-+]?0b", text):
        kind = "a binary number"
        hint = f"write it in decimal ({v11})"
    elif "_" in text:
        kind = "a number with `_` separators"
        hint = f"write it without `_` ({v11})"
    elif re.match(r"^[-+]?0[0-9]", text):
        kind = "an octal number"
        hint = f"write the number you mean in decimal: {v11} (YAML 1.1) or {v12} (YAML 1.2)"
    else:
        kind = "a value"
        hint = "quote it for text, or write the value as YAML 1.2 reads it"
    return (f"`{text}` is {kind} in YAML 1.1 ({_shown(v11)}) but {_shown(v12)} in YAML 1.2: graphspec "
            "reads YAML 1.2 and refuses what the two read differently", hint)
