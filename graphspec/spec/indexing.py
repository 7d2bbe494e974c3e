"""Python index expressions as spec data: the `key` of a `get_item` op node.

`x[:, 0]` in Python is `{op: get_item, key: "[:, 0]"}` in a spec. The text is read by a closed
grammar, never evaluated: items separated by commas, each an integer, a slice `start:stop:step`
(any part may be left out), `...` or `None` (a new axis). As in Python, a comma makes the key a
tuple (`"[0]"` is the index 0, `"[0,]"` the tuple `(0,)`); the two index a tensor alike but are
different keys, and an import keeps whichever the model used.

:func:`parse_key` gives the Python key (what `tensor[key]` takes); :func:`key_text` writes one.
"""

from __future__ import annotations

import re
from typing import Any

MAX_KEY = 200  # characters of a key

_INT = re.compile(r"^[+-]?[0-9]{1,12}$")


class BadKey(ValueError):
    """A key that is not an index expression; the message says why."""


def _int(text: str, whole: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not _INT.match(text):
        raise BadKey(f"`{text}` in {whole!r} is not an integer")
    return int(text)


def _item(text: str, whole: str) -> Any:
    text = text.strip()
    if text == "...":
        return Ellipsis
    if text == "None":
        return None
    if ":" in text:
        parts = text.split(":")
        if len(parts) > 3:
            raise BadKey(f"`{text}` in {whole!r} has more than two `:`")
        values = [_int(p, whole) for p in parts] + [None] * (3 - len(parts))
        if values[2] == 0:
            raise BadKey(f"`{text}` in {whole!r}: a slice step cannot be zero")
        return slice(*values) if len(parts) == 3 else slice(values[0], values[1])
    if not text:
        raise BadKey(f"{whole!r} has an empty item")
    value = _int(text, whole)
    assert value is not None
    return value


def parse_key(text: Any) -> Any:
    """The Python key that the text `"[...]"` writes; BadKey (a ValueError) says what is wrong."""
    if not isinstance(text, str):
        raise BadKey(f"a key is text such as \"[:, 0]\", not {type(text).__name__}")
    if len(text) > MAX_KEY:
        raise BadKey(f"a key is at most {MAX_KEY} characters")
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise BadKey(f"{text!r} is not written in brackets, as in \"[:, 0]\"")
    body = body[1:-1]
    if not body.strip():
        raise BadKey(f"{text!r} is empty")
    parts = body.split(",")
    tuple_key = len(parts) > 1
    if tuple_key and not parts[-1].strip():
        parts = parts[:-1]  # a trailing comma: a tuple of what comes before it
    items = [_item(p, text) for p in parts]
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise BadKey(f"{text!r} has more than one `...`")
    return tuple(items) if tuple_key else items[0]


def _item_text(item: Any) -> str:
    if item is Ellipsis:
        return "..."
    if item is None:
        return "None"
    if isinstance(item, slice):
        parts = ["" if v is None else str(v) for v in (item.start, item.stop)]
        if item.step is not None:
            parts.append(str(item.step))
        return ":".join(parts)
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item)
    if isinstance(item, (list, tuple)) or type(item).__name__ in ("ndarray", "KerasTensor"):
        # Keras itself refuses it on a symbolic tensor ("Unsupported key type for array slice"): such a
        # model comes from eager code, and its saved form would not load either. `take` says the same.
        raise BadKey(f"a {type(item).__name__} cannot be part of a key: Keras cannot slice a symbolic tensor "
                     "with a list of indices either (\"Unsupported key type for array slice\"); write "
                     "`{op: take, indices: [...], axis: N}`")
    raise BadKey(f"a {type(item).__name__} cannot be part of a key")


def key_text(key: Any) -> str:
    """The text of a Python key (ints, slices of ints, `...`, `None`, or a tuple of them)."""
    if isinstance(key, tuple):
        if not key:
            raise BadKey("an empty tuple cannot be written as a key")
        items = [_item_text(k) for k in key]
        return "[" + ", ".join(items) + ("," if len(items) == 1 else "") + "]"
    if isinstance(key, slice):
        for v in (key.start, key.stop, key.step):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise BadKey(f"a slice of {type(v).__name__} cannot be part of a key")
    return "[" + _item_text(key) + "]"
