"""Rules for the attention layers: MultiHeadAttention, Attention and AdditiveAttention."""

from __future__ import annotations

from typing import Any

from graphspec.analysis.shapes._registry import Ctx, FullShape, Result, fmt, is_int, macs, prod, rule, size


@rule("MultiHeadAttention", args=("num_heads", "key_dim", "value_dim", "dropout", "use_bias",
                                  "output_shape", "attention_axes", "sliding_window",
                                  "flash_attention", "use_gate", "seed"), n_inputs=(2, 3))
def _mha(ctx: Ctx, x: list[FullShape]) -> Result:
    heads = ctx.required("num_heads")
    key_dim = ctx.required("key_dim")
    for name, v in (("num_heads", heads), ("key_dim", key_dim)):
        if not is_int(v) or v <= 0:
            raise ctx.error(f"`{name}` must be a positive integer", f"{name}={v!r}")
    value_dim = ctx.get("value_dim")
    if value_dim is not None and (not is_int(value_dim) or value_dim <= 0):
        raise ctx.error("`value_dim` must be a positive integer or None",
                        f"value_dim={value_dim!r}")
    value_dim = value_dim or key_dim
    out_shape_arg = ctx.get("output_shape")
    out_shape: tuple[Any, ...] | None = None
    if out_shape_arg:
        out_shape = (out_shape_arg,) if is_int(out_shape_arg) else tuple(out_shape_arg)
    attn_axes = ctx.get("attention_axes")
    if is_int(attn_axes):
        attn_axes = (attn_axes,)
    elif attn_axes and not isinstance(attn_axes, (list, tuple)):
        raise ctx.error("`attention_axes` must be an int, list, or tuple",
                        f"attention_axes={attn_axes!r}")
    sw = ctx.get("sliding_window")
    if sw is not None and (not is_int(sw) or sw <= 0):
        raise ctx.error("`sliding_window` must be None or a positive integer",
                        f"sliding_window={sw!r}")
    dropout = ctx.get("dropout", 0.0)
    if ctx.get("flash_attention") and dropout and dropout > 0:
        raise ctx.error("dropout is not supported when flash attention is enabled",
                        f"dropout={dropout}, flash_attention=True")
    q, v = x[0], x[1]
    k = x[2] if len(x) > 2 else v
    received = f"query={fmt(q[1:])}, value={fmt(v[1:])}, key={fmt(k[1:])}"
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
    norm: list[int] = []
    if attn_axes is not None:
        for a in attn_axes:
            if not is_int(a):
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
    return Result([out], trainable=n, macs=_mha_macs(ctx, q, k, v, hk, hv, norm, prod(final)))


def _mha_macs(ctx: Ctx, q: FullShape, k: FullShape, v: FullShape, hk: int, hv: int,
              attn_axes: list[int], out_dim: int) -> int | None:
    """The four projections, then scores (query x key) and their weighted sum of values."""
    queries, keys, values = size(q[1:-1]), size(k[1:-1]), size(v[1:-1])
    # Attention runs over the key's attention axes (all but batch and features by default);
    # its other axes pair with the query's.
    attended = size([k[a] for a in attn_axes if 0 < a < len(k) - 1]) if attn_axes else keys
    parts = [
        macs(queries, q[-1], hk),
        macs(keys, k[-1], hk),
        macs(values, v[-1], hv),
        macs(queries, hv, out_dim),
        macs(queries, attended, hk),
        macs(queries, attended, hv),
    ]
    if ctx.flag("use_gate", False):
        parts.append(macs(queries, q[-1], hv))
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


@rule("Attention", args=("use_scale", "score_mode", "dropout", "seed"), n_inputs=(2, 3))
def _attention(ctx: Ctx, x: list[FullShape]) -> Result:
    mode = ctx.get("score_mode", "dot")
    if mode not in ("dot", "concat"):
        raise ctx.error("`score_mode` must be 'dot' or 'concat'", f"score_mode={mode!r}")
    n = int(ctx.flag("use_scale", False)) + int(mode == "concat")
    q, v = x[0], x[1]
    return Result([(*q[:-1], v[-1])], trainable=n, macs=_attention_macs(x))


@rule("AdditiveAttention", args=("use_scale", "dropout", "seed", "score_mode"), n_inputs=(2, 3))
def _additive_attention(ctx: Ctx, x: list[FullShape]) -> Result:
    mode = ctx.get("score_mode", "dot")
    if mode not in ("dot", "concat"):
        raise ctx.error("`score_mode` must be 'dot' or 'concat'", f"score_mode={mode!r}")
    q, v = x[0], x[1]
    n = ctx.weight("scale", (q[-1],), x) if ctx.flag("use_scale", True) else 0
    return Result([(*q[:-1], v[-1])], trainable=n, macs=_attention_macs(x))


def _attention_macs(x: list[FullShape]) -> int | None:
    """Scores (each query against each key, over the features) and the weighted sum of values."""
    q, v = x[0], x[1]
    k = x[2] if len(x) > 2 else v
    if len(q) < 3 or len(v) < 3:
        return None  # the (batch, steps, features) layout these layers are written for
    return macs(size(q[1:-1]), k[-2], None if q[-1] is None or v[-1] is None else q[-1] + v[-1])
