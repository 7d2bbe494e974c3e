"""Rules for the preprocessing layers that can sit inside a model: rescaling, image
augmentation, resizing and cropping, Normalization and CategoryEncoding."""

from __future__ import annotations

from typing import Any

from graphspec.analysis.shapes._registry import Ctx, FullShape, Result, fmt, is_int, prod, rule


@rule("Rescaling", args=("scale", "offset"))
def _rescaling(ctx: Ctx, x: list[FullShape]) -> Result:
    ctx.required("scale")
    return Result([x[0]])


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


def _augmentation(ctx: Ctx, x: list[FullShape]) -> Result:
    """Random image augmentations keep the input shape."""
    return Result([x[0]])


for _name, _args in _AUGMENT_ARGS.items():
    rule(_name, args=_args)(_augmentation)


def _resize_like(ctx: Ctx, x: list[FullShape]) -> Result:
    height, width = ctx.required("height"), ctx.required("width")
    for name, v in (("height", height), ("width", width)):
        if not is_int(v) or v <= 0:
            raise ctx.error(f"`{name}` must be a positive integer", f"{name}={v!r}")
    s = x[0]
    if len(s) != 4:
        raise ctx.no_rule("only image inputs of rank 3 (height, width, channels) are modelled")
    if ctx.data_format() == "channels_last":
        return Result([(s[0], height, width, s[3])])
    return Result([(s[0], s[1], height, width)])


rule("Resizing", args=("height", "width", "interpolation", "crop_to_aspect_ratio",
                       "pad_to_aspect_ratio", "fill_mode", "fill_value", "antialias",
                       "data_format"))(_resize_like)
rule("CenterCrop", args=("height", "width", "data_format"))(_resize_like)
rule("RandomCrop", args=("height", "width", "seed", "data_format"))(_resize_like)


def _nested_list_shape(v: Any) -> tuple[int, ...] | None:
    """np.shape() of a nested list of numbers (None if ragged)."""
    if isinstance(v, (list, tuple)):
        subs = [_nested_list_shape(e) for e in v]
        if any(s is None for s in subs) or len(set(subs)) > 1:
            return None
        return (len(v), *(subs[0] if subs else ()))  # type: ignore[misc]
    return ()


@rule("Normalization", args=("axis", "mean", "variance", "invert"))
def _normalization(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis", -1)
    if axis is None:
        axes: tuple[Any, ...] = ()
    elif is_int(axis):
        axes = (axis,)
    else:
        axes = tuple(axis)
    mean, variance = ctx.get("mean"), ctx.get("variance")
    if (mean is None) != (variance is None):
        raise ctx.error("both `mean` and `variance` must be set",
                        f"mean={mean!r}, variance={variance!r}")
    s = x[0]
    ndim = len(s)
    if any(not is_int(a) or a < -ndim or a >= ndim for a in axes):
        raise ctx.error("all `axis` values must be in the range [-ndim, ndim) (ndim counts "
                        "the batch dimension)", f"input_shape={fmt(s[1:])}, axis={axis!r}")
    keep = sorted(a if a >= 0 else a + ndim for a in axes)
    for d in keep:
        if s[d] is None:
            raise ctx.error(
                f"all `axis` values to be kept must have a known size (axis {d} is None)",
                f"input_shape={fmt(s[1:])}, axis={axis!r}",
            )
    if mean is None:
        n = 2 * prod([s[d] for d in keep]) + 1  # mean, variance, count
        return Result([s], non_trainable=n)
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
                f"input_shape={fmt(s[1:])}, mean shape {ms}, axis={axis!r}",
            )
    return Result([s])


@rule("CategoryEncoding", args=("num_tokens", "output_mode", "sparse"))
def _category_encoding(ctx: Ctx, x: list[FullShape]) -> Result:
    mode = ctx.get("output_mode", "multi_hot")
    if mode == "binary":
        mode = "multi_hot"
    if mode not in ("count", "one_hot", "multi_hot"):
        raise ctx.error("unknown `output_mode`", f"output_mode={mode!r}")
    num_tokens = ctx.required("num_tokens")
    if not is_int(num_tokens) or num_tokens < 1:
        raise ctx.error("`num_tokens` must be >= 1", f"num_tokens={num_tokens!r}")
    s = x[0]
    if mode == "one_hot" and (s[-1] != 1 or len(s) == 1):
        return Result([(*s, num_tokens)])
    return Result([(*s[:-1], num_tokens)])
