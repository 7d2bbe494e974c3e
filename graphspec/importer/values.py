"""Keras configuration values as spec data, and the errors of an import.

* :func:`plain`: a config value as YAML-able data (tuples as lists, NumPy as Python), or
  :class:`Unexpressible`;
* :func:`norm`, :func:`strip_names`, :func:`diff_keys`: configs made comparable, and compared;
* :func:`is_tensor`, :func:`contains_tensor`: tensors among a call's arguments;
* :class:`Unexpressible`: something the format cannot express; :func:`diag` makes the diagnostic.
"""

from __future__ import annotations

import math
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity


class Unexpressible(Exception):
    """Something the format cannot express; becomes a diagnostic."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


def is_tensor(value: Any) -> bool:
    """Whether `value` is a symbolic tensor of a functional model."""
    return hasattr(value, "_keras_history") and hasattr(value, "shape") and hasattr(value, "dtype")


def contains_tensor(value: Any) -> bool:
    """Whether `value` is a tensor or holds one (in lists, tuples and dicts)."""
    if is_tensor(value):
        return True
    if isinstance(value, (list, tuple)):
        return any(contains_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(contains_tensor(v) for v in value.values())
    return False


def plain(value: Any, where: str) -> Any:
    """Config values -> YAML-able data (tuples -> lists, NumPy -> Python); else unexpressible."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unexpressible("GS701", f"{where}: {value} cannot be written in a spec (not a finite number)")
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, where) for k, v in value.items()}
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # NumPy scalars and arrays
        return plain(value.tolist(), where)
    if isinstance(value, slice):
        raise Unexpressible("GS702", f"{where}: a slice ({value}) cannot be written in a spec",
                            "index with keras.ops.slice/take, or with a layer such as Cropping or Reshape")
    raise Unexpressible("GS701", f"{where}: a {type(value).__name__} value cannot be written in a spec")


def norm(value: Any) -> Any:
    """For comparisons: tuples as lists, NumPy as Python, recursively."""
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()
    return value


def strip_names(value: Any, top: bool = True) -> Any:
    """A config without the names of layers (top level, and nested layer configs: those with
    `trainable`); other `name` keys (a dtype policy's) are part of the configuration."""
    if isinstance(value, dict):
        drop = {"build_config"} | ({"name"} if top or "trainable" in value else set())
        return {k: strip_names(v, False) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [strip_names(v, False) for v in value]
    return value


def diff_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys whose values differ (or that only one of the two has), sorted."""
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def diag(code: str, message: str, source: str, hint: str | None = None) -> Diagnostic:
    """An error about the imported model, located at its source."""
    return Diagnostic(code, Severity.ERROR, message, Location(source), hint)
