"""Rules for the layers of the built-in plugin graphspec.build.app_layers (the
keras.applications helpers LayerScale and CustomScaleLayer)."""

from __future__ import annotations

from graphspec.analysis.shapes._registry import Ctx, FullShape, Result, broadcast, is_int, rule


@rule("LayerScale", args=("init_values", "projection_dim"))
def _layer_scale(ctx: Ctx, x: list[FullShape]) -> Result:
    dim = ctx.required("projection_dim")
    if not is_int(dim) or dim < 1:
        raise ctx.error("`projection_dim` must be a positive integer", f"projection_dim={dim!r}")
    out = broadcast(ctx, x[0], (dim,))
    return Result([out], trainable=dim)


@rule("CustomScaleLayer", args=("scale",), n_inputs=(2, 2))
def _custom_scale(ctx: Ctx, x: list[FullShape]) -> Result:
    return Result([broadcast(ctx, x[0], x[1])])
