"""`call:` arguments and `inputs:` mappings: checked against the signature of the layer's `call`.

A node's `call:` mapping becomes keyword arguments of the layer call
(`layer(x, training=False)`). Each key must be an argument of that layer's `call`
(from the generated catalog, or read statically from a plugin's source), its value
of the type the argument's default has; `training` is a boolean or null for every
layer, and arguments that take tensors (`mask`, `initial_state`, ...) are given with
`inputs:`, never as a value. So `training: '__import__("os")'` is refused, not
passed to Keras as a true-ish string.

An `inputs:` mapping passes every tensor by name (`{query: q, value: v}`): each
name must be an argument of the call (the tensor argument, `sequences` for an
LSTM, included), and every required one must be given, as `build` would find.
"""

from __future__ import annotations

from typing import Any

from graphspec.diagnostics import PathKey
from graphspec.spec import catalog
from graphspec.spec.catalog import did_you_mean
from graphspec.spec.layers import Problem, _bad, boolean, is_int, is_number
from graphspec.spec.plugins import PLUGIN_CALL


def _training(value: Any) -> Problem | None:
    if value is None or isinstance(value, bool):
        return None
    return _bad("true, false or null", value, "`training` says whether the layer runs as in training")


def _typed(name: str, entry: dict[str, Any], value: Any) -> Problem | None:
    """A problem with `value` for call argument `name` whose signature entry is `entry`."""
    if name == "training":
        return _training(value)
    if entry.get("required") or entry.get("default", 0) is None:
        return ("GS112", f"`{name}` takes a tensor: it cannot be a value in `call:`",
                f"pass it with `inputs: {{{name}: NODE, ...}}` (and name the main input too)")
    default = entry.get("default")
    if isinstance(default, bool):
        return boolean(value)
    if is_int(default):
        return None if is_int(value) else _bad("an integer", value)
    if isinstance(default, float):
        return None if is_number(value) else _bad("a number", value)
    if isinstance(default, str):
        return None if isinstance(value, str) else _bad("a string", value)
    return None


def _signature(kind: str, layer: str | None, plugins: dict[str, dict[str, Any]]
               ) -> tuple[dict[str, Any] | None, bool, str]:
    """(call arguments, takes **kwargs, what is called) for a node's layer; None args: unknown."""
    if kind in {"model", "application"}:
        return {}, False, "a model"
    if layer is None:
        return None, True, "the layer"
    if layer in plugins:
        sig = plugins[layer].get(PLUGIN_CALL)
        if sig is None:
            return None, True, layer
        # A plugin's own defaults type its arguments; one without a plain default takes any plain value.
        typed = {k: (v if isinstance(v, dict) and isinstance(v.get("default"), (bool, int, float, str)) else None)
                 for k, v in sig.items() if k != "**kwargs"}
        return typed, "**kwargs" in sig, layer
    entry = catalog.LAYERS.get(layer)
    if entry is None:
        return None, True, layer
    return dict(entry.get("call", {}).get("params", {})), bool(entry.get("call", {}).get("kwargs")), layer


def check_call(kind: str, layer: str | None, call: dict[str, Any], path: PathKey,
               plugins: dict[str, dict[str, Any]]) -> list[tuple[PathKey, bool, Problem]]:
    """Problems with a node's `call:` (`kind`: type, share, model, application or op; `layer`: its class)."""
    out: list[tuple[PathKey, bool, Problem]] = []
    if not call:
        return out
    where = path + ("call",)
    if kind == "op":
        return [(where, True, ("GS111", "`op` nodes take their arguments on the node itself; `call:` is for "
                               "layers and models", None))]
    params, any_kwargs, what = _signature(kind, layer, plugins)
    for key, value in call.items():
        if key == "training":
            problem = _training(value)
        elif params is not None and key not in params and not any_kwargs:
            choices = sorted({*params, "training"})
            out.append((where + (key,), True, ("GS111", f"{what}'s call takes no argument {key!r}",
                                               did_you_mean(str(key), choices)
                                               or f"it takes: {', '.join(choices)}")))
            continue
        elif params is None or params.get(key) is None:
            problem = None  # a plugin argument without a plain default, or **kwargs: any plain value
        else:
            problem = _typed(key, params[key], value)
        if problem:
            out.append((where + (key,), False, problem))
    return out


def check_inputs(kind: str, name: str, input_keys: list[str], path: PathKey,
                 provided: list[str]) -> list[tuple[PathKey, bool, Problem]]:
    """Problems with the names of a node's `inputs:` mapping: each must be an argument of the layer's
    (`kind` type) or op's (`kind` op) call, with a did-you-mean; every required argument must be given,
    there or in `provided` (`call:` keys, an op's own arguments)."""
    if kind == "op":
        entry, what, context = catalog.OPS.get(name), f"op {name}", set()
    else:
        entry, what, context = catalog.LAYERS.get(name, {}).get("call"), f"{name}.call", {"training"}
    if not entry or entry.get("kwargs"):
        return []
    params: dict[str, Any] = dict(entry["params"])
    if entry.get("tensor"):
        params = {entry["tensor"]: {"required": True}, **params}
    known = sorted(set(params) | context)
    given = {*input_keys, *provided}
    missing = [k for k, p in params.items() if p.get("required") and k not in given]
    unknown = [key for key in input_keys if key not in known]
    takes = f"{what} takes " + ", ".join(f"`{k}`" for k in known)
    out: list[tuple[PathKey, bool, Problem]] = []
    for key in unknown:
        hint = did_you_mean(key, known)
        if hint is None and len(unknown) == 1 and len(missing) == 1:
            hint = f"did you mean `{missing[0]}`? ({takes})"  # the one tensor it needs, under another name
        out.append((path + ("inputs", key), True, ("GS111", f"{what} has no argument `{key}`", hint or takes)))
    meant = {problem[2] or "" for _, _, problem in out}
    for key in missing:
        if not any(f"`{key}`?" in m for m in meant):  # else reported as the misspelling it is
            out.append((path + ("inputs",), True, (
                "GS113", f"{what} needs `{key}`, and an `inputs:` mapping passes every tensor by name",
                f"add `{key}: <node>` to the mapping")))
    return out
