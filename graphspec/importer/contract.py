"""Custom layers and Keras's serialization contract.

A spec rebuilds a custom layer as Keras does when it loads a model: `Class(**layer.get_config())`.
That works only if the layer keeps Keras's contract: `__init__` takes `name` and the other base
arguments (through `**kwargs`), and `get_config()` returns every argument `__init__` was given.
A layer that breaks it cannot be rebuilt by Keras either, so the import stops here with a
diagnostic that blames the layer, names the broken part, and says how to fix it, rather than
failing later in the round-trip check.
"""

from __future__ import annotations

import inspect
from typing import Any

from graphspec.importer.layer_args import Probe
from graphspec.importer.values import Unexpressible, norm

_ABSENT = object()


def _params(cls: type) -> tuple[list[inspect.Parameter], bool]:
    """`__init__`'s named parameters (after self), and whether it takes `**kwargs`."""
    try:
        sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    except (TypeError, ValueError):
        return [], True
    params = list(sig.parameters.values())[1:]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, var_kw


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(norm(a) == norm(b))
    except Exception:
        return a is b


def _weight_shapes(layer: Any) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in w.shape) for w in layer.weights]


def check_contract(layer: Any, type_name: str, where: str, probe: Probe) -> dict[str, Any]:
    """Check that a custom layer rebuilds from its configuration; its configuration if it does.

    Raises Unexpressible (GS701) naming what the layer does wrong and how to fix it.
    """
    cls = type(layer)
    fix_init = ("fix the layer: `def __init__(self, ..., **kwargs)` and pass them on with "
                "`super().__init__(**kwargs)`")
    try:
        config = layer.get_config()
    except Exception as exc:
        raise Unexpressible(
            "GS701", f"{where}: the custom layer's get_config() fails ({type(exc).__name__}: {_first(exc)})",
            f"fix the layer: give {type_name} a get_config() that returns the arguments of its __init__, "
            "e.g. `return {**super().get_config(), \"units\": self.units}`") from None
    named, var_kw = _params(cls)
    names = {p.name for p in named}
    if not var_kw:
        refused = [k for k in ("name", "trainable", "dtype") if k in config and k not in names]
        if refused:
            listed = ", ".join(f"`{k}`" for k in refused)
            raise Unexpressible(
                "GS701", f"{where}: {type_name}.__init__ takes no `**kwargs`, so it rejects {listed}, which "
                "its get_config() returns (as every layer's does): Keras cannot recreate the layer from its "
                "config, and neither can a spec", fix_init)
    missing = [p for p in named if p.name not in config]
    required = [p.name for p in missing if p.default is inspect.Parameter.empty]
    if required:
        listed = ", ".join(f"`{k}`" for k in required)
        raise Unexpressible(
            "GS701", f"{where}: {type_name}.get_config() does not return {listed}, which __init__ requires: Keras "
            "cannot recreate the layer from its config, and neither can a spec",
            _fix_config(type_name, required))
    changed = [(p.name, getattr(layer, p.name, _ABSENT), p.default) for p in missing]
    changed = [(k, v, d) for k, v, d in changed if v is not _ABSENT and not _same(v, d)]
    if changed:
        k, v, d = changed[0]
        raise Unexpressible(
            "GS701", f"{where}: {type_name}.get_config() does not return `{k}`: the layer has {k}={v!r}, and "
            f"rebuilt from its config it would get the default {d!r}",
            _fix_config(type_name, [c[0] for c in changed]))
    _rebuilt_weights(layer, cls, config, type_name, where, probe, [p.name for p in missing])
    return config  # type: ignore[no-any-return]


def _rebuilt_weights(layer: Any, cls: type, config: dict[str, Any], type_name: str, where: str, probe: Probe,
                     missing: list[str]) -> None:
    """Rebuild the layer from its config, call it like the original, and compare its weights."""
    try:
        rebuilt = cls.from_config(dict(config))  # type: ignore[attr-defined]
    except Exception as exc:
        raise Unexpressible(
            "GS701", f"{where}: {type_name}.from_config(layer.get_config()) fails ({type(exc).__name__}: "
            f"{_first(exc)}): "
            "Keras cannot recreate the layer from its config, and neither can a spec",
            "fix the layer so that `from_config(get_config())` recreates it (its config must hold exactly the "
            "arguments of its __init__)") from None
    try:
        probe(rebuilt)
    except Exception as exc:
        raise Unexpressible(
            "GS701", f"{where}: {type_name} recreated from its config fails on the same inputs "
            f"({type(exc).__name__}: {_first(exc)})",
            _fix_config(type_name, missing) if missing else None) from None
    want, got = _weight_shapes(layer), _weight_shapes(rebuilt)
    if want != got:
        cause = (f"its get_config() does not return {', '.join(f'`{k}`' for k in missing)}" if missing
                 else "its get_config() does not capture how it was created")
        raise Unexpressible(
            "GS701", f"{where}: {type_name} recreated from its config has weights of shapes {got}, the original "
            f"{want}: {cause}", _fix_config(type_name, missing) if missing else
            "fix the layer: get_config() must return every argument of __init__, with the values it was given")


def _fix_config(type_name: str, keys: list[str]) -> str:
    items = ", ".join(f'"{k}": self.{k}' for k in keys)
    return f"fix the layer: return them from {type_name}.get_config(): `return {{**super().get_config(), {items}}}`"


def _first(exc: BaseException) -> str:
    """The first sentence of an exception's message, on one line."""
    text = " ".join(str(exc).split())
    end = text.find(". ")
    text = text[:end + 1] if 0 < end < 240 else text
    return text if len(text) <= 240 else text[:237] + "..."
