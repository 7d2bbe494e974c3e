"""The rule registry behind :mod:`graphspec.analysis.shapes`.

It owns the error and result types, the per-call context with its argument checks, the
``rule`` decorator that family modules use to register rules, :func:`infer`, and the
helpers that several families share.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Dim = int | None
Shape = tuple[Dim, ...]  # WITHOUT the batch dimension


class ShapeError(Exception):
    """The combination of args and input shapes is invalid (Keras would raise)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class RankError(ShapeError):
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
    # Multiply-accumulates per sample (docs/lint.md has the convention); None where a
    # dimension it depends on is unknown.
    macs: int | None = 0

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

FullShape = tuple[Dim, ...]  # WITH a leading (None) batch dimension


def fmt(shape: Sequence[Dim]) -> str:
    return str(tuple(shape))


def fmt_all(shapes: Sequence[Sequence[Dim]]) -> str:
    return ", ".join(fmt(s) for s in shapes)


def prod(dims: Sequence[int]) -> int:
    return math.prod(dims)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class Ctx:
    """Per-call context: the layer type and the user's args."""

    def __init__(self, layer_type: str, args: Mapping[str, Any], batched: Sequence[bool] = ()) -> None:
        self.type = layer_type
        self.args = args
        self.batched = list(batched)  # per input: whether its first axis is the batch axis

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
        if not is_int(value) or value < 0 or (value == 0 and not allow_zero):
            req = ">= 0" if allow_zero else "> 0"
            raise self.error(f"`{name}` must be an integer {req}", f"{name}={value!r}")
        return int(value)

    def ntuple(self, name: str, value: Any, n: int, allow_zero: bool = False) -> tuple[int, ...]:
        """Mirror of ``standardize_tuple``."""
        if is_int(value):
            tup: tuple[Any, ...] = (value,) * n
        elif isinstance(value, (list, tuple)):
            tup = tuple(value)
            if len(tup) != n:
                raise self.error(
                    f"the `{name}` argument must be a tuple of {n} integers", f"{name}={value!r}"
                )
            for v in tup:
                if not is_int(v):
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

    def check_ndim(self, x: FullShape, ndim: int) -> None:
        if len(x) != ndim:
            raise RankError(
                f"{self.type}: expected an input of rank {ndim - 1} (without the batch "
                f"dimension), found rank {len(x) - 1}. Received: input_shape={fmt(x[1:])}"
            )

    def check_min_ndim(self, x: FullShape, min_ndim: int) -> None:
        if len(x) < min_ndim:
            raise RankError(
                f"{self.type}: expected an input of rank >= {min_ndim - 1} (without the "
                f"batch dimension), found rank {len(x) - 1}. "
                f"Received: input_shape={fmt(x[1:])}"
            )

    def weight(self, name: str, shape: Sequence[Dim], x: Sequence[Sequence[Dim]]) -> int:
        """Size of a weight; raises like Keras when a dimension is unknown."""
        if any(d is None for d in shape):
            raise ShapeError(
                f"{self.type}: the shape of weight `{name}` would depend on an unknown "
                f"(None) input dimension. Received: input_shape={fmt_all([s[1:] for s in x])}",
                hint="give the input a fixed size along that axis",
            )
        return prod([int(d) for d in shape])  # type: ignore[arg-type]


@dataclass
class Result:
    outputs: list[FullShape]
    trainable: int = 0
    non_trainable: int = 0
    macs: int | None = 0  # see LayerShapes.macs


def macs(*factors: Dim) -> int | None:
    """The product of the factors of a multiply-accumulate count; None if one is unknown."""
    if any(f is None for f in factors):
        return None
    return prod([int(f) for f in factors if f is not None])


def size(dims: Sequence[Dim]) -> int | None:
    """Number of elements of a shape (without the batch axis); None if a dimension is unknown."""
    return macs(*dims)


RuleFn = Callable[[Ctx, list[FullShape]], Result]


@dataclass(frozen=True)
class Rule:
    fn: RuleFn
    args: frozenset[str]
    n_inputs: tuple[int, int | None]  # (min, max) number of inputs


RULES: dict[str, Rule] = {}

# Arguments every Keras layer accepts that never change shapes or weights.
# (`trainable` is handled generically in `infer`.)
_BASE_ARGS = frozenset(
    {"name", "dtype", "trainable", "autocast", "input_shape", "input_dim", "batch_size"}
)
_NEUTRAL_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_QUANTIZED_DTYPE = re.compile(r"int8|int4|float8|gptq|awq", re.IGNORECASE)


def rule(
    *names: str,
    args: Sequence[str] = (),
    n_inputs: tuple[int, int | None] = (1, 1),
) -> Callable[[RuleFn], RuleFn]:
    def deco(fn: RuleFn) -> RuleFn:
        for n in names:
            RULES[n] = Rule(fn, frozenset(args), n_inputs)
        return fn

    return deco


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def has_rule(layer_type: str) -> bool:
    return layer_type in RULES


def supported_layers() -> frozenset[str]:
    return frozenset(RULES)


def normalize_shape(s: Any) -> Shape:
    if isinstance(s, int) and not isinstance(s, bool):
        return (s,)
    out: list[Dim] = []
    for d in s:
        if d is None or (is_int(d) and d >= 0):
            out.append(None if d is None else int(d))
        elif is_int(d) and d == -1:
            out.append(None)
        else:
            raise ShapeError(f"invalid dimension {d!r} in input shape {tuple(s)!r}")
    return tuple(out)


_INTERNAL = "could not evaluate the rule for these arguments"


def infer(layer_type: str, args: Mapping[str, Any], inputs: Sequence[Shape],
          batched: Sequence[bool] | None = None) -> LayerShapes:
    """Output shapes and parameter counts of ``layer_type(**args)(inputs)``.

    Raises :class:`NoRule` when the layer (or one of its arguments) is not
    modelled and :class:`ShapeError` when Keras would reject the combination.
    `batched` says which inputs have a batch axis (default: all, and so have the outputs); an
    input without one (a constant, such as `ops.arange`'s result) is passed to the rule as it is,
    and when `batched` is given and no input has one (or there are none) neither have the outputs.
    """
    rule = RULES.get(layer_type)
    if rule is None:
        raise NoRule(layer_type)
    args = dict(args or {})
    args.pop("type", None)
    _check_args(layer_type, rule, args)
    shapes = [normalize_shape(s) for s in inputs]
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
            f"Received: input_shapes=[{fmt_all(shapes)}]"
        )
    flags = list(batched) if batched is not None else [True] * len(shapes)
    ctx = Ctx(layer_type, args, flags)
    full = [(None, *s) if b else s for s, b in zip(shapes, flags)]
    out_batched = any(flags) if batched is not None else True
    try:
        res = rule.fn(ctx, full)
    except (ShapeError, NoRule):
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, ZeroDivisionError) as e:
        # Arguments of an unexpected type (or a gap in a rule): never crash the linter.
        raise NoRule(layer_type, f"{_INTERNAL}: {type(e).__name__}: {e}") from e
    outputs = tuple(tuple(o[1:] if out_batched else o) for o in res.outputs)
    for o in outputs:
        for d in o:
            if d is not None and d < 0:
                raise ShapeError(
                    f"{layer_type}: computed a negative output dimension. "
                    f"Received: input_shapes=[{fmt_all(shapes)}], output_shape={fmt(o)}"
                )
    total = res.trainable + res.non_trainable
    trainable = res.trainable
    if args.get("trainable", True) is False:
        trainable = 0
    return LayerShapes(outputs=outputs, params=total, trainable_params=trainable, macs=res.macs)


def _check_args(layer_type: str, rule: Rule, args: Mapping[str, Any]) -> None:
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


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def broadcast(ctx: Ctx, a: FullShape, b: FullShape) -> FullShape:
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
                            f"shapes={fmt(a[1:] if a else a)} and {fmt(b[1:] if b else b)} "
                            f"(with the batch axis: {list(a)} and {list(b)})",
                            "dimensions must be equal, or one of them 1")
    return tuple(out)
