"""Rules for the keras.ops calls between layers (`op:` nodes), registered as ``ops.<name>``.

Shapes here include the batch axis (ops see whole tensors); rules that would move or drop
the batch axis raise NoRule rather than guess.
"""

from __future__ import annotations

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
