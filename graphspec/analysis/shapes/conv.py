"""Rules for the convolution layers: ConvND, ConvNDTranspose, depthwise and separable."""

from __future__ import annotations

from graphspec.analysis.shapes._registry import (
    Ctx,
    Dim,
    FullShape,
    RankError,
    Result,
    RuleFn,
    fmt,
    is_int,
    macs,
    prod,
    rule,
)


def _spatial(x: FullShape, data_format: str) -> tuple[Dim, ...]:
    return tuple(x[1:-1] if data_format == "channels_last" else x[2:])


def _conv_output_shape(ctx: Ctx, x: FullShape, filters: Dim, kernel: tuple[int, ...],
                       strides: tuple[int, ...], padding: str, data_format: str,
                       dilation: tuple[int, ...]) -> FullShape:
    """Port of keras.src.ops.operation_utils.compute_conv_output_shape."""
    if data_format == "channels_last":
        spatial = x[1:-1]
        channels = x[-1]
    else:
        spatial = x[2:]
        channels = x[1]
    if len(kernel) + 2 != len(x):
        raise RankError(
            f"{ctx.type}: expected an input of rank {len(kernel) + 1} (without the batch "
            f"dimension), found rank {len(x) - 1}. Received: input_shape={fmt(x[1:])}, "
            f"kernel_size={kernel}"
        )
    del channels
    out: list[Dim] = []
    for i, size in enumerate(spatial):
        if size is None:
            out.append(None)
            continue
        if padding == "valid":
            o = (size - dilation[i] * (kernel[i] - 1) - 1) // strides[i] + 1
            if o <= 0:
                raise ctx.error(
                    "computed output size would be zero or negative (the kernel is larger "
                    "than the input with padding='valid')",
                    f"input_shape={fmt(x[1:])}, kernel_size={kernel}, strides={strides}, "
                    f"dilation_rate={dilation}, padding={padding!r}",
                    hint="use padding='same', a smaller kernel_size/strides, or a larger input",
                )
        else:
            o = (size - 1) // strides[i] + 1
        out.append(o)
    if data_format == "channels_last":
        return (x[0], *out, filters)
    return (x[0], filters, *out)


def _padding(ctx: Ctx, allow_causal: bool) -> str:
    p = ctx.get("padding", "valid")
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    if not isinstance(p, str) or p.lower() not in allowed:
        raise ctx.error(f"`padding` must be one of {allowed}", f"padding={p!r}")
    return p.lower()


def _channels(x: FullShape, data_format: str) -> Dim:
    return x[-1] if data_format == "channels_last" else x[1]


_CONV_ARGS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
              "groups", "activation", "use_bias", "lora_rank", "lora_alpha")


def _conv(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        filters = ctx.required("filters")
        if not is_int(filters) or filters <= 0:
            raise ctx.error("`filters` must be a positive integer", f"filters={filters!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=rank == 1)
        df = ctx.data_format()
        groups = ctx.get("groups", 1)
        if not is_int(groups) or groups <= 0:
            raise ctx.error("`groups` must be a positive integer", f"groups={groups!r}")
        if filters % groups:
            raise ctx.error(
                "the number of filters must be evenly divisible by the number of groups",
                f"filters={filters}, groups={groups}",
            )
        if max(strides) > 1 and max(dilation) > 1:
            raise ctx.error(
                "`strides > 1` is not supported in conjunction with `dilation_rate > 1`",
                f"strides={strides}, dilation_rate={dilation}",
            )
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        c = _channels(s, df)
        if c is None:
            raise ctx.error(
                "the channel dimension of the input must be defined (not None)",
                f"input_shape={fmt(s[1:])}",
            )
        if c % groups:
            raise ctx.error(
                "the number of input channels must be evenly divisible by the number of groups",
                f"input_shape={fmt(s[1:])}, groups={groups}",
            )
        out = _conv_output_shape(ctx, s, filters, kernel, strides, padding, df, dilation)
        n = prod(kernel) * (c // groups) * filters
        if ctx.flag("use_bias", True):
            n += filters
        # Each output value: a kernel window over the input channels of its group.
        count = macs(*_spatial(out, df), filters, prod(kernel) * (c // groups))
        return Result([out], trainable=n, macs=count)

    return fn


rule("Conv1D", "Convolution1D", args=_CONV_ARGS)(_conv(1))
rule("Conv2D", "Convolution2D", args=_CONV_ARGS)(_conv(2))
rule("Conv3D", "Convolution3D", args=_CONV_ARGS)(_conv(3))


_CONV_T_ARGS = ("filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
                "dilation_rate", "activation", "use_bias")


def _conv_transpose(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        filters = ctx.required("filters")
        if not is_int(filters) or filters <= 0:
            raise ctx.error("`filters` must be a positive integer", f"filters={filters!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=False)
        df = ctx.data_format()
        op_arg = ctx.get("output_padding")
        out_pad = None if op_arg is None else ctx.ntuple("output_padding", op_arg, rank, True)
        if out_pad is not None:
            for i, (op, st) in enumerate(zip(out_pad, strides)):
                if op >= st:
                    raise ctx.error(
                        "`output_padding` must be strictly less than `strides` "
                        f"(dimension {i})",
                        f"output_padding={out_pad}, strides={strides}",
                    )
        if max(strides) > 1 and max(dilation) > 1:
            raise ctx.error(
                "`strides > 1` is not supported in conjunction with `dilation_rate > 1`",
                f"strides={strides}, dilation_rate={dilation}",
            )
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        c = _channels(s, df)
        spatial = s[1:-1] if df == "channels_last" else s[2:]
        out: list[Dim] = []
        for i, size in enumerate(spatial):
            if size is None:
                out.append(None)
                continue
            k = (kernel[i] - 1) * dilation[i] + 1
            if padding == "valid":
                op = max(k, strides[i]) - k if out_pad is None else out_pad[i]
                out.append((size - 1) * strides[i] + k + op)
            elif out_pad is None:
                out.append(size * strides[i])
            else:
                out.append((size - 1) * strides[i] + k % 2 + out_pad[i])
        full: FullShape = (
            (s[0], *out, filters) if df == "channels_last" else (s[0], filters, *out)
        )
        n = ctx.weight("kernel", (*kernel, filters, c), x)
        if ctx.flag("use_bias", True):
            n += filters
        # Each input value is multiplied by the whole kernel (filters x window).
        count = macs(*spatial, c, prod(kernel), filters)
        return Result([full], trainable=n, macs=count)

    return fn


rule("Conv1DTranspose", "Convolution1DTranspose", args=_CONV_T_ARGS)(_conv_transpose(1))
rule("Conv2DTranspose", "Convolution2DTranspose", args=_CONV_T_ARGS)(_conv_transpose(2))
rule("Conv3DTranspose", "Convolution3DTranspose", args=_CONV_T_ARGS)(_conv_transpose(3))


_DEPTHWISE_ARGS = ("kernel_size", "strides", "padding", "depth_multiplier", "data_format",
                   "dilation_rate", "activation", "use_bias")


def _depthwise(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        dm = ctx.get("depth_multiplier", 1)
        if not is_int(dm) or dm <= 0:
            raise ctx.error("`depth_multiplier` must be a positive integer",
                            f"depth_multiplier={dm!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=False)
        df = ctx.data_format()
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        c = _channels(s, df)
        if c is None:
            raise ctx.error(
                "the channel dimension of the input must be defined (not None)",
                f"input_shape={fmt(s[1:])}",
            )
        out = _conv_output_shape(ctx, s, dm * c, kernel, strides, padding, df, dilation)
        n = prod(kernel) * c * dm
        if ctx.flag("use_bias", True):
            n += dm * c
        count = macs(*_spatial(out, df), c * dm, prod(kernel))
        return Result([out], trainable=n, macs=count)

    return fn


rule("DepthwiseConv1D", args=_DEPTHWISE_ARGS)(_depthwise(1))
rule("DepthwiseConv2D", args=_DEPTHWISE_ARGS)(_depthwise(2))


_SEPARABLE_ARGS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                   "depth_multiplier", "activation", "use_bias")


def _separable(rank: int) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        dm = ctx.get("depth_multiplier", 1)
        if not is_int(dm) or dm <= 0:
            raise ctx.error("`depth_multiplier` must be a positive integer",
                            f"depth_multiplier={dm!r}")
        filters = ctx.required("filters")
        if not is_int(filters) or filters <= 0:
            raise ctx.error("`filters` must be a positive integer", f"filters={filters!r}")
        kernel = ctx.ntuple("kernel_size", ctx.required("kernel_size"), rank)
        strides = ctx.ntuple("strides", ctx.get("strides", 1), rank)
        dilation = ctx.ntuple("dilation_rate", ctx.get("dilation_rate", 1), rank)
        padding = _padding(ctx, allow_causal=False)
        df = ctx.data_format()
        s = x[0]
        ctx.check_ndim(s, rank + 2)
        out = _conv_output_shape(ctx, s, filters, kernel, strides, padding, df, dilation)
        c = _channels(s, df)
        n = ctx.weight("depthwise_kernel", (*kernel, c, dm), x)
        n += ctx.weight("pointwise_kernel", (c, dm, filters), x)
        if ctx.flag("use_bias", True):
            n += filters
        # The depthwise step, then a 1x1 convolution of its c * dm channels.
        positions = macs(*_spatial(out, df))
        count = None if positions is None or c is None else positions * c * dm * (prod(kernel) + filters)
        return Result([out], trainable=n, macs=count)

    return fn


rule("SeparableConv1D", "SeparableConvolution1D", args=_SEPARABLE_ARGS)(_separable(1))
rule("SeparableConv2D", "SeparableConvolution2D", args=_SEPARABLE_ARGS)(_separable(2))
