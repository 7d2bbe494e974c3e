"""Rules for the pooling layers: max/average pooling and their global variants."""

from __future__ import annotations

from graphspec.analysis.shapes._registry import Ctx, Dim, FullShape, Result, RuleFn, fmt, rule


def _pooling(rank: int, default_pool: int | None) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        if default_pool is None:
            pool_arg = ctx.required("pool_size")
        else:
            pool_arg = ctx.get("pool_size", default_pool)
        pool = ctx.ntuple("pool_size", pool_arg, rank)
        st_arg = ctx.get("strides")
        strides = ctx.ntuple("strides", pool_arg if st_arg is None else st_arg, rank, True)
        padding = ctx.get("padding", "valid")
        df = ctx.data_format()
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        if padding not in ("valid", "same"):
            raise ctx.error("`padding` must be either 'valid' or 'same' (lowercase)",
                            f"padding={padding!r}")
        if 0 in strides:
            raise ctx.error("`strides` cannot contain 0", f"strides={strides}")
        spatial = s[1:-1] if df == "channels_last" else s[2:]
        out: list[Dim] = []
        for i, size in enumerate(spatial):
            if size is None:
                out.append(None)
            elif padding == "valid":
                o = (size - pool[i]) // strides[i] + 1
                if o <= 0:
                    raise ctx.error(
                        "computed output size would be zero or negative (pool_size larger than "
                        "the input with padding='valid')",
                        f"input_shape={fmt(s[1:])}, pool_size={pool}, strides={strides}, "
                        f"padding={padding!r}",
                        hint="use padding='same' or a smaller pool_size",
                    )
                out.append(o)
            else:
                out.append((size - 1) // strides[i] + 1)
        full: FullShape = (s[0], *out, s[-1]) if df == "channels_last" else (s[0], s[1], *out)
        return Result([full])

    return fn


_POOL_ARGS = ("pool_size", "strides", "padding", "data_format")
rule("MaxPooling1D", "MaxPool1D", args=_POOL_ARGS)(_pooling(1, 2))
rule("MaxPooling2D", "MaxPool2D", args=_POOL_ARGS)(_pooling(2, 2))
rule("MaxPooling3D", "MaxPool3D", args=_POOL_ARGS)(_pooling(3, 2))
rule("AveragePooling1D", "AvgPool1D", args=_POOL_ARGS)(_pooling(1, None))
rule("AveragePooling2D", "AvgPool2D", args=_POOL_ARGS)(_pooling(2, None))
rule("AveragePooling3D", "AvgPool3D", args=_POOL_ARGS)(_pooling(3, None))


def _global_pooling(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        df = ctx.data_format()
        keepdims = ctx.flag("keepdims", False)
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        if df == "channels_last":
            full: FullShape = (s[0], *((1,) * rank), s[-1]) if keepdims else (s[0], s[-1])
        else:
            full = (s[0], s[1], *((1,) * rank)) if keepdims else (s[0], s[1])
        return Result([full])

    return fn


_GPOOL_ARGS = ("data_format", "keepdims")
for _r in (1, 2, 3):
    rule(f"GlobalMaxPooling{_r}D", f"GlobalMaxPool{_r}D", args=_GPOOL_ARGS)(_global_pooling(_r))
    rule(f"GlobalAveragePooling{_r}D", f"GlobalAvgPool{_r}D", args=_GPOOL_ARGS)(
        _global_pooling(_r)
    )
