"""A saved model's compile settings (`compile_config` of a `.keras` file) as a spec's `compile:` section.

A `.keras` file is loaded with `compile=False` (nothing of it runs); its `config.json` still holds the
optimizer, loss and metrics as Keras serialised them. Each is written as the spec writes it: a name
(`mse`, `accuracy`), or `{type: Adam, learning_rate: 0.01}` with only the arguments that differ from the
catalog's defaults (the table the layers' defaults come from). Anything the catalog does not know (a
custom loss, a schedule object, a registered class) makes the section inexpressible: then none is written,
and the reason is returned for a note.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from graphspec.spec import catalog

_SKIP_TOP = {"jit_compile": (True, "auto"), "steps_per_execution": (1,), "run_eagerly": (False,)}


class _Inexpressible(Exception):
    pass


def read_config(path: str | Path) -> dict[str, Any] | None:
    """The `compile_config` of a `.keras` file (already size-checked), None when it has none."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("config.json").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    config = data.get("compile_config") if isinstance(data, dict) else None
    return config if isinstance(config, dict) else None


def _number(value: Any) -> Any:
    """A float32 value Keras wrote with float64 digits (0.009999999776482582) as its short form (0.01)."""
    if isinstance(value, float):
        import numpy as np

        short = float(str(np.float32(value)))
        return short if float(np.float32(short)) == float(np.float32(value)) else value
    return value


def _object(value: Any, table: catalog.Table, what: str) -> Any:
    """One optimizer, loss or metric: a name, or `{type: ..., args}` without defaults."""
    if isinstance(value, str):
        if table.resolve(value) is None:
            raise _Inexpressible(f"{what} {value!r} is not a Keras built-in")
        return value
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        raise _Inexpressible(f"{what} {value!r} is not a serialised Keras object")
    cls = value["class_name"]
    if value.get("registered_name") not in (None, cls) or not str(value.get("module", "keras.")).startswith("keras"):
        raise _Inexpressible(f"{what} {cls} is a custom class")
    if table.resolve(cls) is None:
        raise _Inexpressible(f"{what} {cls} is not in graphspec's table of Keras built-ins")
    params = (table.classes.get(cls) or {}).get("params") or {}
    out: dict[str, Any] = {"type": cls}
    for key, arg in (value.get("config") or {}).items():
        if key == "name" and arg in (None, catalog.snake(cls), params.get("name", {}).get("default")):
            continue
        if key == "dtype" and arg in (None, "float32"):
            continue
        if isinstance(arg, dict) and "class_name" in arg:
            raise _Inexpressible(f"{what} {cls}'s `{key}` is an object ({arg['class_name']})")
        arg = _number(arg)
        if key in params and "default" in params[key] and params[key]["default"] == arg:
            continue
        out[key] = arg
    if len(out) == 1 and table is catalog.OPTIMIZERS and table.resolve(cls.lower()) is not None:
        return cls.lower()  # no argument: the name alone, as a spec writes it (`adam`)
    return out


def _many(value: Any, table: catalog.Table, what: str) -> Any:
    if isinstance(value, list):
        return [None if v is None else _many(v, table, what) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {str(k): _many(v, table, what) for k, v in value.items()}
    return _object(value, table, what)


def compile_section(config: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """(the `compile:` section, None) or (None, why it cannot be written)."""
    if not config or config.get("optimizer") is None:
        return None, None
    try:
        out: dict[str, Any] = {"optimizer": _object(config["optimizer"], catalog.OPTIMIZERS, "optimizer")}
        if config.get("loss") is not None:
            out["loss"] = _many(config["loss"], catalog.LOSSES, "loss")
        if config.get("loss_weights") is not None:
            out["loss_weights"] = config["loss_weights"]
        if config.get("metrics"):
            out["metrics"] = _many(config["metrics"], catalog.METRICS, "metric")
        if config.get("weighted_metrics"):
            raise _Inexpressible("weighted metrics have no place in a spec")
    except _Inexpressible as exc:
        return None, f"compile settings not written: {exc}"
    for key, defaults in _SKIP_TOP.items():
        if key in config and config[key] not in defaults:
            out[key] = config[key]
    out.pop("run_eagerly", None)
    return out, None
