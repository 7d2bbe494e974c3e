"""Rules for the reshaping layers: Flatten, Reshape, Permute, RepeatVector, upsampling,
zero padding and cropping."""

from __future__ import annotations

from typing import Any

from graphspec.analysis.shapes._registry import Ctx, Dim, FullShape, Result, RuleFn, fmt, is_int, prod, rule


@rule("Flatten", args=("data_format",))
def _flatten(ctx: Ctx, x: list[FullShape]) -> Result:
    ctx.data_format()
    rest = x[0][1:]
    if not rest:
        flat: Dim = 1
    elif any(d is None for d in rest):
        flat = None
    else:
        flat = prod(rest)  # type: ignore[arg-type]
    return Result([(None, flat)])


@rule("Reshape", args=("target_shape",))
def _reshape(ctx: Ctx, x: list[FullShape]) -> Result:
    target = ctx.required("target_shape")
    if not isinstance(target, (list, tuple)) or not all(is_int(d) or d is None for d in target):
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
        return Result([(None, *(None if d == -1 else d for d in tgt))])
    size = prod(src)  # type: ignore[arg-type]
    if -1 not in tgt:
        if size != prod(tgt):
            raise ctx.error(
                f"the total size of the tensor must be unchanged ({size} != "
                f"{prod(tgt)})",
                f"input_shape={fmt(src)}, target_shape={tgt}",
            )
        return Result([(None, *tgt)])
    known = prod([d for d in tgt if d != -1])
    if known == 0 or size % known:
        raise ctx.error(
            f"the input size ({size}) cannot be divided by the known dimensions of "
            f"`target_shape` ({known})",
            f"input_shape={fmt(src)}, target_shape={tgt}",
        )
    return Result([(None, *(size // known if d == -1 else d for d in tgt))])


@rule("Permute", args=("dims",))
def _permute(ctx: Ctx, x: list[FullShape]) -> Result:
    dims = ctx.required("dims")
    if not isinstance(dims, (list, tuple)) or sorted(dims) != list(range(1, len(dims) + 1)):
        raise ctx.error(
            "`dims` must be a permutation of 1..n (consecutive and starting from 1)",
            f"dims={dims!r}",
        )
    s = x[0]
    ctx.check_ndim(s, len(dims) + 1)
    return Result([(s[0], *(s[d] for d in dims))])


@rule("RepeatVector", args=("n",))
def _repeat_vector(ctx: Ctx, x: list[FullShape]) -> Result:
    n = ctx.pos_int("n", ctx.required("n"))
    s = x[0]
    ctx.check_ndim(s, 2)
    return Result([(s[0], n, s[1])])


def _mul(d: Dim, k: int) -> Dim:
    return None if d is None else d * k


@rule("UpSampling1D", args=("size",))
def _upsampling1d(ctx: Ctx, x: list[FullShape]) -> Result:
    size = ctx.pos_int("size", ctx.get("size", 2))
    s = x[0]
    ctx.check_ndim(s, 3)
    return Result([(s[0], _mul(s[1], size), s[2])])


def _upsampling(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        df = ctx.data_format()
        size = ctx.ntuple("size", ctx.get("size", 2), rank)
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        if df == "channels_last":
            return Result([(s[0], *(_mul(s[i + 1], size[i]) for i in range(rank)), s[-1])])
        return Result([(s[0], s[1], *(_mul(s[i + 2], size[i]) for i in range(rank)))])

    return fn


rule("UpSampling2D", args=("size", "data_format", "interpolation"))(_upsampling(2))
rule("UpSampling3D", args=("size", "data_format"))(_upsampling(3))


def _pairs(ctx: Ctx, name: str, value: Any, rank: int) -> tuple[tuple[int, int], ...]:
    """Padding/cropping spec: int, (a, b, ...) or ((a0, a1), (b0, b1), ...)."""
    if is_int(value):
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


@rule("ZeroPadding1D", args=("padding", "data_format"))
def _zero_padding1d(ctx: Ctx, x: list[FullShape]) -> Result:
    df = ctx.data_format()
    pad = ctx.ntuple("padding", ctx.get("padding", 1), 2, allow_zero=True)
    s = list(x[0])
    ctx.check_ndim(x[0], 3)
    axis = 2 if df == "channels_first" else 1
    if s[axis] is not None:
        s[axis] = s[axis] + pad[0] + pad[1]  # type: ignore[operator]
    return Result([tuple(s)])


def _zero_padding(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        df = ctx.data_format()
        pad = _pairs(ctx, "padding", ctx.get("padding", 1), rank)
        s = list(x[0])
        ctx.check_ndim(x[0], rank + 2)
        off = 2 if df == "channels_first" else 1
        for i in range(rank):
            d = s[i + off]
            if d is not None:
                s[i + off] = d + pad[i][0] + pad[i][1]
        return Result([tuple(s)])

    return fn


rule("ZeroPadding2D", args=("padding", "data_format"))(_zero_padding(2))
rule("ZeroPadding3D", args=("padding", "data_format"))(_zero_padding(3))


@rule("Cropping1D", args=("cropping",))
def _cropping1d(ctx: Ctx, x: list[FullShape]) -> Result:
    crop = ctx.ntuple("cropping", ctx.get("cropping", 1), 2, allow_zero=True)
    s = x[0]
    ctx.check_ndim(s, 3)
    length = s[1]
    if length is not None:
        length = length - crop[0] - crop[1]
        if length <= 0:
            raise ctx.error(
                "`cropping` must be smaller than the input length",
                f"input_shape={fmt(s[1:])}, cropping={crop}",
            )
    return Result([(s[0], length, s[2])])


def _cropping(rank: int, default: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
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
                    f"input_shape={fmt(x[0][1:])}, cropping={crop}",
                )
            s[i + off] = nd
        return Result([tuple(s)])

    return fn


rule("Cropping2D", args=("cropping", "data_format"))(_cropping(2, 0))
rule("Cropping3D", args=("cropping", "data_format"))(_cropping(3, 1))
