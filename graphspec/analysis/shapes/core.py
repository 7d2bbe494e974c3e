"""Rules for the core layers: inputs, Dense, EinsumDense, Embedding, activations and the
shape-preserving regularization layers (dropout, noise)."""

from __future__ import annotations

import re
from typing import Any

from graphspec.analysis.shapes._registry import (
    Ctx,
    Dim,
    FullShape,
    Result,
    RuleFn,
    fmt,
    is_int,
    macs,
    normalize_shape,
    rule,
)


@rule("InputLayer", args=("shape", "batch_shape", "sparse", "ragged", "optional"), n_inputs=(0, 1))
def _input_layer(ctx: Ctx, x: list[FullShape]) -> Result:
    shape = ctx.get("shape")
    batch_shape = ctx.get("batch_shape")
    if shape is not None and batch_shape is not None:
        raise ctx.error(
            "cannot pass both `shape` and `batch_shape`",
            f"shape={shape!r}, batch_shape={batch_shape!r}",
        )
    if shape is not None:
        out = normalize_shape(shape)
    elif batch_shape is not None:
        bs = normalize_shape(batch_shape)
        if not bs:
            raise ctx.error("`batch_shape` must include the batch dimension", f"batch_shape={bs}")
        out = bs[1:]
    elif x:
        out = tuple(x[0][1:])
    else:
        raise ctx.error("a `shape` argument is required", "no shape and no input")
    return Result([(None, *out)])


_DENSE_ARGS = ("units", "activation", "use_bias", "lora_rank", "lora_alpha")


@rule("Dense", args=_DENSE_ARGS)
def _dense(ctx: Ctx, x: list[FullShape]) -> Result:
    units = ctx.required("units")
    if not is_int(units) or units <= 0:
        raise ctx.error("`units` must be a positive integer", f"units={units!r}")
    s = x[0]
    ctx.check_min_ndim(s, 2)
    n = ctx.weight("kernel", (s[-1], units), x)
    if ctx.flag("use_bias", True):
        n += units
    return Result([(*s[:-1], units)], trainable=n, macs=macs(*s[1:], units))


def _analyze_einsum(ctx: Ctx, equation: str, bias_axes: Any, input_shape: FullShape,
                    output_shape: Any) -> tuple[list[Dim], list[Dim] | None, list[Dim], int | None]:
    """Port of keras.src.layers.core.einsum_dense._analyze_einsum_string.

    Returns the kernel shape, the bias shape, the output shape and the multiply-accumulates
    per sample: the product of the sizes of every index of the equation but the batch's.
    """
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
    if is_int(output_shape):
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
                        f"input_shape={fmt(input_shape[1:])}, equation={equation!r}",
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
        sizes: dict[str, Dim] = {d: weight_shape[i] for i, d in enumerate(weight_spec)}
        sizes.update({d: out[out_map[d]] for d in output_spec if d not in sizes})
        sizes.update({d: input_shape[in_map[d]] for d in input_spec})
    except IndexError:
        raise ctx.error(
            "the einsum equation does not match the input rank",
            f"input_shape={fmt(input_shape[1:])}, equation={equation!r}",
        ) from None
    if left_elided:  # the batch axis is the first of the elided ones
        batch, extra = None, input_shape[1:elided]
    else:
        batch, extra = input_spec[0], input_shape[len(input_shape) - elided:] if elided > 0 else ()
    count = macs(*(sizes[d] for d in sorted(sizes) if d != batch), *extra)
    return weight_shape, bias_shape, out, count


@rule("EinsumDense", args=("equation", "output_shape", "bias_axes", "activation",
                           "lora_rank", "lora_alpha"))
def _einsum_dense(ctx: Ctx, x: list[FullShape]) -> Result:
    equation = ctx.required("equation")
    output_shape = ctx.required("output_shape")
    if not isinstance(equation, str):
        raise ctx.error("`equation` must be a string", f"equation={equation!r}")
    if not is_int(output_shape) and not isinstance(output_shape, (list, tuple)):
        raise ctx.error("`output_shape` must be an int or a list", f"output_shape={output_shape!r}")
    partial = (output_shape,) if is_int(output_shape) else tuple(output_shape)
    bias_axes = ctx.get("bias_axes")
    kernel, bias, out, count = _analyze_einsum(ctx, equation, bias_axes, x[0], partial)
    n = ctx.weight("kernel", kernel, x)
    if bias is not None:
        n += ctx.weight("bias", bias, x)
    return Result([tuple(out)], trainable=n, macs=count)


@rule("Embedding", args=("input_dim", "output_dim", "mask_zero", "input_length",
                         "lora_rank", "lora_alpha"))
def _embedding(ctx: Ctx, x: list[FullShape]) -> Result:
    input_dim = ctx.required("input_dim")
    output_dim = ctx.required("output_dim")
    ctx.pos_int("input_dim", input_dim)
    ctx.pos_int("output_dim", output_dim)
    return Result([(*x[0], output_dim)], trainable=input_dim * output_dim)


@rule("Identity")
def _identity_layer(ctx: Ctx, x: list[FullShape]) -> Result:
    return Result([x[0]])


@rule("Masking", args=("mask_value",))
def _masking(ctx: Ctx, x: list[FullShape]) -> Result:
    return Result([x[0]])


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


@rule("Activation", args=("activation",))
def _activation(ctx: Ctx, x: list[FullShape]) -> Result:
    ctx.required("activation")
    return Result([x[0]])


@rule("ReLU", args=("max_value", "negative_slope", "threshold"))
def _relu(ctx: Ctx, x: list[FullShape]) -> Result:
    mv = ctx.get("max_value")
    if mv is not None and mv < 0:
        raise ctx.error("`max_value` cannot be negative", f"max_value={mv!r}")
    for name in ("negative_slope", "threshold"):
        v = ctx.get(name, 0.0)
        if v is None or v < 0:
            raise ctx.error(f"`{name}` cannot be None or negative", f"{name}={v!r}")
    return Result([x[0]])


@rule("LeakyReLU", args=("negative_slope", "alpha"))
def _leaky_relu(ctx: Ctx, x: list[FullShape]) -> Result:
    v = ctx.get("alpha", ctx.get("negative_slope", 0.3))
    if v is None or v < 0:
        raise ctx.error("`negative_slope` cannot be None or negative", f"negative_slope={v!r}")
    return Result([x[0]])


@rule("ELU", args=("alpha",))
def _elu(ctx: Ctx, x: list[FullShape]) -> Result:
    return Result([x[0]])


@rule("Softmax", args=("axis",))
def _softmax(ctx: Ctx, x: list[FullShape]) -> Result:
    return Result([x[0]])


@rule("PReLU", args=("shared_axes",))
def _prelu(ctx: Ctx, x: list[FullShape]) -> Result:
    s = x[0]
    shared = ctx.get("shared_axes")
    if shared is not None and not isinstance(shared, (list, tuple)):
        shared = [shared]
    param_shape = list(s[1:])
    if shared is not None:
        for i in shared:
            if not is_int(i):
                raise ctx.error("`shared_axes` must be integers", f"shared_axes={shared!r}")
            try:
                param_shape[i - 1] = 1
            except IndexError:
                raise ctx.error(
                    f"shared axis {i} is out of range for the input",
                    f"input_shape={fmt(s[1:])}, shared_axes={list(shared)}",
                ) from None
    return Result([s], trainable=ctx.weight("alpha", param_shape, x))


# ---------------------------------------------------------------------------
# Regularization (identity on shapes)
# ---------------------------------------------------------------------------


def _check_rate(ctx: Ctx, name: str) -> None:
    rate = ctx.required(name)
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ctx.error(f"`{name}` must be a float between 0 and 1", f"{name}={rate!r}")


@rule("Dropout", args=("rate", "noise_shape", "seed"))
def _dropout(ctx: Ctx, x: list[FullShape]) -> Result:
    _check_rate(ctx, "rate")
    return Result([x[0]])


@rule("AlphaDropout", args=("rate", "noise_shape", "seed"))
def _alpha_dropout(ctx: Ctx, x: list[FullShape]) -> Result:
    _check_rate(ctx, "rate")
    return Result([x[0]])


@rule("GaussianDropout", args=("rate", "seed"))
def _gaussian_dropout(ctx: Ctx, x: list[FullShape]) -> Result:
    _check_rate(ctx, "rate")
    return Result([x[0]])


@rule("GaussianNoise", args=("stddev", "seed"))
def _gaussian_noise(ctx: Ctx, x: list[FullShape]) -> Result:
    _check_rate(ctx, "stddev")
    return Result([x[0]])


@rule("ActivityRegularization", args=("l1", "l2"))
def _activity_reg(ctx: Ctx, x: list[FullShape]) -> Result:
    return Result([x[0]])


def _spatial_dropout(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        _check_rate(ctx, "rate")
        if rank > 1:
            ctx.data_format()
        ctx.check_ndim(x[0], rank + 2)
        return Result([x[0]])

    return fn


rule("SpatialDropout1D", args=("rate", "seed"))(_spatial_dropout(1))
rule("SpatialDropout2D", args=("rate", "seed", "data_format"))(_spatial_dropout(2))
rule("SpatialDropout3D", args=("rate", "seed", "data_format"))(_spatial_dropout(3))
