"""Layer arguments: checked strictly against the Keras catalog.

Pydantic checks the shape of a spec; this module checks what its keys mean to
Keras: that a layer type exists, that every argument is one the layer takes,
and that each value is of a type Keras would not silently misread
(`units: yes`, `units: "64"`, `rate: .nan`). Values that name Keras objects
(activations, initializers, ...) resolve through closed tables only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from graphspec.spec import catalog
from graphspec.spec.catalog import did_you_mean
from graphspec.spec.indexing import parse_key
from graphspec.diagnostics import PathKey

# A checker returns an error message (and optional hint) or None.
Problem = tuple[str, str, str | None]  # (code, message, hint)
Checker = Callable[[Any], Problem | None]

MAX_DIM = 2**31 - 1
DTYPES = {
    "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string", "complex64", "complex128",
    "mixed_float16", "mixed_bfloat16",
}
# Base-layer keyword arguments a spec may set (others, like `name`, come from the spec).
BASE_KWARGS = {"trainable", "dtype", "autocast"}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _bad(expected: str, value: Any, hint: str | None = None) -> Problem:
    shown = repr(value) if not isinstance(value, (dict, list)) or len(repr(value)) < 60 else _type_name(value)
    if hint is None and isinstance(value, str) and expected.startswith(("an integer", "a positive integer")):
        try:
            int(value)
            hint = f"write {value} without quotes"
        except ValueError:
            pass
    if hint is None and isinstance(value, bool) and "integer" in expected:
        hint = "`true` and `false` are booleans: write a number"
    return ("GS112", f"expected {expected}, got {_type_name(value)} ({shown})", hint)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and not isinstance(value, bool)


def positive_int(value: Any) -> Problem | None:
    if not is_int(value) or value < 1:
        return _bad("a positive integer", value)
    if value > MAX_DIM:
        return ("GS500", f"{value:,} is larger than the largest dimension Keras can hold ({MAX_DIM:,})", None)
    return None


def optional_positive_int(value: Any) -> Problem | None:
    return None if value is None else positive_int(value)


def non_negative_int(value: Any) -> Problem | None:
    if not is_int(value) or value < 0:
        return _bad("a non-negative integer", value)
    return None


def any_int(value: Any) -> Problem | None:
    return None if is_int(value) else _bad("an integer", value)


def int_tuple(value: Any) -> Problem | None:
    """An int or a list of ints (kernel_size, strides, pool_size, ...)."""
    if is_int(value):
        return positive_int(value)
    if isinstance(value, list) and value and all(is_int(v) for v in value):
        for v in value:
            p = positive_int(v)
            if p:
                return p
        return None
    return _bad("a positive integer or a list of them", value)


def optional_int_tuple(value: Any) -> Problem | None:
    return None if value is None else int_tuple(value)


def int_list(value: Any) -> Problem | None:
    if isinstance(value, list) and all(is_int(v) for v in value):
        return None
    return _bad("a list of integers", value)


def axis(value: Any) -> Problem | None:
    if is_int(value) or (isinstance(value, list) and value and all(is_int(v) for v in value)):
        return None
    return _bad("an axis (integer) or a list of axes", value)


def padding_amount(value: Any) -> Problem | None:
    """ZeroPadding/Cropping: int, list of ints, or list of [before, after] pairs."""
    if is_int(value) and value >= 0:
        return None
    if isinstance(value, list) and value:
        for v in value:
            if is_int(v) and v >= 0:
                continue
            if isinstance(v, list) and len(v) == 2 and all(is_int(x) and x >= 0 for x in v):
                continue
            return _bad("a non-negative integer, a list of them, or a list of [before, after] pairs", value)
        return None
    return _bad("a non-negative integer, a list of them, or a list of [before, after] pairs", value)


def rate(value: Any) -> Problem | None:
    if not is_number(value) or not math.isfinite(value):
        return _bad("a number between 0 and 1", value)
    if not 0 <= value <= 1:
        return ("GS112", f"expected a number between 0 and 1, got {value}", None)
    return None


def finite_number(value: Any) -> Problem | None:
    if not is_number(value):
        return _bad("a number", value)
    if not math.isfinite(value):
        return ("GS112", f"expected a finite number, got {value}", "NaN and infinity are not valid here")
    return None


def optional_number(value: Any) -> Problem | None:
    return None if value is None else finite_number(value)


def boolean(value: Any) -> Problem | None:
    return None if isinstance(value, bool) else _bad("true or false", value)


def string(value: Any) -> Problem | None:
    return None if isinstance(value, str) else _bad("a string", value)


def one_of(*choices: Any) -> Checker:
    def check(value: Any) -> Problem | None:
        if value in choices and type(value) in {type(c) for c in choices}:
            return None
        shown = ", ".join("null" if c is None else repr(c) for c in choices)
        hint = did_you_mean(value, [c for c in choices if isinstance(c, str)]) if isinstance(value, str) else None
        return ("GS112", f"expected one of {shown}, got {value!r}", hint)

    return check


def dtype(value: Any) -> Problem | None:
    if value is None:
        return None
    if isinstance(value, str) and value in DTYPES:
        return None
    hint = did_you_mean(value, sorted(DTYPES)) if isinstance(value, str) else None
    return ("GS112", f"expected a dtype name, got {value!r}", hint)


def _dangerous(name: str) -> bool:
    return "." in name or ":" in name or "/" in name


def _named(table: catalog.Table, value: Any, *, allow_none: bool = True) -> Problem | None:
    """A name from a closed table, or `{type: Class, ...args}` for a class in it."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        if table.resolve(value):
            return None
        if _dangerous(value):
            return ("GS115", f"{table.kind} {value!r} is not allowed: names are looked up in graphspec's table "
                    "of Keras built-ins, never imported", None)
        return ("GS114", f"unknown {table.kind} {value!r}", table.suggest(value))
    if isinstance(value, dict):
        return _config(table, value)
    return _bad(f"a {table.kind} name or a mapping with `type`", value)


def _config(table: catalog.Table, value: dict[str, Any]) -> Problem | None:
    found = config_problem(table, value)
    return found[1] if found else None


def config_problem(table: catalog.Table, value: dict[str, Any]) -> tuple[PathKey, Problem] | None:
    """The first problem of `{type: Class, ...}` and where it is, relative to the mapping."""
    name = value.get("type")
    if not isinstance(name, str):
        return (), ("GS112", f"a {table.kind} mapping needs `type: ClassName`", None)
    if name not in table.classes:
        if _dangerous(name):
            return ("type",), ("GS115", f"{table.kind} {name!r} is not allowed: only Keras built-ins can be named",
                               None)
        return ("type",), ("GS114", f"unknown {table.kind} class {name!r}",
                           table.suggest(name) or did_you_mean(name, list(table.classes)))
    params = table.classes[name]["params"]
    for key, arg in value.items():
        if key == "type":
            continue
        if key not in params:
            return (key,), ("GS111", f"{name} has no argument {key!r}", did_you_mean(key, list(params)))
        problem = _config_arg(table, name, key, params[key], arg)
        if problem:
            return (key,), problem
    missing = [k for k, p in params.items() if p.get("required") and k not in value]
    if missing:
        return (), ("GS113", f"{name} needs argument {missing[0]!r}", None)
    return None


# Arguments Keras calls as functions: the value must name one in a closed table (resolved to
# the function when building), never a dotted path or anything else Keras would try to call.
CALLABLE_ARGS: dict[tuple[str, str], catalog.Table] = {("MeanMetricWrapper", "fn"): catalog.METRIC_FUNCTIONS}


def _config_arg(table: catalog.Table, cls: str, key: str, param: dict[str, Any], value: Any) -> Problem | None:
    """One argument of `{type: Class, ...}`: a function from a closed table, or a value of its default's type."""
    functions = CALLABLE_ARGS.get((cls, key))
    if functions is not None:
        if isinstance(value, str) and functions.resolve(value):
            return None
        if isinstance(value, str) and _dangerous(value):
            return ("GS115", f"{cls}.{key} {value!r} is not allowed: Keras calls this argument, so it must name "
                    f"a {functions.kind} from graphspec's table, never an import path", None)
        return ("GS114", f"{cls}.{key} must name a {functions.kind}; got {value!r}",
                functions.suggest(value) if isinstance(value, str) else None)
    if key == "learning_rate" and isinstance(value, dict):
        return _named(catalog.SCHEDULES, value, allow_none=False)
    if param.get("opaque_default") or param.get("required") or param.get("default") is None:
        return json_value(value)
    return _by_default(param["default"])(value)


def activation(value: Any) -> Problem | None:
    return _named(catalog.ACTIVATIONS, value)


def initializer(value: Any) -> Problem | None:
    return _named(catalog.INITIALIZERS, value)


def regularizer(value: Any) -> Problem | None:
    return _named(catalog.REGULARIZERS, value)


def constraint(value: Any) -> Problem | None:
    return _named(catalog.CONSTRAINTS, value)


def json_value(value: Any, depth: int = 0) -> Problem | None:
    """Plain data with finite numbers (fallback for arguments without a rule)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ("GS112", f"expected a finite number, got {value}", "NaN and infinity are not valid here")
    if isinstance(value, list):
        for v in value:
            p = json_value(v, depth + 1)
            if p:
                return p
    if isinstance(value, dict):
        return ("GS112", "expected a plain value or a list, got a mapping", None)
    return None


def nested_layer(value: Any) -> Problem | None:
    """Checked by :func:`check_args` recursively; here only its form."""
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return None
    return _bad("a layer mapping such as `{type: LSTM, units: 64}`", value)


def wrapped_model(layer: str, value: dict[str, Any]) -> Problem | None:
    """`layer: {model: NAME}`: TimeDistributed over one of the spec's models (the name is checked with the
    graph)."""
    if layer != "TimeDistributed":
        return _bad("a layer mapping such as `{type: LSTM, units: 64}`", value,
                    f"only TimeDistributed wraps a model (`layer: {{model: NAME}}`); {layer} wraps a layer")
    if set(value) != {"model"} or not isinstance(value["model"], str):
        return _bad("`{model: NAME}`, NAME a model of `models:`", value)
    return None


# Rules by argument name, for every layer that has the argument.
RULES: dict[str, Checker] = {
    "units": positive_int, "filters": positive_int, "num_heads": positive_int, "key_dim": positive_int,
    "value_dim": optional_positive_int, "output_dim": positive_int, "input_dim": positive_int,
    "n": positive_int, "depth_multiplier": positive_int, "groups": positive_int,
    "num_tokens": optional_positive_int, "max_tokens": optional_positive_int, "num_bins": optional_positive_int,
    "kernel_size": int_tuple, "strides": int_tuple, "pool_size": int_tuple, "dilation_rate": int_tuple,
    "size": int_tuple, "output_padding": optional_int_tuple,
    "target_shape": int_list, "dims": int_list,
    "rate": rate, "dropout": rate, "recurrent_dropout": rate, "seed": lambda v: None if v is None else any_int(v),
    "activation": activation, "recurrent_activation": activation,
    "data_format": one_of("channels_last", "channels_first", None),
    "axis": axis, "dtype": dtype, "trainable": boolean,
    "merge_mode": one_of("sum", "mul", "concat", "ave", None),
    "layer": nested_layer, "backward_layer": lambda v: None if v is None else nested_layer(v),
    "momentum": finite_number, "epsilon": finite_number, "stddev": finite_number,
    "scale": lambda v: None, "offset": finite_number,
}
# Rules that depend on the layer (`padding` is a mode for convolutions and an
# amount for ZeroPadding).
LAYER_RULES: dict[tuple[str, str], Checker] = {}
for _name in catalog.LAYERS:
    if _name.startswith(("ZeroPadding", "Cropping")):
        key = "cropping" if _name.startswith("Cropping") else "padding"
        LAYER_RULES[(_name, key)] = padding_amount
    elif "Conv1D" in _name or _name in {"Convolution1D"}:
        LAYER_RULES[(_name, "padding")] = one_of("valid", "same", "causal")
    if _name.startswith(("Conv", "Separable", "Depthwise", "MaxPool", "AveragePool", "AvgPool", "LocallyConnected")):
        LAYER_RULES.setdefault((_name, "padding"), one_of("valid", "same"))
for _name in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization"):
    LAYER_RULES[(_name, "scale")] = boolean
    LAYER_RULES[(_name, "center")] = boolean
for _name in ("Rescaling",):
    LAYER_RULES[(_name, "scale")] = finite_number
LAYER_RULES[("ReLU", "max_value")] = optional_number
# Lookup layers: their tokens are strings (StringLookup) or integers (IntegerLookup); no mask token is null.
LAYER_RULES[("StringLookup", "mask_token")] = lambda v: None if v is None else string(v)
LAYER_RULES[("StringLookup", "oov_token")] = string
LAYER_RULES[("IntegerLookup", "mask_token")] = lambda v: None if v is None else any_int(v)
LAYER_RULES[("IntegerLookup", "oov_token")] = any_int
LAYER_RULES[("Masking", "mask_value")] = finite_number
LAYER_RULES[("Hashing", "mask_value")] = lambda v: None if v is None or isinstance(v, str) else any_int(v)
for _name in ("LSTM", "GRU"):
    LAYER_RULES[(_name, "use_cudnn")] = one_of(True, False, "auto")
LAYER_RULES[("Embedding", "input_dim")] = positive_int
LAYER_RULES[("Reshape", "target_shape")] = lambda v: int_list(v) or (
    None if all(x == -1 or x >= 1 for x in v) and sum(x == -1 for x in v) <= 1
    else ("GS112", f"target_shape entries must be positive, with at most one -1; got {v}", None))
LAYER_RULES[("Permute", "dims")] = lambda v: int_list(v) or (
    None if sorted(v) == list(range(1, len(v) + 1))
    else ("GS112", f"dims must be a permutation of 1..{len(v)}, got {v}", "dims count from 1: 0 is the batch axis"))


def _by_suffix(name: str) -> Checker | None:
    if name.endswith("_initializer"):
        return initializer
    if name.endswith("_regularizer"):
        return regularizer
    if name.endswith("_constraint"):
        return constraint
    if name.startswith(("use_", "return_", "go_", "keep")) or name in {
        "stateful", "unroll", "center", "normalize", "reset_after", "unit_forget_bias", "causal", "mask_zero",
    }:
        return boolean
    return None


def _by_default(default: Any) -> Checker:
    if isinstance(default, bool):
        return boolean
    if is_int(default):
        return any_int
    if isinstance(default, float):
        return finite_number
    if isinstance(default, str):
        return string
    return json_value


def checker_for(layer: str, arg: str, spec: dict[str, Any]) -> Checker:
    found = _CHECKERS.get((layer, arg))
    if found is None:
        found = _CHECKERS[(layer, arg)] = (
            LAYER_RULES.get((layer, arg))
            or RULES.get(arg)
            or _by_suffix(arg)
            or _by_default(spec.get("default"))
        )
    return found


# (layer, argument) -> its checker, once found: a spec names the same few many times.
_CHECKERS: dict[tuple[str, str], Checker] = {}


@functools.cache
def layer_params(layer: str) -> dict[str, Any]:
    """A layer's arguments (the catalog's, without `name`, with the base layer's keywords); do not modify."""
    entry = catalog.LAYERS[layer]
    params = {k: v for k, v in entry["params"].items() if k != "name"}
    if entry.get("kwargs"):
        for k in BASE_KWARGS:
            params.setdefault(k, {"default": None})
    return params


def check_layer_type(name: str, plugins: set[str] | frozenset[str] = frozenset()) -> Problem | None:
    if name in catalog.LAYERS or name in plugins:
        return None
    if name in catalog.DANGEROUS_LAYERS or _dangerous(name):
        return ("GS115", f"layer type {name!r} is not allowed: it would run or load arbitrary code",
                "graphspec builds only Keras's built-in layers and layers from plugins you name with --plugin")
    close = catalog.near(name, list(catalog.LAYERS) + sorted(plugins))
    if close is not None:
        return ("GS110", f"unknown layer type {name!r}", f"did you mean `{close}`?")
    return ("GS110", f"unknown layer type {name!r}: not a Keras layer",
            "if it is a custom layer, name the plugin that defines it: `--plugin my_layers.py`, "
            "or `plugins` under `[tool.graphspec]` in pyproject.toml")


def check_args(
    layer: str, args: dict[str, Any], path: PathKey, *, plugins: dict[str, dict[str, Any]] | None = None,
) -> list[tuple[PathKey, bool, Problem]]:
    """Check the arguments of one layer. Returns (path, at_key, problem) triples.

    `plugins` maps custom layer names to their parameter tables (as read from
    the plugin's source); their arguments are checked for names only.
    """
    out: list[tuple[PathKey, bool, Problem]] = []
    plugins = plugins or {}
    if layer in plugins:
        # `__init__` arguments ("**kwargs": it has them, but Keras's Layer takes no others;
        # "**call": its `call` arguments, see graphspec.spec.calls).
        params = {k: v for k, v in plugins[layer].items() if k != "**call"}
        known = {k for k in params if not k.startswith("**")} | BASE_KWARGS
        for key, value in args.items():
            if params and key not in known:
                out.append((path + (key,), True, ("GS111", f"{layer} has no argument {key!r}",
                                                   did_you_mean(key, sorted(known)))))
            else:
                problem = json_value(value)
                if problem:
                    out.append((path + (key,), False, problem))
        return out
    params = layer_params(layer)
    suggested: set[str] = set()  # required arguments an unknown key looks like a misspelling of
    for key, value in args.items():
        if key == "name":
            out.append((path + (key,), True, ("GS111", "a node's name is its key in `nodes`; remove `name:`", None)))
            continue
        if key not in params:
            out.append((path + (key,), True, ("GS111", f"{layer} has no argument {key!r}",
                                               did_you_mean(str(key), sorted(params)))))
            suggested.update(k for k, p in params.items() if p.get("required") and did_you_mean(str(key), [k]))
            continue
        if key == "layer" and isinstance(value, dict) and "model" in value:  # a wrapper over a spec's model
            problem = wrapped_model(layer, value)
            if problem:
                out.append((path + (key,), False, problem))
            continue
        check = checker_for(layer, key, params[key])
        problem = check(value)
        if problem:
            out.append((path + (key,), False, problem))
        elif check is nested_layer and isinstance(value, dict):
            sub = dict(value)
            sub_type = sub.pop("type")
            type_problem = check_layer_type(sub_type, frozenset(plugins))
            if type_problem:
                out.append((path + (key, "type"), False, type_problem))
            else:
                out.extend(check_args(sub_type, sub, path + (key,), plugins=plugins))
    for key in _required(layer):
        if key not in args and key not in suggested:
            out.append((path, True, ("GS113", f"{layer} needs argument {key!r}", None)))
    return out


@functools.cache
def _required(layer: str) -> tuple[str, ...]:
    return tuple(k for k, p in layer_params(layer).items() if p.get("required"))


APPLICATION_RULES: dict[str, Checker] = {
    "include_top": boolean,
    "weights": lambda v: None if v is None or v == "imagenet" else (
        "GS112", f"weights must be null or 'imagenet', got {v!r}",
        "use `weights: null` to build without downloading; load trained weights with --weights"),
    # (height, width, channels); `null` for a size given by the data, as Keras allows
    "input_shape": lambda v: None if v is None or (isinstance(v, list) and all(d is None or is_int(d) for d in v))
    else _bad("a list of integers (or null)", v),
    "pooling": one_of("avg", "max", None),
    "classes": positive_int,
    "classifier_activation": activation,
}


def check_application(name: str, args: dict[str, Any], path: PathKey) -> list[tuple[PathKey, bool, Problem]]:
    out: list[tuple[PathKey, bool, Problem]] = []
    if name not in catalog.APPLICATIONS:
        problem: Problem = (
            ("GS115", f"application {name!r} is not allowed: only keras.applications names", None)
            if _dangerous(name) else
            ("GS116", f"unknown application {name!r}", did_you_mean(name, list(catalog.APPLICATIONS)))
        )
        return [(path + ("application",), False, problem)]
    params = catalog.APPLICATIONS[name]["params"]
    for key, value in args.items():
        if key in {"name", "input_tensor"} or key not in params:
            hint = "the node's name is used" if key == "name" else did_you_mean(key, sorted(params))
            out.append((path + (key,), True, ("GS111", f"{name} has no argument {key!r}", hint)))
            continue
        check = APPLICATION_RULES.get(key) or _by_default(params[key].get("default"))
        found = check(value)
        if found:
            out.append((path + (key,), False, found))
    return out


def check_op(name: str, args: dict[str, Any], path: PathKey) -> list[tuple[PathKey, bool, Problem]]:
    """A `keras.ops` function from the closed table; its keyword arguments by name."""
    if name not in catalog.OPS:
        problem: Problem = (
            ("GS115", f"op {name!r} is not allowed: only functions of keras.ops can be named", None)
            if _dangerous(name) else
            ("GS110", f"unknown op {name!r}", did_you_mean(name, list(catalog.OPS)))
        )
        return [(path + ("op",), False, problem)]
    params = catalog.OPS[name]["params"]
    out: list[tuple[PathKey, bool, Problem]] = []
    for key, value in args.items():
        if key not in params:
            out.append((path + (key,), True, ("GS111", f"op {name} has no argument {key!r}",
                                               did_you_mean(key, sorted(params)))))
            continue
        found = dtype(value) if key == "dtype" else json_value(value)
        if not found and name == "get_item" and key == "key":
            found = _index_key(value)
        if found:
            out.append((path + (key,), False, found))
    return out


def _index_key(value: Any) -> Problem | None:
    """The `key` of a `get_item` node: a Python index written as text, `"[:, 0]"`."""
    try:
        parse_key(value)
    except ValueError as exc:
        return ("GS112", f"invalid index: {exc}",
                'write the index as in Python, in quotes: "[:, 0]", "[..., 1:]", "[:, None]"')
    return None
