"""Rules for the merging layers: Add and the other element-wise merges, Concatenate and Dot."""

from __future__ import annotations

from graphspec.analysis.shapes._registry import (
    Ctx,
    Dim,
    FullShape,
    Result,
    Shape,
    fmt,
    fmt_all,
    is_int,
    rule,
)


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


def _merge(ctx: Ctx, x: list[FullShape]) -> Result:
    shapes = [s[1:] for s in x]
    out: Shape = shapes[0]
    for s in shapes[1:]:
        new = _elemwise(out, s)
        if new is None:
            raise ctx.error(
                f"input shapes {fmt(out)} and {fmt(s)} do not match",
                f"input_shapes=[{fmt_all(shapes)}]",
                hint="merged inputs must have the same shape (size-1 dimensions broadcast)",
            )
        out = new
    return Result([(None, *out)])


for _name in ("Add", "Multiply", "Average", "Maximum", "Minimum"):
    rule(_name, n_inputs=(1, None))(_merge)
rule("Subtract", n_inputs=(2, 2))(_merge)


@rule("Concatenate", args=("axis",), n_inputs=(1, None))
def _concatenate(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis", -1)
    if not is_int(axis):
        raise ctx.error("`axis` must be an integer", f"axis={axis!r}")
    shapes = [list(s) for s in x]
    received = f"axis={axis}, input_shapes=[{fmt_all([s[1:] for s in x])}]"
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
    return Result([tuple(out)])


@rule("Dot", args=("axes", "normalize"), n_inputs=(2, 2))
def _dot(ctx: Ctx, x: list[FullShape]) -> Result:
    axes_arg = ctx.required("axes")
    valid_pair = isinstance(axes_arg, (list, tuple)) and len(axes_arg) == 2 and all(
        is_int(a) for a in axes_arg
    )
    if not (is_int(axes_arg) or valid_pair):
        raise ctx.error("`axes` must be an integer or a list of two integers",
                        f"axes={axes_arg!r}")
    s1, s2 = list(x[0]), list(x[1])
    received = f"axes={axes_arg!r}, input_shapes=[{fmt(s1[1:])}, {fmt(s2[1:])}]"
    if is_int(axes_arg):
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
    return Result([tuple(out)])
