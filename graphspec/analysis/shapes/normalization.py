"""Rules for the normalization layers: batch, layer, RMS, group and unit normalization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphspec.analysis.shapes._registry import Ctx, FullShape, Result, fmt, is_int, rule


def _axis_in_range(ctx: Ctx, axes: Sequence[Any], x: FullShape, name: str = "axis") -> None:
    n = len(x)
    for a in axes:
        if not is_int(a) or a >= n or a < -n:
            raise ctx.error(
                f"axis {a} is out of bounds for the input (axes count the batch "
                "dimension as axis 0)",
                f"input_shape={fmt(x[1:])}, {name}={ctx.get(name, -1)!r}",
            )


@rule("BatchNormalization", args=("axis", "momentum", "epsilon", "center", "scale", "renorm",
                                  "renorm_clipping", "renorm_momentum", "synchronized"))
def _batch_norm(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis", -1)
    if not is_int(axis):
        raise ctx.error("`axis` must be an integer", f"axis={axis!r}")
    s = x[0]
    _axis_in_range(ctx, [axis], s)
    c = ctx.weight("gamma", (s[axis],), x)
    n_scale = int(ctx.flag("scale", True)) + int(ctx.flag("center", True))
    n_stats = 2 + (3 if ctx.flag("renorm", False) else 0)
    return Result([s], trainable=n_scale * c, non_trainable=n_stats * c)


@rule("LayerNormalization", args=("axis", "epsilon", "center", "scale"))
def _layer_norm(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    s = x[0]
    _axis_in_range(ctx, axes, s)
    shape = tuple(s[a] for a in sorted(axes))
    n_w = int(ctx.flag("scale", True)) + int(ctx.flag("center", True))
    n = ctx.weight("gamma", shape, x) * n_w if n_w else 0
    return Result([s], trainable=n)


@rule("RMSNormalization", args=("axis", "epsilon"))
def _rms_norm(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    s = x[0]
    _axis_in_range(ctx, axes, s)
    shape = tuple(s[a] for a in sorted(axes))
    return Result([s], trainable=ctx.weight("scale", shape, x))


@rule("GroupNormalization", args=("groups", "axis", "epsilon", "center", "scale"))
def _group_norm(ctx: Ctx, x: list[FullShape]) -> Result:
    groups = ctx.get("groups", 32)
    if not is_int(groups) or (groups <= 0 and groups != -1):
        raise ctx.error("`groups` must be a positive integer or -1", f"groups={groups!r}")
    axis = ctx.get("axis", -1)
    if not is_int(axis):
        raise ctx.no_rule("a non-integer `axis` is not modelled")
    s = x[0]
    _axis_in_range(ctx, [axis], s)
    dim = s[axis]
    if dim is None:
        raise ctx.error(
            f"axis {axis} of the input must have a defined dimension",
            f"input_shape={fmt(s[1:])}",
        )
    if groups == -1:
        groups = dim
    if dim < groups:
        raise ctx.error(
            f"the number of groups ({groups}) cannot be more than the number of channels ({dim})",
            f"input_shape={fmt(s[1:])}, groups={groups}",
        )
    if dim % groups:
        raise ctx.error(
            f"the number of channels ({dim}) must be a multiple of the number of groups "
            f"({groups})",
            f"input_shape={fmt(s[1:])}, groups={groups}",
        )
    n = dim * (int(ctx.flag("scale", True)) + int(ctx.flag("center", True)))
    return Result([s], trainable=n)


@rule("UnitNormalization", args=("axis",))
def _unit_norm(ctx: Ctx, x: list[FullShape]) -> Result:
    axis = ctx.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    _axis_in_range(ctx, axes, x[0])
    return Result([x[0]])
