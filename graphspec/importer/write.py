"""Writing an imported spec as YAML: one flow-style line per input, node, block node and model.

Numbers that are exact ratios of small integers are written as the expression that computes them
(`1/255` is `"${1/255}"`, which the spec reads back as the same float), and values the importer
marks as expressions (:class:`Expr`, the parameters of blocks) are written as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

_PLAIN_STR = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-./]*$")
_DIGIT_STR = re.compile(r"^[0-9][A-Za-z0-9_\-]*$")
_YAML_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}
_SIMPLE_EXPR = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_\-]*$")
MAX_DENOMINATOR = 1024


class Expr(str):
    """A `$name` or `${...}` value, written as it is (a plain string would have its `$` escaped)."""


def rational(value: float) -> str | None:
    """`"${p/q}"` for a float that is exactly p/q with a small q and whose decimal form is long."""
    text = repr(value)
    if "e" in text or "inf" in text or "nan" in text or len(text.lstrip("-0.").replace(".", "")) < 12:
        return None  # short decimals (0.5, 3291.890625) read better as they are
    for q in range(2, MAX_DENOMINATOR + 1):
        p = round(value * q)
        if abs(p) < 10**6 and p / q == value and p % q:
            return f"${{{p}/{q}}}"
    return None


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        expr = rational(value)
        if expr is not None:
            return json.dumps(expr)
        text = repr(value)
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e")
        return text
    if isinstance(value, Expr):
        return str(value) if _SIMPLE_EXPR.match(value) else json.dumps(str(value))
    if isinstance(value, str):
        if _PLAIN_STR.match(value) and value.lower() not in _YAML_WORDS:
            return value
        if _DIGIT_STR.match(value) and yaml.safe_load(value) == value:
            return value  # `1_conv`: a block node's name
        return json.dumps(value.replace("$", "$$"))  # `$` starts a variable in a spec; `$$` is a `$`
    raise TypeError(f"cannot write {type(value).__name__}")


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _inputs(items: dict[str, Any]) -> list[str]:
    """An input with only a shape is its shape (`x: [28, 28]`); one input goes on one line."""
    short = {k: (v["shape"] if isinstance(v, dict) and list(v) == ["shape"] else v) for k, v in items.items()}
    if len(short) == 1:
        return [f"inputs: {_flow(short)}"]
    return ["inputs:"] + [f"  {_scalar(k)}: {_flow(v)}" for k, v in short.items()]


def _blocks(items: dict[str, Any]) -> list[str]:
    lines = ["blocks:"]
    for name, block in items.items():
        lines.append(f"  {_scalar(name)}:")
        for key, value in block.items():
            if key == "nodes":
                lines.append("    nodes:")
                lines.extend(f"      {_scalar(k)}: {_flow(v)}" for k, v in value.items())
            else:
                lines.append(f"    {key}: {_flow(value)}")
    return lines


def to_yaml(data: dict[str, Any], header: Iterable[str] = (), note: str | None = None) -> str:
    """Readable YAML: one flow-style line per input, node and model. `note` is a comment after
    `graphspec: 1`, on the same line; `header` are comment lines after it."""
    lines = [f"graphspec: {data['graphspec']}" + (f"  # {note}" if note else "")]
    lines.extend(f"# {h}" if h else "#" for h in header)
    lines.append(f"name: {_scalar(data['name'])}")
    for section in ("inputs", "blocks", "nodes", "models"):
        items = data.get(section)
        if not items:
            continue
        if section == "inputs":
            lines.extend(_inputs(items))
            continue
        if section == "blocks":
            lines.extend(_blocks(items))
            continue
        lines.append(f"{section}:")
        for key, value in items.items():
            lines.append(f"  {_scalar(key)}: {_flow(value)}")
    if data.get("compile"):
        lines.append("compile:")
        lines.extend(f"  {_scalar(k)}: {_flow(v)}" for k, v in data["compile"].items())
    if data.get("expect"):
        lines.append(f"expect: {_flow(data['expect'])}")
    return "\n".join(lines) + "\n"
