"""Rules for the keras.ops calls between layers (`op:` nodes), registered as ``ops.<name>``.

Shapes here include the batch axis (ops see whole tensors); rules that would move or drop
the batch axis raise NoRule rather than guess.
"""

from __future__ import annotations

import math

from graphspec.analysis.shapes._registry import (
    Ctx,
    Dim,
    FullShape,
    Result,
    RuleFn,
    broadcast,
    fmt,
    fmt_all,
    is_int,
    prod,
    rule,
)
from graphspec.analysis.shapes.conv import _conv_output_shape
from graphspec.spec.indexing import parse_key


def _operands(ctx: Ctx, x: list[FullShape], params: tuple[str, ...]) -> list[FullShape]:
    """Tensor inputs fill the parameters in order; constants come from the args."""
    tensors = list(x)
    out: list[FullShape] = []
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


def _binary(names: tuple[str, str]) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        a, b = _operands(ctx, x, names)
        return Result([broadcast(ctx, a, b)])

    return fn


# Element-wise functions of two tensors (broadcast), by the names of their operands.
_BINARY_OPS = {
    ("x1", "x2"): (
        "add", "subtract", "multiply", "divide", "true_divide", "maximum", "minimum", "power",
        "floor_divide", "mod", "equal", "not_equal", "greater", "greater_equal", "less", "less_equal",
        "logical_and", "logical_or", "logical_xor", "arctan2", "fmax", "fmin", "fmod", "gcd", "lcm", "hypot",
        "logaddexp", "logaddexp2", "nextafter", "heaviside", "divide_no_nan", "ldexp",
    ),
    ("x", "y"): ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift",
                 "left_shift", "right_shift"),
}
for _names, _ops in _BINARY_OPS.items():
    for _op in _ops:
        rule(f"ops.{_op}", args=_names, n_inputs=(1, 2))(_binary(_names))


def _unary(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis")
    if is_int(axis) and not -len(x[0]) <= axis < len(x[0]):
        raise ctx.error("`axis` is out of range", f"axis={axis}, rank={len(x[0])} (with the batch axis)")
    return Result([x[0]])


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
_UNARY_OPS.update({op: () for op in (
    "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "tan", "sinh", "cosh", "exp2", "expm1",
    "log10", "log1p", "log2", "cbrt", "fabs", "trunc", "erfc", "erfinv", "deg2rad", "rad2deg", "sinc", "i0",
    "signbit", "isfinite", "isinf", "isnan", "isneginf", "isposinf", "isreal", "real", "imag", "angle", "conj",
    "conjugate", "copy", "bitwise_not", "bitwise_invert", "hard_tanh", "tanh_shrink", "sparse_plus",
    "sparse_sigmoid", "fliplr", "flipud",
)})
_UNARY_OPS.update({
    # a tensor of the same shape: filled, or element-wise with parameters
    "ones_like": ("dtype",), "zeros_like": ("dtype",), "empty_like": ("dtype",), "full_like": ("fill_value", "dtype"),
    "saturate_cast": ("dtype",), "celu": ("alpha",), "hard_shrink": ("threshold",), "soft_shrink": ("threshold",),
    "squareplus": ("b",), "threshold": ("threshold", "default_value"), "sparsemax": ("axis",),
    "normalize": ("axis", "order", "epsilon"), "roll": ("shift", "axis"), "flip": ("axis",), "tril": ("k",), "triu": ("k",),
})
for _op, _extra in _UNARY_OPS.items():
    rule(f"ops.{_op}", args=_extra)(_unary)


@rule("ops.cumsum", "ops.cumprod", "ops.nancumsum", "ops.nancumprod", "ops.sort", "ops.argsort",
      args=("axis", "dtype"))
def _along_axis(ctx: Ctx, x: list[FullShape]) -> Result:
    """Scans and sorts along one axis keep the shape; without an axis they flatten the tensor."""
    default = -1 if ctx.type in ("ops.sort", "ops.argsort") else None
    axis = ctx.get("axis", default)
    if axis is None:
        raise ctx.no_rule("without `axis` the tensor is flattened, batch axis included")
    return _unary(ctx, x)


@rule("ops.reshape", args=("newshape",))
def _op_reshape(ctx: Ctx, x: list[FullShape]) -> Result:
    new = ctx.required("newshape")
    if not isinstance(new, list) or not all(is_int(d) for d in new):
        raise ctx.no_rule("`newshape` is not a list of integers")
    # Only reshapes that keep the batch axis first, written -1 or None-free after it.
    if not new or new[0] != -1 or any(d == -1 for d in new[1:]) or any(d < 1 for d in new[1:]):
        raise ctx.no_rule("the batch axis must stay first, written -1")
    rest = x[0][1:]
    if all(d is not None for d in rest) and prod([int(d) for d in rest if d is not None]) != prod(new[1:]):
        raise ctx.error("the new shape does not hold the same number of values per sample",
                        f"input_shape={fmt(rest)}, newshape={new}")
    return Result([(None, *new[1:])])


@rule("ops.transpose", args=("axes",))
def _op_transpose(ctx: Ctx, x: list[FullShape]) -> Result:
    axes = ctx.get("axes")
    if not isinstance(axes, list) or sorted(axes) != list(range(len(x[0]))) or axes[0] != 0:
        raise ctx.no_rule("only permutations that keep the batch axis first are modelled")
    return Result([tuple(x[0][a] for a in axes)])


@rule("ops.concatenate", args=("axis",), n_inputs=(1, None))
def _op_concatenate(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis", 0)
    rank = len(x[0])
    if not is_int(axis) or not -rank <= axis < rank or axis % rank == 0:
        raise ctx.no_rule("concatenation along the batch axis (keras.ops.concatenate's default axis=0)")
    axis %= rank
    if any(len(s) != rank for s in x):
        raise ctx.error("inputs must have the same rank", f"input_shapes=[{fmt_all([s[1:] for s in x])}]")
    total: Dim = 0
    for s in x:
        for i in range(rank):
            if i != axis and s[i] is not None and x[0][i] is not None and s[i] != x[0][i]:
                raise ctx.error("inputs must match except along `axis`",
                                f"input_shapes=[{fmt_all([t[1:] for t in x])}], axis={axis}")
        total = None if total is None or s[axis] is None else total + s[axis]
    out = list(x[0])
    out[axis] = total
    return Result([tuple(out)])


@rule("ops.mean", "ops.sum", "ops.max", "ops.min", "ops.prod", "ops.std", "ops.var",
      args=("axis", "keepdims", "initial", "dtype"))
def _op_reduce(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis")
    rank = len(x[0])
    axes = [axis] if is_int(axis) else axis
    if not isinstance(axes, list) or not axes or not all(is_int(a) and -rank <= a < rank for a in axes):
        raise ctx.no_rule("only reductions over given axes are modelled")
    norm = {a % rank for a in axes}
    if 0 in norm:
        raise ctx.no_rule("a reduction over the batch axis")
    keep = bool(ctx.get("keepdims", False))
    out = tuple((1 if i in norm else d) for i, d in enumerate(x[0]) if keep or i not in norm)
    return Result([out])


@rule("ops.expand_dims", args=("axis",))
def _op_expand_dims(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.required("axis")
    rank = len(x[0]) + 1
    if not is_int(axis) or not -rank <= axis < rank or axis % rank == 0:
        raise ctx.no_rule("only new axes after the batch axis are modelled")
    out = list(x[0])
    out.insert(axis % rank, 1)
    return Result([tuple(out)])


@rule("ops.get_item", args=("key",))
def _op_get_item(ctx: Ctx, x: list[FullShape]) -> Result:
    """`x[key]` with a key of integers, slices, `...` and `None` (graphspec.spec.indexing)."""
    try:
        key = parse_key(ctx.required("key"))
    except ValueError as exc:
        raise ctx.error("invalid index", str(exc)) from None
    shape = x[0]
    items = list(key) if isinstance(key, tuple) else [key]
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if used > len(shape):
        raise ctx.error("too many indices", f"key={ctx.get('key')}, rank={len(shape)} (with the batch axis)")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + [slice(None)] * (len(shape) - used) + items[at + 1:]
    else:
        items += [slice(None)] * (len(shape) - used)
    if items and items[0] != slice(None) and (not ctx.batched or ctx.batched[0]):
        raise ctx.no_rule("indexing that moves or drops the batch axis")
    out: list[Dim] = []
    axis = 0
    for item in items:
        if item is None:
            out.append(1)
            continue
        d = shape[axis]
        if isinstance(item, slice):
            out.append(None if d is None else len(range(*item.indices(d))))
        elif d is not None and not -d <= item < d:
            raise ctx.error(f"index {item} is out of range for axis {axis} of size {d}",
                            f"key={ctx.get('key')}, input_shape={fmt(shape[1:])}")
        axis += 1
    return Result([tuple(out)])


@rule("ops.arange", args=("start", "stop", "step", "dtype"), n_inputs=(0, 0))
def _op_arange(ctx: Ctx, x: list[FullShape]) -> Result:
    """A constant: `arange(start, stop, step)` has no batch axis."""
    start, stop, step = ctx.required("start"), ctx.get("stop"), ctx.get("step")
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ctx.no_rule(f"`{name}` that is not a number")
    if step == 0:
        raise ctx.error("`step` must not be zero", f"step={step}")
    return Result([(max(0, math.ceil((stop - start) / step)),)])


def _constant_shape(ctx: Ctx, x: list[FullShape]) -> Result:
    shape = ctx.required("shape")
    dims = [shape] if is_int(shape) else shape
    if not isinstance(dims, list) or not all(is_int(d) and d >= 0 for d in dims):
        raise ctx.error("`shape` must be a list of sizes", f"shape={shape!r}")
    return Result([tuple(dims)])


rule("ops.zeros", "ops.ones", args=("shape", "dtype"), n_inputs=(0, 0))(_constant_shape)


def _image_axes(ctx: Ctx, x: FullShape) -> tuple[int, int]:
    if len(x) != 4:
        raise ctx.no_rule("only batches of images (rank 3 without the batch axis) are modelled")
    fmt_ = ctx.data_format()
    return (1, 2) if fmt_ == "channels_last" else (2, 3)


@rule("ops.image.resize", args=("size", "interpolation", "antialias", "crop_to_aspect_ratio",
                                "pad_to_aspect_ratio", "fill_mode", "fill_value", "data_format"))
def _op_image_resize(ctx: Ctx, x: list[FullShape]) -> Result:
    h, w = _image_axes(ctx, x[0])
    size = ctx.required("size")
    if not isinstance(size, list) or len(size) != 2 or not all(is_int(d) and d > 0 for d in size):
        raise ctx.error("`size` must be [height, width]", f"size={size!r}")
    out = list(x[0])
    out[h], out[w] = size
    return Result([tuple(out)])


@rule("ops.image.crop_images", args=("top_cropping", "left_cropping", "bottom_cropping", "right_cropping",
                                     "target_height", "target_width", "data_format"))
def _op_image_crop(ctx: Ctx, x: list[FullShape]) -> Result:
    h, w = _image_axes(ctx, x[0])
    out = list(x[0])
    for axis, first, last, target in ((h, "top_cropping", "bottom_cropping", "target_height"),
                                      (w, "left_cropping", "right_cropping", "target_width")):
        size, a, b, t = x[0][axis], ctx.get(first), ctx.get(last), ctx.get(target)
        if t is None and (a is None or b is None):
            raise ctx.no_rule(f"give `{target}`, or both `{first}` and `{last}`")
        if t is None and size is not None:
            t = size - a - b
        if t is not None and (not is_int(t) or t <= 0):
            raise ctx.error(f"the cropped {target.removeprefix('target_')} must be positive",
                            f"input_shape={fmt(x[0][1:])}, {first}={a}, {last}={b}, {target}={t}")
        out[axis] = t
    return Result([tuple(out)])


@rule("ops.image.extract_patches", args=("size", "strides", "dilation_rate", "padding", "data_format"))
def _op_image_patches(ctx: Ctx, x: list[FullShape]) -> Result:
    _image_axes(ctx, x[0])
    size = ctx.ntuple("size", ctx.required("size"), 2)
    strides = ctx.ntuple("strides", ctx.get("strides") or list(size), 2)
    dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), 2)
    padding = ctx.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise ctx.error("`padding` must be 'valid' or 'same'", f"padding={padding!r}")
    data_format = ctx.data_format()
    channels = x[0][-1] if data_format == "channels_last" else x[0][1]
    filters = None if channels is None else size[0] * size[1] * channels
    return Result([_conv_output_shape(ctx, x[0], filters, size, strides, padding, data_format, dilation)])
