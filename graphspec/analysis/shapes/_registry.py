"""Static shape and parameter inference for Keras 3 layers, in pure Python.

``graphspec lint`` runs on machines without TensorFlow, so the output shape
and the parameter count of every layer in a spec are computed here by
hand-written rules that mirror Keras 3.15 (``compute_output_shape``,
``build`` and the constructor checks of each layer class).  This module must
only import the standard library.

Conventions
-----------
* A :data:`Shape` never contains the batch dimension.  Rules that mirror
  Keras code which indexes the full shape (``axis=-1``, ``axes={1: ...}``,
  ``Permute.dims`` ...) prepend a ``None`` batch dimension internally.
* ``args`` are the constructor arguments as written by the user; Keras's
  defaults are applied for the missing ones.
* A combination that Keras rejects (at construction, build or symbolic call
  time) raises :class:`ShapeError`.  A layer, or an argument, that is not
  modelled raises :class:`NoRule` rather than a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Dim",
    "LayerShapes",
    "NoRule",
    "Shape",
    "ShapeError",
    "has_rule",
    "infer",
    "supported_layers",
]

Dim = int | None
Shape = tuple[Dim, ...]  # WITHOUT the batch dimension


class ShapeError(Exception):
    """The combination of args and input shapes is invalid (Keras would raise)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _RankError(ShapeError):
    """ShapeError raised by an input-rank check (Keras ``InputSpec``)."""


class NoRule(Exception):
    """No static rule models this layer type (or this combination of args)."""

    def __init__(self, layer_type: str, reason: str | None = None) -> None:
        self.layer_type = layer_type
        self.reason = reason
        msg = f"no static shape rule for layer type {layer_type!r}"
        if reason:
            msg += f": {reason}"
        super().__init__(msg)


@dataclass(frozen=True)
class LayerShapes:
    outputs: tuple[Shape, ...]  # one entry per output tensor (most layers: 1)
    params: int  # total parameter count (trainable + non-trainable)
    trainable_params: int

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

_FullShape = tuple[Dim, ...]  # WITH a leading (None) batch dimension


def _fmt(shape: Sequence[Dim]) -> str:
    return str(tuple(shape))


def _fmt_all(shapes: Sequence[Sequence[Dim]]) -> str:
    return ", ".join(_fmt(s) for s in shapes)


def _prod(dims: Sequence[int]) -> int:
    return math.prod(dims)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Ctx:
    """Per-call context: the layer type and the user's args."""

    def __init__(self, layer_type: str, args: Mapping[str, Any]) -> None:
        self.type = layer_type
        self.args = args

    def get(self, name: str, default: Any = None) -> Any:
        return self.args.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.args

    def required(self, name: str) -> Any:
        if name not in self.args:
            raise ShapeError(
                f"{self.type}: missing required argument `{name}`.",
                hint=f"add `{name}: ...` to the layer's arguments",
            )
        return self.args[name]

    def error(self, what: str, received: str, hint: str | None = None) -> ShapeError:
        return ShapeError(f"{self.type}: {what}. Received: {received}", hint)

    def no_rule(self, reason: str) -> NoRule:
        return NoRule(self.type, reason)

    # --- argument standardisation mirroring keras.src.utils.argument_validation

    def pos_int(self, name: str, value: Any, allow_zero: bool = False) -> int:
        if not _is_int(value) or value < 0 or (value == 0 and not allow_zero):
            req = ">= 0" if allow_zero else "> 0"
            raise self.error(f"`{name}` must be an integer {req}", f"{name}={value!r}")
        return int(value)

    def ntuple(self, name: str, value: Any, n: int, allow_zero: bool = False) -> tuple[int, ...]:
        """Mirror of ``standardize_tuple``."""
        if _is_int(value):
            tup: tuple[Any, ...] = (value,) * n
        elif isinstance(value, (list, tuple)):
            tup = tuple(value)
            if len(tup) != n:
                raise self.error(
                    f"the `{name}` argument must be a tuple of {n} integers", f"{name}={value!r}"
                )
            for v in tup:
                if not _is_int(v):
                    raise self.error(
                        f"the `{name}` argument must be a tuple of {n} integers",
                        f"{name}={value!r}",
                    )
        else:
            raise self.error(
                f"the `{name}` argument must be an integer or a tuple of {n} integers",
                f"{name}={value!r}",
            )
        bad = [v for v in tup if (v < 0 if allow_zero else v <= 0)]
        if bad:
            req = ">= 0" if allow_zero else "> 0"
            raise self.error(f"all values of `{name}` must be {req}", f"{name}={value!r}")
        return tuple(int(v) for v in tup)

    def data_format(self) -> str:
        df = self.get("data_format")
        if df is None:
            return "channels_last"
        if not isinstance(df, str) or df.lower() not in ("channels_last", "channels_first"):
            raise self.error(
                "`data_format` must be 'channels_last' or 'channels_first'",
                f"data_format={df!r}",
            )
        return df.lower()

    def flag(self, name: str, default: bool) -> bool:
        return bool(self.get(name, default))

    def check_ndim(self, x: _FullShape, ndim: int) -> None:
        if len(x) != ndim:
            raise _RankError(
                f"{self.type}: expected an input of rank {ndim - 1} (without the batch "
                f"dimension), found rank {len(x) - 1}. Received: input_shape={_fmt(x[1:])}"
            )

    def check_min_ndim(self, x: _FullShape, min_ndim: int) -> None:
        if len(x) < min_ndim:
            raise _RankError(
                f"{self.type}: expected an input of rank >= {min_ndim - 1} (without the "
                f"batch dimension), found rank {len(x) - 1}. "
                f"Received: input_shape={_fmt(x[1:])}"
            )

    def weight(self, name: str, shape: Sequence[Dim], x: Sequence[Sequence[Dim]]) -> int:
        """Size of a weight; raises like Keras when a dimension is unknown."""
        if any(d is None for d in shape):
            raise ShapeError(
                f"{self.type}: the shape of weight `{name}` would depend on an unknown "
                f"(None) input dimension. Received: input_shape={_fmt_all([s[1:] for s in x])}",
                hint="give the input a fixed size along that axis",
            )
        return _prod([int(d) for d in shape])  # type: ignore[arg-type]


@dataclass
class _Result:
    outputs: list[_FullShape]
    trainable: int = 0
    non_trainable: int = 0


_RuleFn = Callable[[_Ctx, list[_FullShape]], _Result]


@dataclass(frozen=True)
class _Rule:
    fn: _RuleFn
    args: frozenset[str]
    n_inputs: tuple[int, int | None]  # (min, max) number of inputs


_RULES: dict[str, _Rule] = {}

# Arguments every Keras layer accepts that never change shapes or weights.
# (`trainable` is handled generically in `infer`.)
_BASE_ARGS = frozenset(
    {"name", "dtype", "trainable", "autocast", "input_shape", "input_dim", "batch_size"}
)
_NEUTRAL_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_QUANTIZED_DTYPE = re.compile(r"int8|int4|float8|gptq|awq", re.IGNORECASE)


def _rule(
    *names: str,
    args: Sequence[str] = (),
    n_inputs: tuple[int, int | None] = (1, 1),
) -> Callable[[_RuleFn], _RuleFn]:
    def deco(fn: _RuleFn) -> _RuleFn:
        for n in names:
            _RULES[n] = _Rule(fn, frozenset(args), n_inputs)
        return fn

    return deco


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def has_rule(layer_type: str) -> bool:
    return layer_type in _RULES


def supported_layers() -> frozenset[str]:
    return frozenset(_RULES)


def _normalize_shape(s: Any) -> Shape:
    if isinstance(s, int) and not isinstance(s, bool):
        return (s,)
    out: list[Dim] = []
    for d in s:
        if d is None or (_is_int(d) and d >= 0):
            out.append(None if d is None else int(d))
        elif _is_int(d) and d == -1:
            out.append(None)
        else:
            raise ShapeError(f"invalid dimension {d!r} in input shape {tuple(s)!r}")
    return tuple(out)


_INTERNAL = "could not evaluate the rule for these arguments"


def infer(layer_type: str, args: Mapping[str, Any], inputs: Sequence[Shape]) -> LayerShapes:
    """Output shapes and parameter counts of ``layer_type(**args)(inputs)``.

    Raises :class:`NoRule` when the layer (or one of its arguments) is not
    modelled and :class:`ShapeError` when Keras would reject the combination.
    """
    rule = _RULES.get(layer_type)
    if rule is None:
        raise NoRule(layer_type)
    args = dict(args or {})
    args.pop("type", None)
    _check_args(layer_type, rule, args)
    shapes = [_normalize_shape(s) for s in inputs]
    lo, hi = rule.n_inputs
    if len(shapes) < lo or (hi is not None and len(shapes) > hi):
        if lo == hi:
            want = f"exactly {lo}"
        elif hi is None:
            want = f"at least {lo}"
        else:
            want = f"{lo} to {hi}"
        raise ShapeError(
            f"{layer_type}: expected {want} input(s), got {len(shapes)}. "
            f"Received: input_shapes=[{_fmt_all(shapes)}]"
        )
    ctx = _Ctx(layer_type, args)
    full = [(None, *s) for s in shapes]
    try:
        res = rule.fn(ctx, full)
    except (ShapeError, NoRule):
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, ZeroDivisionError) as e:
        # Arguments of an unexpected type (or a gap in a rule): never crash the linter.
        raise NoRule(layer_type, f"{_INTERNAL}: {type(e).__name__}: {e}") from e
    outputs = tuple(tuple(o[1:]) for o in res.outputs)
    for o in outputs:
        for d in o:
            if d is not None and d < 0:
                raise ShapeError(
                    f"{layer_type}: computed a negative output dimension. "
                    f"Received: input_shapes=[{_fmt_all(shapes)}], output_shape={_fmt(o)}"
                )
    total = res.trainable + res.non_trainable
    trainable = res.trainable
    if args.get("trainable", True) is False:
        trainable = 0
    return LayerShapes(outputs=outputs, params=total, trainable_params=trainable)


def _check_args(layer_type: str, rule: _Rule, args: Mapping[str, Any]) -> None:
    for key in args:
        if key in rule.args or key in _BASE_ARGS or key.endswith(_NEUTRAL_SUFFIXES):
            continue
        raise NoRule(layer_type, f"argument `{key}` is not modelled")
    dtype = args.get("dtype")
    if isinstance(dtype, str) and _QUANTIZED_DTYPE.search(dtype):
        raise NoRule(layer_type, f"quantized dtype policy {dtype!r} is not modelled")
    if args.get("lora_rank"):
        raise NoRule(layer_type, "LoRA (`lora_rank`) is not modelled")
    trainable = args.get("trainable", True)
    if not isinstance(trainable, bool):
        raise ShapeError(
            f"{layer_type}: `trainable` must be a boolean. Received: trainable={trainable!r}"
        )


def _nested(ctx: _Ctx, name: str, cfg: Any) -> tuple[str, dict[str, Any]]:
    """Split a nested layer config into (type, args)."""
    if not isinstance(cfg, Mapping):
        raise ctx.error(f"`{name}` must be a layer config mapping", f"{name}={cfg!r}")
    if "type" in cfg:
        return str(cfg["type"]), {k: v for k, v in cfg.items() if k != "type"}
    if "class_name" in cfg and isinstance(cfg.get("config", {}), Mapping):
        return str(cfg["class_name"]), dict(cfg.get("config", {}))
    raise ctx.error(f"`{name}` must have a `type` key", f"{name}={cfg!r}")


# ---------------------------------------------------------------------------
# Core layers
# ---------------------------------------------------------------------------


@_rule("InputLayer", args=("shape", "batch_shape", "sparse", "ragged", "optional"), n_inputs=(0, 1))
def _input_layer(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    shape = ctx.get("shape")
    batch_shape = ctx.get("batch_shape")
    if shape is not None and batch_shape is not None:
        raise ctx.error(
            "cannot pass both `shape` and `batch_shape`",
            f"shape={shape!r}, batch_shape={batch_shape!r}",
        )
    if shape is not None:
        out = _normalize_shape(shape)
    elif batch_shape is not None:
        bs = _normalize_shape(batch_shape)
        if not bs:
            raise ctx.error("`batch_shape` must include the batch dimension", f"batch_shape={bs}")
        out = bs[1:]
    elif x:
        out = tuple(x[0][1:])
    else:
        raise ctx.error("a `shape` argument is required", "no shape and no input")
    return _Result([(None, *out)])


_DENSE_ARGS = ("units", "activation", "use_bias", "lora_rank", "lora_alpha")


@_rule("Dense", args=_DENSE_ARGS)
def _dense(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    units = ctx.required("units")
    if not _is_int(units) or units <= 0:
        raise ctx.error("`units` must be a positive integer", f"units={units!r}")
    s = x[0]
    ctx.check_min_ndim(s, 2)
    n = ctx.weight("kernel", (s[-1], units), x)
    if ctx.flag("use_bias", True):
        n += units
    return _Result([(*s[:-1], units)], trainable=n)


def _analyze_einsum(ctx: _Ctx, equation: str, bias_axes: Any, input_shape: _FullShape,
                    output_shape: Any) -> tuple[list[Dim], list[Dim] | None, list[Dim]]:
    """Port of keras.src.layers.core.einsum_dense._analyze_einsum_string."""
    dot_replaced = re.sub(r"\.\.\.", "0", equation)
    m = re.match("([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", dot_replaced)
    left_elided = False
    if not m:
        m = re.match("0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", dot_replaced)
        left_elided = bool(m)
    if not m:
        m = re.match("([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", dot_replaced)
    if not m:
        raise ctx.error(
            "invalid einsum equation; equations must be in the form "
            "[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]...",
            f"equation={equation!r}",
        )
    input_spec, weight_spec, output_spec = m.group(1), m.group(2), m.group(3)
    elided = len(input_shape) - len(input_spec)
    if _is_int(output_shape):
        out: list[Dim] = [output_shape]
    else:
        out = list(output_shape)
    out.insert(0, input_shape[0])
    if elided > 0 and left_elided:
        for i in range(1, elided):
            out.insert(1, input_shape[i])
    elif elided > 0 and not left_elided:
        for i in range(len(input_shape) - elided, len(input_shape)):
            out.append(input_shape[i])
    if left_elided:
        in_map = {d: (i + elided) - len(input_shape) for i, d in enumerate(input_spec)}
        out_map = {d: i + elided for i, d in enumerate(output_spec)}
    else:
        in_map = {d: i for i, d in enumerate(input_spec)}
        out_map = {d: i for i, d in enumerate(output_spec)}
    try:
        for d in input_spec:
            in_d = input_shape[in_map[d]]
            if d in out_map:
                out_d = out[out_map[d]]
                if out_d is not None and out_d != in_d:
                    raise ctx.error(
                        f"input shape and output shape do not match at shared dimension "
                        f"{d!r} ({in_d} != {out_d})",
                        f"input_shape={_fmt(input_shape[1:])}, equation={equation!r}",
                    )
        for d in output_spec:
            if d not in input_spec and d not in weight_spec:
                raise ctx.error(
                    f"output dimension {d!r} has no corresponding dimension in the input "
                    "or weight spec",
                    f"equation={equation!r}",
                )
        weight_shape: list[Dim] = []
        for d in weight_spec:
            if d in out_map:
                weight_shape.append(out[out_map[d]])
            elif d in in_map:
                weight_shape.append(input_shape[in_map[d]])
            else:
                raise ctx.error(
                    f"weight dimension {d!r} has no match in the input or output spec",
                    f"equation={equation!r}",
                )
        bias_shape: list[Dim] | None = None
        if bias_axes is not None:
            n_left = elided if left_elided else 0
            idx_map = {c: out[i + n_left] for i, c in enumerate(output_spec)}
            for c in bias_axes:
                if c not in output_spec:
                    raise ctx.error(
                        f"bias dimension {c!r} is not part of the output spec {output_spec!r}",
                        f"bias_axes={bias_axes!r}",
                    )
            first = min(output_spec.find(c) for c in bias_axes)
            bias_shape = [idx_map[c] if c in bias_axes else 1 for c in output_spec[first:]]
            if not left_elided:
                bias_shape.extend([1] * elided)
    except IndexError:
        raise ctx.error(
            "the einsum equation does not match the input rank",
            f"input_shape={_fmt(input_shape[1:])}, equation={equation!r}",
        ) from None
    return weight_shape, bias_shape, out


@_rule("EinsumDense", args=("equation", "output_shape", "bias_axes", "activation",
                            "lora_rank", "lora_alpha"))
def _einsum_dense(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    equation = ctx.required("equation")
    output_shape = ctx.required("output_shape")
    if not isinstance(equation, str):
        raise ctx.error("`equation` must be a string", f"equation={equation!r}")
    if not _is_int(output_shape) and not isinstance(output_shape, (list, tuple)):
        raise ctx.error("`output_shape` must be an int or a list", f"output_shape={output_shape!r}")
    partial = (output_shape,) if _is_int(output_shape) else tuple(output_shape)
    bias_axes = ctx.get("bias_axes")
    kernel, bias, out = _analyze_einsum(ctx, equation, bias_axes, x[0], partial)
    n = ctx.weight("kernel", kernel, x)
    if bias is not None:
        n += ctx.weight("bias", bias, x)
    return _Result([tuple(out)], trainable=n)


@_rule("Embedding", args=("input_dim", "output_dim", "mask_zero", "input_length",
                          "lora_rank", "lora_alpha"))
def _embedding(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    input_dim = ctx.required("input_dim")
    output_dim = ctx.required("output_dim")
    ctx.pos_int("input_dim", input_dim)
    ctx.pos_int("output_dim", output_dim)
    return _Result([(*x[0], output_dim)], trainable=input_dim * output_dim)


@_rule("Identity")
def _identity_layer(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    return _Result([x[0]])


@_rule("Masking", args=("mask_value",))
def _masking(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    return _Result([x[0]])


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


@_rule("Activation", args=("activation",))
def _activation(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    ctx.required("activation")
    return _Result([x[0]])


@_rule("ReLU", args=("max_value", "negative_slope", "threshold"))
def _relu(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    mv = ctx.get("max_value")
    if mv is not None and mv < 0:
        raise ctx.error("`max_value` cannot be negative", f"max_value={mv!r}")
    for name in ("negative_slope", "threshold"):
        v = ctx.get(name, 0.0)
        if v is None or v < 0:
            raise ctx.error(f"`{name}` cannot be None or negative", f"{name}={v!r}")
    return _Result([x[0]])


@_rule("LeakyReLU", args=("negative_slope", "alpha"))
def _leaky_relu(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    v = ctx.get("alpha", ctx.get("negative_slope", 0.3))
    if v is None or v < 0:
        raise ctx.error("`negative_slope` cannot be None or negative", f"negative_slope={v!r}")
    return _Result([x[0]])


@_rule("ELU", args=("alpha",))
def _elu(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    return _Result([x[0]])


@_rule("Softmax", args=("axis",))
def _softmax(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    return _Result([x[0]])


@_rule("PReLU", args=("shared_axes",))
def _prelu(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    s = x[0]
    shared = ctx.get("shared_axes")
    if shared is not None and not isinstance(shared, (list, tuple)):
        shared = [shared]
    param_shape = list(s[1:])
    if shared is not None:
        for i in shared:
            if not _is_int(i):
                raise ctx.error("`shared_axes` must be integers", f"shared_axes={shared!r}")
            try:
                param_shape[i - 1] = 1
            except IndexError:
                raise ctx.error(
                    f"shared axis {i} is out of range for the input",
                    f"input_shape={_fmt(s[1:])}, shared_axes={list(shared)}",
                ) from None
    return _Result([s], trainable=ctx.weight("alpha", param_shape, x))


# ---------------------------------------------------------------------------
# Regularization (identity on shapes)
# ---------------------------------------------------------------------------


def _check_rate(ctx: _Ctx, name: str) -> None:
    rate = ctx.required(name)
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ctx.error(f"`{name}` must be a float between 0 and 1", f"{name}={rate!r}")


@_rule("Dropout", args=("rate", "noise_shape", "seed"))
def _dropout(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    _check_rate(ctx, "rate")
    return _Result([x[0]])


@_rule("AlphaDropout", args=("rate", "noise_shape", "seed"))
def _alpha_dropout(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    _check_rate(ctx, "rate")
    return _Result([x[0]])


@_rule("GaussianDropout", args=("rate", "seed"))
def _gaussian_dropout(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    _check_rate(ctx, "rate")
    return _Result([x[0]])


@_rule("GaussianNoise", args=("stddev", "seed"))
def _gaussian_noise(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    _check_rate(ctx, "stddev")
    return _Result([x[0]])


@_rule("ActivityRegularization", args=("l1", "l2"))
def _activity_reg(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    return _Result([x[0]])


def _spatial_dropout(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        _check_rate(ctx, "rate")
        if rank > 1:
            ctx.data_format()
        ctx.check_ndim(x[0], rank + 2)
        return _Result([x[0]])

    return fn


_rule("SpatialDropout1D", args=("rate", "seed"))(_spatial_dropout(1))
_rule("SpatialDropout2D", args=("rate", "seed", "data_format"))(_spatial_dropout(2))
_rule("SpatialDropout3D", args=("rate", "seed", "data_format"))(_spatial_dropout(3))


# ---------------------------------------------------------------------------
# Convolutions
# ---------------------------------------------------------------------------


def _conv_output_shape(ctx: _Ctx, x: _FullShape, filters: Dim, kernel: tuple[int, ...],
                       strides: tuple[int, ...], padding: str, data_format: str,
                       dilation: tuple[int, ...]) -> _FullShape:
    """Port of keras.src.ops.operation_utils.compute_conv_output_shape."""
    if data_format == "channels_last":
        spatial = x[1:-1]
        channels = x[-1]
    else:
        spatial = x[2:]
        channels = x[1]
    if len(kernel) + 2 != len(x):
        raise _RankError(
            f"{ctx.type}: expected an input of rank {len(kernel) + 1} (without the batch "
            f"dimension), found rank {len(x) - 1}. Received: input_shape={_fmt(x[1:])}, "
            f"kernel_size={kernel}"
        )
    del channels
    out: list[Dim] = []
    for i, size in enumerate(spatial):
        if size is None:
            out.append(None)
            continue
        if padding == "valid":
            o = (size - dilation[i] * (kernel[i] - 1) - 1) // strides[i] + 1
            if o <= 0:
                raise ctx.error(
                    "computed output size would be zero or negative (the kernel is larger "
                    "than the input with padding='valid')",
                    f"input_shape={_fmt(x[1:])}, kernel_size={kernel}, strides={strides}, "
                    f"dilation_rate={dilation}, padding={padding!r}",
                    hint="use padding='same', a smaller kernel_size/strides, or a larger input",
                )
        else:
            o = (size - 1) // strides[i] + 1
        out.append(o)
    if data_format == "channels_last":
        return (x[0], *out, filters)
    return (x[0], filters, *out)


def _padding(ctx: _Ctx, allow_causal: bool) -> str:
    p = ctx.get("padding", "valid")
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    if not isinstance(p, str) or p.lower() not in allowed:
        raise ctx.error(f"`padding` must be one of {allowed}", f"padding={p!r}")
    return p.lower()


def _channels(x: _FullShape, data_format: str) -> Dim:
    return x[-1] if data_format == "channels_last" else x[1]


_CONV_ARGS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
              "groups", "activation", "use_bias", "lora_rank", "lora_alpha")


def _conv(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        filters = ctx.required("filters")
        if not _is_int(filters) or filters <= 0:
            raise ctx.error("`filters` must be a positive integer", f"filters={filters!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=rank == 1)
        df = ctx.data_format()
        groups = ctx.get("groups", 1)
        if not _is_int(groups) or groups <= 0:
            raise ctx.error("`groups` must be a positive integer", f"groups={groups!r}")
        if filters % groups:
            raise ctx.error(
                "the number of filters must be evenly divisible by the number of groups",
                f"filters={filters}, groups={groups}",
            )
        if max(strides) > 1 and max(dilation) > 1:
            raise ctx.error(
                "`strides > 1` is not supported in conjunction with `dilation_rate > 1`",
                f"strides={strides}, dilation_rate={dilation}",
            )
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        c = _channels(s, df)
        if c is None:
            raise ctx.error(
                "the channel dimension of the input must be defined (not None)",
                f"input_shape={_fmt(s[1:])}",
            )
        if c % groups:
            raise ctx.error(
                "the number of input channels must be evenly divisible by the number of groups",
                f"input_shape={_fmt(s[1:])}, groups={groups}",
            )
        out = _conv_output_shape(ctx, s, filters, kernel, strides, padding, df, dilation)
        n = _prod(kernel) * (c // groups) * filters
        if ctx.flag("use_bias", True):
            n += filters
        return _Result([out], trainable=n)

    return fn


_rule("Conv1D", "Convolution1D", args=_CONV_ARGS)(_conv(1))
_rule("Conv2D", "Convolution2D", args=_CONV_ARGS)(_conv(2))
_rule("Conv3D", "Convolution3D", args=_CONV_ARGS)(_conv(3))


_CONV_T_ARGS = ("filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
                "dilation_rate", "activation", "use_bias")


def _conv_transpose(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        filters = ctx.required("filters")
        if not _is_int(filters) or filters <= 0:
            raise ctx.error("`filters` must be a positive integer", f"filters={filters!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=False)
        df = ctx.data_format()
        op_arg = ctx.get("output_padding")
        out_pad = None if op_arg is None else ctx.ntuple("output_padding", op_arg, rank, True)
        if out_pad is not None:
            for i, (op, st) in enumerate(zip(out_pad, strides)):
                if op >= st:
                    raise ctx.error(
                        "`output_padding` must be strictly less than `strides` "
                        f"(dimension {i})",
                        f"output_padding={out_pad}, strides={strides}",
                    )
        if max(strides) > 1 and max(dilation) > 1:
            raise ctx.error(
                "`strides > 1` is not supported in conjunction with `dilation_rate > 1`",
                f"strides={strides}, dilation_rate={dilation}",
            )
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        c = _channels(s, df)
        spatial = s[1:-1] if df == "channels_last" else s[2:]
        out: list[Dim] = []
        for i, size in enumerate(spatial):
            if size is None:
                out.append(None)
                continue
            k = (kernel[i] - 1) * dilation[i] + 1
            if padding == "valid":
                op = max(k, strides[i]) - k if out_pad is None else out_pad[i]
                out.append((size - 1) * strides[i] + k + op)
            elif out_pad is None:
                out.append(size * strides[i])
            else:
                out.append((size - 1) * strides[i] + k % 2 + out_pad[i])
        full: _FullShape = (
            (s[0], *out, filters) if df == "channels_last" else (s[0], filters, *out)
        )
        n = ctx.weight("kernel", (*kernel, filters, c), x)
        if ctx.flag("use_bias", True):
            n += filters
        return _Result([full], trainable=n)

    return fn


_rule("Conv1DTranspose", "Convolution1DTranspose", args=_CONV_T_ARGS)(_conv_transpose(1))
_rule("Conv2DTranspose", "Convolution2DTranspose", args=_CONV_T_ARGS)(_conv_transpose(2))
_rule("Conv3DTranspose", "Convolution3DTranspose", args=_CONV_T_ARGS)(_conv_transpose(3))


_DEPTHWISE_ARGS = ("kernel_size", "strides", "padding", "depth_multiplier", "data_format",
                   "dilation_rate", "activation", "use_bias")


def _depthwise(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        dm = ctx.get("depth_multiplier", 1)
        if not _is_int(dm) or dm <= 0:
            raise ctx.error("`depth_multiplier` must be a positive integer",
                            f"depth_multiplier={dm!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=False)
        df = ctx.data_format()
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        c = _channels(s, df)
        if c is None:
            raise ctx.error(
                "the channel dimension of the input must be defined (not None)",
                f"input_shape={_fmt(s[1:])}",
            )
        out = _conv_output_shape(ctx, s, dm * c, kernel, strides, padding, df, dilation)
        n = _prod(kernel) * c * dm
        if ctx.flag("use_bias", True):
            n += dm * c
        return _Result([out], trainable=n)

    return fn


_rule("DepthwiseConv1D", args=_DEPTHWISE_ARGS)(_depthwise(1))
_rule("DepthwiseConv2D", args=_DEPTHWISE_ARGS)(_depthwise(2))


_SEPARABLE_ARGS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                   "depth_multiplier", "activation", "use_bias")


def _separable(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        dm = ctx.get("depth_multiplier", 1)
        if not _is_int(dm) or dm <= 0:
            raise ctx.error("`depth_multiplier` must be a positive integer",
                            f"depth_multiplier={dm!r}")
        filters = ctx.required("filters")
        if not _is_int(filters) or filters <= 0:
            raise ctx.error("`filters` must be a positive integer", f"filters={filters!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=False)
        df = ctx.data_format()
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        out = _conv_output_shape(ctx, s, filters, kernel, strides, padding, df, dilation)
        c = _channels(s, df)
        n = ctx.weight("depthwise_kernel", (*kernel, c, dm), x)
        n += ctx.weight("pointwise_kernel", (c, dm, filters), x)
        if ctx.flag("use_bias", True):
            n += filters
        return _Result([out], trainable=n)

    return fn


_rule("SeparableConv1D", "SeparableConvolution1D", args=_SEPARABLE_ARGS)(_separable(1))
_rule("SeparableConv2D", "SeparableConvolution2D", args=_SEPARABLE_ARGS)(_separable(2))


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


def _pooling(rank: int, default_pool: int | None) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        if default_pool is None:
            pool_arg = ctx.required("pool_size")
        else:
            pool_arg = ctx.get("pool_size", default_pool)
        pool = ctx.ntuple("pool_size", pool_arg, rank)
        st_arg = ctx.get("strides")
        strides = ctx.ntuple("strides", pool_arg if st_arg is None else st_arg, rank, True)
        padding = ctx.get("padding", "valid")
        df = ctx.data_format()
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        if padding not in ("valid", "same"):
            raise ctx.error("`padding` must be either 'valid' or 'same' (lowercase)",
                            f"padding={padding!r}")
        if 0 in strides:
            raise ctx.error("`strides` cannot contain 0", f"strides={strides}")
        spatial = s[1:-1] if df == "channels_last" else s[2:]
        out: list[Dim] = []
        for i, size in enumerate(spatial):
            if size is None:
                out.append(None)
            elif padding == "valid":
                o = (size - pool[i]) // strides[i] + 1
                if o <= 0:
                    raise ctx.error(
                        "computed output size would be zero or negative (pool_size larger than "
                        "the input with padding='valid')",
                        f"input_shape={_fmt(s[1:])}, pool_size={pool}, strides={strides}, "
                        f"padding={padding!r}",
                        hint="use padding='same' or a smaller pool_size",
                    )
                out.append(o)
            else:
                out.append((size - 1) // strides[i] + 1)
        full: _FullShape = (s[0], *out, s[-1]) if df == "channels_last" else (s[0], s[1], *out)
        return _Result([full])

    return fn


_POOL_ARGS = ("pool_size", "strides", "padding", "data_format")
_rule("MaxPooling1D", "MaxPool1D", args=_POOL_ARGS)(_pooling(1, 2))
_rule("MaxPooling2D", "MaxPool2D", args=_POOL_ARGS)(_pooling(2, 2))
_rule("MaxPooling3D", "MaxPool3D", args=_POOL_ARGS)(_pooling(3, 2))
_rule("AveragePooling1D", "AvgPool1D", args=_POOL_ARGS)(_pooling(1, None))
_rule("AveragePooling2D", "AvgPool2D", args=_POOL_ARGS)(_pooling(2, None))
_rule("AveragePooling3D", "AvgPool3D", args=_POOL_ARGS)(_pooling(3, None))


def _global_pooling(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        df = ctx.data_format()
        keepdims = ctx.flag("keepdims", False)
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        if df == "channels_last":
            full: _FullShape = (s[0], *((1,) * rank), s[-1]) if keepdims else (s[0], s[-1])
        else:
            full = (s[0], s[1], *((1,) * rank)) if keepdims else (s[0], s[1])
        return _Result([full])

    return fn


_GPOOL_ARGS = ("data_format", "keepdims")
for _r in (1, 2, 3):
    _rule(f"GlobalMaxPooling{_r}D", f"GlobalMaxPool{_r}D", args=_GPOOL_ARGS)(_global_pooling(_r))
    _rule(f"GlobalAveragePooling{_r}D", f"GlobalAvgPool{_r}D", args=_GPOOL_ARGS)(
        _global_pooling(_r)
    )


# ---------------------------------------------------------------------------
# Reshaping
# ---------------------------------------------------------------------------


@_rule("Flatten", args=("data_format",))
def _flatten(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    ctx.data_format()
    rest = x[0][1:]
    if not rest:
        flat: Dim = 1
    elif any(d is None for d in rest):
        flat = None
    else:
        flat = _prod(rest)  # type: ignore[arg-type]
    return _Result([(None, flat)])


@_rule("Reshape", args=("target_shape",))
def _reshape(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    target = ctx.required("target_shape")
    if not isinstance(target, (list, tuple)) or not all(_is_int(d) or d is None for d in target):
        raise ctx.error("`target_shape` must be a list of integers", f"target_shape={target!r}")
    tgt = tuple(target)
    ints = [d for d in tgt if d is not None]
    if any(d < -1 for d in ints):
        raise ctx.error(
            "each dimension in `target_shape` must be a non-negative integer or -1",
            f"target_shape={tgt}",
        )
    if ints.count(-1) > 1:
        raise ctx.error(
            "there must be at most one unknown dimension (-1) in `target_shape`",
            f"target_shape={tgt}",
        )
    src = x[0][1:]
    if None in src or None in tgt:
        return _Result([(None, *(None if d == -1 else d for d in tgt))])
    size = _prod(src)  # type: ignore[arg-type]
    if -1 not in tgt:
        if size != _prod(tgt):
            raise ctx.error(
                f"the total size of the tensor must be unchanged ({size} != "
                f"{_prod(tgt)})",
                f"input_shape={_fmt(src)}, target_shape={tgt}",
            )
        return _Result([(None, *tgt)])
    known = _prod([d for d in tgt if d != -1])
    if known == 0 or size % known:
        raise ctx.error(
            f"the input size ({size}) cannot be divided by the known dimensions of "
            f"`target_shape` ({known})",
            f"input_shape={_fmt(src)}, target_shape={tgt}",
        )
    return _Result([(None, *(size // known if d == -1 else d for d in tgt))])


@_rule("Permute", args=("dims",))
def _permute(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    dims = ctx.required("dims")
    if not isinstance(dims, (list, tuple)) or sorted(dims) != list(range(1, len(dims) + 1)):
        raise ctx.error(
            "`dims` must be a permutation of 1..n (consecutive and starting from 1)",
            f"dims={dims!r}",
        )
    s = x[0]
    ctx.check_ndim(s, len(dims) + 1)
    return _Result([(s[0], *(s[d] for d in dims))])


@_rule("RepeatVector", args=("n",))
def _repeat_vector(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    n = ctx.pos_int("n", ctx.required("n"))
    s = x[0]
    ctx.check_ndim(s, 2)
    return _Result([(s[0], n, s[1])])


def _mul(d: Dim, k: int) -> Dim:
    return None if d is None else d * k


@_rule("UpSampling1D", args=("size",))
def _upsampling1d(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    size = ctx.pos_int("size", ctx.get("size", 2))
    s = x[0]
    ctx.check_ndim(s, 3)
    return _Result([(s[0], _mul(s[1], size), s[2])])


def _upsampling(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        df = ctx.data_format()
        size = ctx.ntuple("size", ctx.get("size", 2), rank)
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        if df == "channels_last":
            return _Result([(s[0], *(_mul(s[i + 1], size[i]) for i in range(rank)), s[-1])])
        return _Result([(s[0], s[1], *(_mul(s[i + 2], size[i]) for i in range(rank)))])

    return fn


_rule("UpSampling2D", args=("size", "data_format", "interpolation"))(_upsampling(2))
_rule("UpSampling3D", args=("size", "data_format"))(_upsampling(3))


def _pairs(ctx: _Ctx, name: str, value: Any, rank: int) -> tuple[tuple[int, int], ...]:
    """Padding/cropping spec: int, (a, b, ...) or ((a0, a1), (b0, b1), ...)."""
    if _is_int(value):
        if value < 0:
            raise ctx.error(f"`{name}` cannot be negative", f"{name}={value!r}")
        return tuple((value, value) for _ in range(rank))
    if not isinstance(value, (list, tuple)) or len(value) != rank:
        raise ctx.error(f"`{name}` should have {rank} elements", f"{name}={value!r}")
    out = []
    for i, v in enumerate(value):
        t = ctx.ntuple(f"{name}[{i}]", v, 2, allow_zero=True)
        out.append((t[0], t[1]))
    return tuple(out)


@_rule("ZeroPadding1D", args=("padding", "data_format"))
def _zero_padding1d(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    df = ctx.data_format()
    pad = ctx.ntuple("padding", ctx.get("padding", 1), 2, allow_zero=True)
    s = list(x[0])
    ctx.check_ndim(x[0], 3)
    axis = 2 if df == "channels_first" else 1
    if s[axis] is not None:
        s[axis] = s[axis] + pad[0] + pad[1]  # type: ignore[operator]
    return _Result([tuple(s)])


def _zero_padding(rank: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        df = ctx.data_format()
        pad = _pairs(ctx, "padding", ctx.get("padding", 1), rank)
        s = list(x[0])
        ctx.check_ndim(x[0], rank + 2)
        off = 2 if df == "channels_first" else 1
        for i in range(rank):
            d = s[i + off]
            if d is not None:
                s[i + off] = d + pad[i][0] + pad[i][1]
        return _Result([tuple(s)])

    return fn


_rule("ZeroPadding2D", args=("padding", "data_format"))(_zero_padding(2))
_rule("ZeroPadding3D", args=("padding", "data_format"))(_zero_padding(3))


@_rule("Cropping1D", args=("cropping",))
def _cropping1d(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    crop = ctx.ntuple("cropping", ctx.get("cropping", 1), 2, allow_zero=True)
    s = x[0]
    ctx.check_ndim(s, 3)
    length = s[1]
    if length is not None:
        length = length - crop[0] - crop[1]
        if length <= 0:
            raise ctx.error(
                "`cropping` must be smaller than the input length",
                f"input_shape={_fmt(s[1:])}, cropping={crop}",
            )
    return _Result([(s[0], length, s[2])])


def _cropping(rank: int, default: int) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        df = ctx.data_format()
        crop = _pairs(ctx, "cropping", ctx.get("cropping", default), rank)
        s = list(x[0])
        ctx.check_ndim(x[0], rank + 2)
        off = 2 if df == "channels_first" else 1
        for i in range(rank):
            d = s[i + off]
            if d is None:
                continue
            nd = d - crop[i][0] - crop[i][1]
            if nd <= 0:
                raise ctx.error(
                    "values in `cropping` must be smaller than the corresponding spatial "
                    "dimension of the input",
                    f"input_shape={_fmt(x[0][1:])}, cropping={crop}",
                )
            s[i + off] = nd
        return _Result([tuple(s)])

    return fn


_rule("Cropping2D", args=("cropping", "data_format"))(_cropping(2, 0))
_rule("Cropping3D", args=("cropping", "data_format"))(_cropping(3, 1))


# ---------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------


def _axis_in_range(ctx: _Ctx, axes: Sequence[Any], x: _FullShape, name: str = "axis") -> None:
    n = len(x)
    for a in axes:
        if not _is_int(a) or a >= n or a < -n:
            raise ctx.error(
                f"axis {a} is out of bounds for the input (axes count the batch "
                "dimension as axis 0)",
                f"input_shape={_fmt(x[1:])}, {name}={ctx.get(name, -1)!r}",
            )


@_rule("BatchNormalization", args=("axis", "momentum", "epsilon", "center", "scale", "renorm",
                                   "renorm_clipping", "renorm_momentum", "synchronized"))
def _batch_norm(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis", -1)
    if not _is_int(axis):
        raise ctx.error("`axis` must be an integer", f"axis={axis!r}")
    s = x[0]
    _axis_in_range(ctx, [axis], s)
    c = ctx.weight("gamma", (s[axis],), x)
    n_scale = int(ctx.flag("scale", True)) + int(ctx.flag("center", True))
    n_stats = 2 + (3 if ctx.flag("renorm", False) else 0)
    return _Result([s], trainable=n_scale * c, non_trainable=n_stats * c)


@_rule("LayerNormalization", args=("axis", "epsilon", "center", "scale"))
def _layer_norm(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    s = x[0]
    _axis_in_range(ctx, axes, s)
    shape = tuple(s[a] for a in sorted(axes))
    n_w = int(ctx.flag("scale", True)) + int(ctx.flag("center", True))
    n = ctx.weight("gamma", shape, x) * n_w if n_w else 0
    return _Result([s], trainable=n)


@_rule("RMSNormalization", args=("axis", "epsilon"))
def _rms_norm(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    s = x[0]
    _axis_in_range(ctx, axes, s)
    shape = tuple(s[a] for a in sorted(axes))
    return _Result([s], trainable=ctx.weight("scale", shape, x))


@_rule("GroupNormalization", args=("groups", "axis", "epsilon", "center", "scale"))
def _group_norm(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    groups = ctx.get("groups", 32)
    if not _is_int(groups) or (groups <= 0 and groups != -1):
        raise ctx.error("`groups` must be a positive integer or -1", f"groups={groups!r}")
    axis = ctx.get("axis", -1)
    if not _is_int(axis):
        raise ctx.no_rule("a non-integer `axis` is not modelled")
    s = x[0]
    _axis_in_range(ctx, [axis], s)
    dim = s[axis]
    if dim is None:
        raise ctx.error(
            f"axis {axis} of the input must have a defined dimension",
            f"input_shape={_fmt(s[1:])}",
        )
    if groups == -1:
        groups = dim
    if dim < groups:
        raise ctx.error(
            f"the number of groups ({groups}) cannot be more than the number of channels ({dim})",
            f"input_shape={_fmt(s[1:])}, groups={groups}",
        )
    if dim % groups:
        raise ctx.error(
            f"the number of channels ({dim}) must be a multiple of the number of groups "
            f"({groups})",
            f"input_shape={_fmt(s[1:])}, groups={groups}",
        )
    n = dim * (int(ctx.flag("scale", True)) + int(ctx.flag("center", True)))
    return _Result([s], trainable=n)


@_rule("UnitNormalization", args=("axis",))
def _unit_norm(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    _axis_in_range(ctx, axes, x[0])
    return _Result([x[0]])


# ---------------------------------------------------------------------------
# Preprocessing layers that can sit inside a model
# ---------------------------------------------------------------------------


@_rule("Rescaling", args=("scale", "offset"))
def _rescaling(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    ctx.required("scale")
    return _Result([x[0]])


_AUGMENT_ARGS = {
    "RandomFlip": ("mode", "seed", "data_format"),
    "RandomRotation": ("factor", "fill_mode", "interpolation", "seed", "fill_value", "data_format"),
    "RandomZoom": ("height_factor", "width_factor", "fill_mode", "interpolation", "seed",
                   "fill_value", "data_format"),
    "RandomTranslation": ("height_factor", "width_factor", "fill_mode", "interpolation", "seed",
                          "fill_value", "data_format"),
    "RandomContrast": ("factor", "value_range", "seed"),
    "RandomBrightness": ("factor", "value_range", "seed"),
}


def _augmentation(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    """Random image augmentations keep the input shape."""
    return _Result([x[0]])


for _name, _args in _AUGMENT_ARGS.items():
    _rule(_name, args=_args)(_augmentation)


def _resize_like(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    height, width = ctx.required("height"), ctx.required("width")
    for name, v in (("height", height), ("width", width)):
        if not _is_int(v) or v <= 0:
            raise ctx.error(f"`{name}` must be a positive integer", f"{name}={v!r}")
    s = x[0]
    if len(s) != 4:
        raise ctx.no_rule("only image inputs of rank 3 (height, width, channels) are modelled")
    if ctx.data_format() == "channels_last":
        return _Result([(s[0], height, width, s[3])])
    return _Result([(s[0], s[1], height, width)])


_rule("Resizing", args=("height", "width", "interpolation", "crop_to_aspect_ratio",
                        "pad_to_aspect_ratio", "fill_mode", "fill_value", "antialias",
                        "data_format"))(_resize_like)
_rule("CenterCrop", args=("height", "width", "data_format"))(_resize_like)
_rule("RandomCrop", args=("height", "width", "seed", "data_format"))(_resize_like)


def _nested_list_shape(v: Any) -> tuple[int, ...] | None:
    """np.shape() of a nested list of numbers (None if ragged)."""
    if isinstance(v, (list, tuple)):
        subs = [_nested_list_shape(e) for e in v]
        if any(s is None for s in subs) or len(set(subs)) > 1:
            return None
        return (len(v), *(subs[0] if subs else ()))  # type: ignore[misc]
    return ()


@_rule("Normalization", args=("axis", "mean", "variance", "invert"))
def _normalization(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis", -1)
    if axis is None:
        axes: tuple[Any, ...] = ()
    elif _is_int(axis):
        axes = (axis,)
    else:
        axes = tuple(axis)
    mean, variance = ctx.get("mean"), ctx.get("variance")
    if (mean is None) != (variance is None):
        raise ctx.error("both `mean` and `variance` must be set",
                        f"mean={mean!r}, variance={variance!r}")
    s = x[0]
    ndim = len(s)
    if any(not _is_int(a) or a < -ndim or a >= ndim for a in axes):
        raise ctx.error("all `axis` values must be in the range [-ndim, ndim) (ndim counts "
                        "the batch dimension)", f"input_shape={_fmt(s[1:])}, axis={axis!r}")
    keep = sorted(a if a >= 0 else a + ndim for a in axes)
    for d in keep:
        if s[d] is None:
            raise ctx.error(
                f"all `axis` values to be kept must have a known size (axis {d} is None)",
                f"input_shape={_fmt(s[1:])}, axis={axis!r}",
            )
    if mean is None:
        n = 2 * _prod([s[d] for d in keep]) + 1  # mean, variance, count
        return _Result([s], non_trainable=n)
    ms, vs = _nested_list_shape(mean), _nested_list_shape(variance)
    if ms is None or vs is None:
        raise ctx.no_rule("ragged `mean`/`variance` values are not modelled")
    if ms != vs:
        raise ctx.error("`mean` and `variance` must have the same shape",
                        f"mean shape {ms}, variance shape {vs}")
    if len(ms) > len(axes):
        raise ctx.error("the rank of `mean` must be <= the number of axes",
                        f"mean shape {ms}, axis={axis!r}")
    for i in range(1, len(ms) + 1):
        want = s[keep[-i]]
        if ms[-i] not in (1, want):
            raise ctx.error(
                "`mean`/`variance` cannot be broadcast to the kept axes of the input",
                f"input_shape={_fmt(s[1:])}, mean shape {ms}, axis={axis!r}",
            )
    return _Result([s])


@_rule("CategoryEncoding", args=("num_tokens", "output_mode", "sparse"))
def _category_encoding(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    mode = ctx.get("output_mode", "multi_hot")
    if mode == "binary":
        mode = "multi_hot"
    if mode not in ("count", "one_hot", "multi_hot"):
        raise ctx.error("unknown `output_mode`", f"output_mode={mode!r}")
    num_tokens = ctx.required("num_tokens")
    if not _is_int(num_tokens) or num_tokens < 1:
        raise ctx.error("`num_tokens` must be >= 1", f"num_tokens={num_tokens!r}")
    s = x[0]
    if mode == "one_hot" and (s[-1] != 1 or len(s) == 1):
        return _Result([(*s, num_tokens)])
    return _Result([(*s[:-1], num_tokens)])


# ---------------------------------------------------------------------------
# Merging
# ---------------------------------------------------------------------------


def _elemwise(s1: Shape, s2: Shape) -> Shape | None:
    """Port of Merge._compute_elemwise_op_output_shape (non-batch shapes).

    Returns None when the shapes are incompatible.
    """
    if len(s1) < len(s2):
        return _elemwise(s2, s1)
    if not s2:
        return s1
    out: list[Dim] = list(s1[: len(s1) - len(s2)])
    for i, j in zip(s1[len(s1) - len(s2):], s2):
        if i is None or j is None:
            out.append(None)
        elif i == 1:
            out.append(j)
        elif j == 1:
            out.append(i)
        elif i != j:
            return None
        else:
            out.append(i)
    return tuple(out)


def _merge(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    shapes = [s[1:] for s in x]
    out: Shape = shapes[0]
    for s in shapes[1:]:
        new = _elemwise(out, s)
        if new is None:
            raise ctx.error(
                f"input shapes {_fmt(out)} and {_fmt(s)} do not match",
                f"input_shapes=[{_fmt_all(shapes)}]",
                hint="merged inputs must have the same shape (size-1 dimensions broadcast)",
            )
        out = new
    return _Result([(None, *out)])


for _name in ("Add", "Multiply", "Average", "Maximum", "Minimum"):
    _rule(_name, n_inputs=(1, None))(_merge)
_rule("Subtract", n_inputs=(2, 2))(_merge)


@_rule("Concatenate", args=("axis",), n_inputs=(1, None))
def _concatenate(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis", -1)
    if not _is_int(axis):
        raise ctx.error("`axis` must be an integer", f"axis={axis!r}")
    shapes = [list(s) for s in x]
    received = f"axis={axis}, input_shapes=[{_fmt_all([s[1:] for s in x])}]"
    # Concatenate.build
    reduced = set()
    for s in shapes:
        r = list(s)
        if len(r) > axis:
            try:
                del r[axis]
            except IndexError:
                raise ctx.error("`axis` is out of range for the inputs", received) from None
        reduced.add(tuple(r))
    if len(reduced) != 1:
        ranks = {len(r) for r in reduced}
        if len(ranks) != 1:
            raise ctx.error("inputs must have the same rank", received)
        (rank,) = ranks
        for i in range(rank):
            dims = {r[i] for r in reduced if r[i] is not None}
            if len(dims) > 1:
                raise ctx.error(
                    "inputs must have matching shapes except for the concatenation axis",
                    received,
                    hint="check the non-axis dimensions of every input",
                )
    # Concatenate.compute_output_shape
    out = list(shapes[0])
    try:
        for s in shapes[1:]:
            if out[axis] is None or s[axis] is None:
                out[axis] = None
                break
            out[axis] += s[axis]
    except IndexError:
        raise ctx.error("`axis` is out of range for the inputs", received) from None
    return _Result([tuple(out)])


@_rule("Dot", args=("axes", "normalize"), n_inputs=(2, 2))
def _dot(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axes_arg = ctx.required("axes")
    valid_pair = isinstance(axes_arg, (list, tuple)) and len(axes_arg) == 2 and all(
        _is_int(a) for a in axes_arg
    )
    if not (_is_int(axes_arg) or valid_pair):
        raise ctx.error("`axes` must be an integer or a list of two integers",
                        f"axes={axes_arg!r}")
    s1, s2 = list(x[0]), list(x[1])
    received = f"axes={axes_arg!r}, input_shapes=[{_fmt(s1[1:])}, {_fmt(s2[1:])}]"
    if _is_int(axes_arg):
        axes = [axes_arg % len(s1), axes_arg % len(s2)] if axes_arg < 0 else [axes_arg] * 2
    else:
        axes = list(axes_arg)
    if (len(s1) and axes[0] % len(s1) == 0) or (len(s2) and axes[1] % len(s2) == 0):
        raise ctx.no_rule("a dot product over the batch axis (axis 0) is not modelled")
    try:
        if s1[axes[0]] != s2[axes[1]]:
            raise ctx.error(
                f"incompatible input shapes: axis values {s1[axes[0]]} (at axis {axes[0]}) != "
                f"{s2[axes[1]]} (at axis {axes[1]})",
                received,
            )
        s1.pop(axes[0])
        s2.pop(axes[1])
        s2.pop(0)
    except IndexError:
        raise ctx.error("`axes` are out of range for the inputs", received) from None
    out = s1 + s2
    if len(out) == 1:
        out.append(1)
    return _Result([tuple(out)])


# ---------------------------------------------------------------------------
# Recurrent layers
# ---------------------------------------------------------------------------

_RNN_COMMON = ("units", "activation", "use_bias", "dropout", "recurrent_dropout", "seed",
               "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
               "zero_output_for_mask")


def _rnn(kind: str) -> _RuleFn:
    def fn(ctx: _Ctx, x: list[_FullShape]) -> _Result:
        units = ctx.required("units")
        if not _is_int(units) or units <= 0:
            raise ctx.error("`units` must be a positive integer", f"units={units!r}")
        if ctx.flag("stateful", False):
            raise ctx.no_rule("stateful RNNs need a static batch size, which is not modelled")
        s = x[0]
        ctx.check_ndim(s, 3)
        d = s[-1]
        if d is None:
            raise ctx.error("the feature (last) dimension of the input must be defined",
                            f"input_shape={_fmt(s[1:])}")
        use_bias = ctx.flag("use_bias", True)
        if kind == "SimpleRNN":
            n = d * units + units * units + (units if use_bias else 0)
            n_states = 1
        elif kind == "LSTM":
            n = 4 * (d * units + units * units) + (4 * units if use_bias else 0)
            n_states = 2
        else:  # GRU
            bias = (6 if ctx.flag("reset_after", True) else 3) * units
            n = 3 * (d * units + units * units) + (bias if use_bias else 0)
            n_states = 1
        out: _FullShape = (s[0], s[1], units) if ctx.flag("return_sequences", False) else (
            s[0], units)
        outputs = [out]
        if ctx.flag("return_state", False):
            outputs += [(s[0], units)] * n_states
        return _Result(outputs, trainable=n)

    return fn


_rule("SimpleRNN", args=_RNN_COMMON)(_rnn("SimpleRNN"))
_rule("LSTM", args=_RNN_COMMON + ("recurrent_activation", "unit_forget_bias", "implementation",
                                  "use_cudnn"))(_rnn("LSTM"))
_rule("GRU", args=_RNN_COMMON + ("recurrent_activation", "reset_after", "implementation",
                                 "use_cudnn"))(_rnn("GRU"))

_RNN_TYPES = ("SimpleRNN", "LSTM", "GRU")


@_rule("Bidirectional", args=("layer", "merge_mode", "backward_layer"))
def _bidirectional(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    ftype, fargs = _nested(ctx, "layer", ctx.required("layer"))
    if ftype not in _RNN_TYPES:
        raise ctx.no_rule(f"Bidirectional({ftype}) is not modelled")
    merge_mode = ctx.get("merge_mode", "concat")
    if merge_mode not in ("sum", "mul", "ave", "concat", None):
        raise ctx.error("invalid merge mode; should be one of sum, mul, ave, concat or None",
                        f"merge_mode={merge_mode!r}")
    if ctx.get("backward_layer") is None:
        btype, bargs = ftype, dict(fargs, go_backwards=True)
    else:
        btype, bargs = _nested(ctx, "backward_layer", ctx.get("backward_layer"))
        if btype not in _RNN_TYPES:
            raise ctx.no_rule(f"Bidirectional backward_layer {btype} is not modelled")
    for attr in ("go_backwards", "stateful", "return_sequences", "return_state"):
        fv, bv = bool(fargs.get(attr, False)), bool(bargs.get(attr, False))
        if attr == "go_backwards":
            if fv == bv:
                raise ctx.error(
                    "the forward and backward layers must have different `go_backwards` values",
                    f"forward go_backwards={fv}, backward go_backwards={bv}",
                )
        elif fv != bv:
            raise ctx.error(
                f"the forward and backward layers must have the same `{attr}`",
                f"forward {attr}={fv}, backward {attr}={bv}",
            )
    ctx.check_ndim(x[0], 3)
    shapes = [x[0][1:]]
    fwd = infer(ftype, fargs, shapes)
    bwd = infer(btype, bargs, shapes)
    out: Shape = fwd.outputs[0]
    states = list(fwd.outputs[1:])
    outputs: list[Shape]
    if merge_mode == "concat":
        last = out[-1]
        outputs = [(*out[:-1], None if last is None else last * 2)]
    elif merge_mode is None:
        outputs = [out, out]
    else:
        outputs = [out]
    outputs += states + states
    return _Result(
        [(None, *o) for o in outputs],
        trainable=fwd.trainable_params + bwd.trainable_params,
        non_trainable=fwd.non_trainable_params + bwd.non_trainable_params,
    )


@_rule("TimeDistributed", args=("layer",))
def _time_distributed(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    ctype, cargs = _nested(ctx, "layer", ctx.required("layer"))
    if ctype not in _RULES:
        raise NoRule(ctx.type, f"no rule for the wrapped layer {ctype!r}")
    if ctype in ("InputLayer", "TimeDistributed", "Bidirectional") or (
        _RULES[ctype].n_inputs != (1, 1)
    ):
        raise ctx.no_rule(f"TimeDistributed({ctype}) is not modelled")
    s = x[0]
    if len(s) < 3:
        raise _RankError(
            f"{ctx.type}: expected an input of rank >= 2 (without the batch dimension: "
            f"time steps + the wrapped layer's input), found rank {len(s) - 1}. "
            f"Received: input_shape={_fmt(s[1:])}"
        )
    try:
        child = infer(ctype, cargs, [s[2:]])
    except _RankError as e:
        # Keras skips the wrapped layer's input-rank check and may build it anyway.
        raise NoRule(ctx.type, f"wrapped layer rank mismatch not modelled ({e.message})") from None
    if len(child.outputs) != 1:
        raise ctx.no_rule(f"TimeDistributed({ctype}) with several outputs is not modelled")
    return _Result(
        [(s[0], s[1], *child.outputs[0])],
        trainable=child.trainable_params,
        non_trainable=child.non_trainable_params,
    )


# ---------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------


@_rule("MultiHeadAttention", args=("num_heads", "key_dim", "value_dim", "dropout", "use_bias",
                                   "output_shape", "attention_axes", "sliding_window",
                                   "flash_attention", "use_gate", "seed"), n_inputs=(2, 3))
def _mha(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    heads = ctx.required("num_heads")
    key_dim = ctx.required("key_dim")
    for name, v in (("num_heads", heads), ("key_dim", key_dim)):
        if not _is_int(v) or v <= 0:
            raise ctx.error(f"`{name}` must be a positive integer", f"{name}={v!r}")
    value_dim = ctx.get("value_dim")
    if value_dim is not None and (not _is_int(value_dim) or value_dim <= 0):
        raise ctx.error("`value_dim` must be a positive integer or None",
                        f"value_dim={value_dim!r}")
    value_dim = value_dim or key_dim
    out_shape_arg = ctx.get("output_shape")
    out_shape: tuple[Any, ...] | None = None
    if out_shape_arg:
        out_shape = (out_shape_arg,) if _is_int(out_shape_arg) else tuple(out_shape_arg)
    attn_axes = ctx.get("attention_axes")
    if _is_int(attn_axes):
        attn_axes = (attn_axes,)
    elif attn_axes and not isinstance(attn_axes, (list, tuple)):
        raise ctx.error("`attention_axes` must be an int, list, or tuple",
                        f"attention_axes={attn_axes!r}")
    sw = ctx.get("sliding_window")
    if sw is not None and (not _is_int(sw) or sw <= 0):
        raise ctx.error("`sliding_window` must be None or a positive integer",
                        f"sliding_window={sw!r}")
    dropout = ctx.get("dropout", 0.0)
    if ctx.get("flash_attention") and dropout and dropout > 0:
        raise ctx.error("dropout is not supported when flash attention is enabled",
                        f"dropout={dropout}, flash_attention=True")
    q, v = x[0], x[1]
    k = x[2] if len(x) > 2 else v
    received = f"query={_fmt(q[1:])}, value={_fmt(v[1:])}, key={_fmt(k[1:])}"
    if len(q) < 2 or len(v) < 2 or len(k) < 2:
        raise ctx.no_rule("rank-0 (scalar per example) attention inputs are not modelled")
    if v[1:-1] != k[1:-1]:
        raise ctx.error("all dimensions of `value` and `key`, except the last one, must be equal",
                        received)
    use_bias = ctx.flag("use_bias", True)
    hk, hv = heads * key_dim, heads * value_dim
    n = ctx.weight("query/kernel", (q[-1], hk), x) + (hk if use_bias else 0)
    n += ctx.weight("key/kernel", (k[-1], hk), x) + (hk if use_bias else 0)
    if ctx.flag("use_gate", False):
        n += ctx.weight("gate/kernel", (q[-1], hv), x) + (hv if use_bias else 0)
    n += ctx.weight("value/kernel", (v[-1], hv), x) + (hv if use_bias else 0)
    # _build_attention(rank) with rank = value rank + 1 (full shapes)
    rank = len(v) + 1
    if attn_axes is not None:
        norm = []
        for a in attn_axes:
            if not _is_int(a):
                raise ctx.error("`attention_axes` must be integers", f"attention_axes={attn_axes!r}")
            norm.append(a if a >= 0 else (rank - 1) + a)
        if any(not -rank <= a < rank for a in norm):
            raise ctx.error(
                "`attention_axes` are out of range for the inputs (axes count the batch "
                "dimension as axis 0)",
                f"{received}, attention_axes={list(attn_axes)}",
            )
    final = out_shape if out_shape else (q[-1],)
    n += ctx.weight("attention_output/kernel", (hv, *final), x)
    if use_bias:
        n += ctx.weight("attention_output/bias", final, x)
    out = (*q[:-1], *out_shape) if out_shape else q
    return _Result([out], trainable=n)


@_rule("Attention", args=("use_scale", "score_mode", "dropout", "seed"), n_inputs=(2, 3))
def _attention(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    mode = ctx.get("score_mode", "dot")
    if mode not in ("dot", "concat"):
        raise ctx.error("`score_mode` must be 'dot' or 'concat'", f"score_mode={mode!r}")
    n = int(ctx.flag("use_scale", False)) + int(mode == "concat")
    q, v = x[0], x[1]
    return _Result([(*q[:-1], v[-1])], trainable=n)


@_rule("AdditiveAttention", args=("use_scale", "dropout", "seed", "score_mode"), n_inputs=(2, 3))
def _additive_attention(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    mode = ctx.get("score_mode", "dot")
    if mode not in ("dot", "concat"):
        raise ctx.error("`score_mode` must be 'dot' or 'concat'", f"score_mode={mode!r}")
    q, v = x[0], x[1]
    n = ctx.weight("scale", (q[-1],), x) if ctx.flag("use_scale", True) else 0
    return _Result([(*q[:-1], v[-1])], trainable=n)


# ---------------------------------------------------------------------------
# keras.ops between layers (`op:` nodes): registered as "ops.<name>"
# ---------------------------------------------------------------------------
# Shapes here include the batch axis (ops see whole tensors); rules that would
# move or drop the batch axis raise NoRule rather than guess.


def _broadcast(ctx: _Ctx, a: _FullShape, b: _FullShape) -> _FullShape:
    """Port of keras.src.ops.operation_utils.broadcast_shapes."""
    s1: list[Dim] = list(a)
    s2: list[Dim] = list(b)
    pad: list[Dim] = [1] * abs(len(s1) - len(s2))
    if len(s1) > len(s2):
        s2 = pad + s2
    elif len(s1) < len(s2):
        s1 = pad + s1
    out: list[Dim] = list(s1)
    for i, (d1, d2) in enumerate(zip(s1, s2)):
        if d1 == 1:
            out[i] = d2
        elif d1 is None:
            out[i] = None if d2 == 1 else d2
        elif d2 == 1 or d2 is None or d2 == d1:
            out[i] = d1
        else:
            raise ctx.error("operand shapes cannot be broadcast together",
                            f"shapes={_fmt(a[1:] if a else a)} and {_fmt(b[1:] if b else b)} "
                            f"(with the batch axis: {list(a)} and {list(b)})",
                            "dimensions must be equal, or one of them 1")
    return tuple(out)


def _operands(ctx: _Ctx, x: list[_FullShape], params: tuple[str, ...]) -> list[_FullShape]:
    """Tensor inputs fill the parameters in order; constants come from the args."""
    tensors = list(x)
    out: list[_FullShape] = []
    for p in params:
        if p in ctx.args:
            if not isinstance(ctx.args[p], (int, float)) or isinstance(ctx.args[p], bool):
                raise ctx.no_rule(f"constant `{p}` that is not a number")
            if tensors and len(out) == 0 and p == params[0]:
                # A constant before a tensor: the tensor must then be passed by name
                # (`inputs: {x2: ...}`), which this rule cannot see.
                raise ctx.no_rule(f"constant `{p}` before a tensor operand")
            out.append(())
        elif tensors:
            out.append(tensors.pop(0))
        else:
            raise ctx.no_rule(f"operand `{p}` is missing")
    if tensors:
        raise ctx.no_rule("more tensors than operands")
    return out


def _binary(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    a, b = _operands(ctx, x, ("x1", "x2"))
    return _Result([_broadcast(ctx, a, b)])


_BINARY_OPS = (
    "add", "subtract", "multiply", "divide", "true_divide", "maximum", "minimum", "power",
    "floor_divide", "mod", "equal", "not_equal", "greater", "greater_equal", "less", "less_equal",
    "logical_and", "logical_or", "logical_xor", "arctan2",
)
for _op in _BINARY_OPS:
    _rule(f"ops.{_op}", args=("x1", "x2"), n_inputs=(1, 2))(_binary)


def _unary(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis")
    if _is_int(axis) and not -len(x[0]) <= axis < len(x[0]):
        raise ctx.error("`axis` is out of range", f"axis={axis}, rank={len(x[0])} (with the batch axis)")
    return _Result([x[0]])


# Element-wise functions of one tensor, with the non-tensor arguments each takes.
_UNARY_OPS: dict[str, tuple[str, ...]] = {
    "relu": (), "relu6": (), "sigmoid": (), "tanh": (), "exp": (), "log": (), "sqrt": (), "square": (),
    "abs": (), "absolute": (), "negative": (), "softplus": (), "softsign": (), "silu": (), "swish": (),
    "hard_sigmoid": (), "hard_silu": (), "hard_swish": (), "log_sigmoid": (), "selu": (), "sin": (),
    "cos": (), "erf": (), "floor": (), "ceil": (), "sign": (), "reciprocal": (), "rsqrt": (),
    "stop_gradient": (), "logical_not": (), "round": ("decimals",), "gelu": ("approximate",),
    "elu": ("alpha",), "leaky_relu": ("negative_slope",), "cast": ("dtype",), "clip": ("x_min", "x_max"),
    "softmax": ("axis",), "log_softmax": ("axis",), "nan_to_num": ("nan", "posinf", "neginf"),
}
for _op, _extra in _UNARY_OPS.items():
    _rule(f"ops.{_op}", args=_extra)(_unary)


@_rule("ops.reshape", args=("newshape",))
def _op_reshape(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    new = ctx.required("newshape")
    if not isinstance(new, list) or not all(_is_int(d) for d in new):
        raise ctx.no_rule("`newshape` is not a list of integers")
    # Only reshapes that keep the batch axis first, written -1 or None-free after it.
    if not new or new[0] != -1 or any(d == -1 for d in new[1:]) or any(d < 1 for d in new[1:]):
        raise ctx.no_rule("the batch axis must stay first, written -1")
    rest = x[0][1:]
    if all(d is not None for d in rest) and _prod([int(d) for d in rest if d is not None]) != _prod(new[1:]):
        raise ctx.error("the new shape does not hold the same number of values per sample",
                        f"input_shape={_fmt(rest)}, newshape={new}")
    return _Result([(None, *new[1:])])


@_rule("ops.transpose", args=("axes",))
def _op_transpose(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axes = ctx.get("axes")
    if not isinstance(axes, list) or sorted(axes) != list(range(len(x[0]))) or axes[0] != 0:
        raise ctx.no_rule("only permutations that keep the batch axis first are modelled")
    return _Result([tuple(x[0][a] for a in axes)])


@_rule("ops.concatenate", args=("axis",), n_inputs=(1, None))
def _op_concatenate(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis", 0)
    rank = len(x[0])
    if not _is_int(axis) or not -rank <= axis < rank or axis % rank == 0:
        raise ctx.no_rule("concatenation along the batch axis (keras.ops.concatenate's default axis=0)")
    axis %= rank
    if any(len(s) != rank for s in x):
        raise ctx.error("inputs must have the same rank", f"input_shapes=[{_fmt_all([s[1:] for s in x])}]")
    total: Dim = 0
    for s in x:
        for i in range(rank):
            if i != axis and s[i] is not None and x[0][i] is not None and s[i] != x[0][i]:
                raise ctx.error("inputs must match except along `axis`",
                                f"input_shapes=[{_fmt_all([t[1:] for t in x])}], axis={axis}")
        total = None if total is None or s[axis] is None else total + s[axis]
    out = list(x[0])
    out[axis] = total
    return _Result([tuple(out)])


@_rule("ops.mean", "ops.sum", "ops.max", "ops.min", "ops.prod", "ops.std", "ops.var",
       args=("axis", "keepdims", "initial", "dtype"))
def _op_reduce(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.get("axis")
    rank = len(x[0])
    axes = [axis] if _is_int(axis) else axis
    if not isinstance(axes, list) or not axes or not all(_is_int(a) and -rank <= a < rank for a in axes):
        raise ctx.no_rule("only reductions over given axes are modelled")
    norm = {a % rank for a in axes}
    if 0 in norm:
        raise ctx.no_rule("a reduction over the batch axis")
    keep = bool(ctx.get("keepdims", False))
    out = tuple((1 if i in norm else d) for i, d in enumerate(x[0]) if keep or i not in norm)
    return _Result([out])


@_rule("ops.expand_dims", args=("axis",))
def _op_expand_dims(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    axis = ctx.required("axis")
    rank = len(x[0]) + 1
    if not _is_int(axis) or not -rank <= axis < rank or axis % rank == 0:
        raise ctx.no_rule("only new axes after the batch axis are modelled")
    out = list(x[0])
    out.insert(axis % rank, 1)
    return _Result([tuple(out)])


# ---------------------------------------------------------------------------
# graphspec.build.app_layers: the built-in plugin's layers (keras.applications helpers)
# ---------------------------------------------------------------------------


@_rule("LayerScale", args=("init_values", "projection_dim"))
def _layer_scale(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    dim = ctx.required("projection_dim")
    if not _is_int(dim) or dim < 1:
        raise ctx.error("`projection_dim` must be a positive integer", f"projection_dim={dim!r}")
    out = _broadcast(ctx, x[0], (dim,))
    return _Result([out], trainable=dim)


@_rule("CustomScaleLayer", args=("scale",), n_inputs=(2, 2))
def _custom_scale(ctx: _Ctx, x: list[_FullShape]) -> _Result:
    return _Result([_broadcast(ctx, x[0], x[1])])
