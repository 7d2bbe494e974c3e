"""Writing an imported spec as YAML: one flow-style line per input, node and model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

_PLAIN_STR = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-./]*$")
_YAML_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e")
        return text
    if isinstance(value, str):
        if _PLAIN_STR.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value.replace("$", "$$"))  # `$` starts a variable in a spec; `$$` is a `$`
    raise TypeError(f"cannot write {type(value).__name__}")


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def to_yaml(data: dict[str, Any], header: Iterable[str] = ()) -> str:
    """Readable YAML: one flow-style line per input, node and model."""
    lines = [f"# {h}" if h else "#" for h in header]
    lines.append(f"graphspec: {data['graphspec']}")
    lines.append(f"name: {_scalar(data['name'])}")
    for section in ("inputs", "nodes", "models"):
        items = data.get(section)
        if not items:
            continue
        lines.append(f"{section}:")
        for key, value in items.items():
            lines.append(f"  {_scalar(key)}: {_flow(value)}")
    return "\n".join(lines) + "\n"
