"""EfficientNet B0-B7 and EfficientNetV2 (B0-B3, S, M, L), ported from keras.src.applications
(efficientnet.py, efficientnet_v2.py) onto :class:`Net`."""

from __future__ import annotations

import math

from graphspec.analysis.shapes.applications._net import Args, Net, T, application, correct_pad

# width, depth, default size, dropout
_V1 = {
    "EfficientNetB0": (1.0, 1.0, 224, 0.2), "EfficientNetB1": (1.0, 1.1, 240, 0.2),
    "EfficientNetB2": (1.1, 1.2, 260, 0.3), "EfficientNetB3": (1.2, 1.4, 300, 0.3),
    "EfficientNetB4": (1.4, 1.8, 380, 0.4), "EfficientNetB5": (1.6, 2.2, 456, 0.4),
    "EfficientNetB6": (1.8, 2.6, 528, 0.5), "EfficientNetB7": (2.0, 3.1, 600, 0.5),
}
# kernel, repeats, filters in, filters out, expand ratio, strides (se_ratio 0.25, id_skip everywhere)
_V1_BLOCKS = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
              (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def _bn(net: Net, x: T, name: str | None, **args: object) -> T:
    return net.layer("BatchNormalization", x, name, axis=3, **args)


def _squeeze_excite(net: Net, x: T, filters: int, filters_se: int, name: str) -> T:
    se = net.layer("GlobalAveragePooling2D", x, f"{name}se_squeeze")
    se = net.layer("Reshape", se, f"{name}se_reshape", target_shape=(1, 1, filters))
    se = net.layer("Conv2D", se, f"{name}se_reduce", filters=filters_se, kernel_size=1, padding="same",
                   activation="swish")
    se = net.layer("Conv2D", se, f"{name}se_expand", filters=filters, kernel_size=1, padding="same",
                   activation="sigmoid")
    return net.layer("Multiply", [x, se], f"{name}se_excite")


def _v1_block(net: Net, inputs: T, drop_rate: float, name: str, filters_in: int, filters_out: int,
              kernel_size: int, strides: int, expand_ratio: int) -> T:
    filters = filters_in * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = net.layer("Conv2D", x, f"{name}expand_conv", filters=filters, kernel_size=1, padding="same",
                      use_bias=False)
        x = _bn(net, x, f"{name}expand_bn")
        x = net.layer("Activation", x, f"{name}expand_activation", activation="swish")
    if strides == 2:
        x = net.layer("ZeroPadding2D", x, f"{name}dwconv_pad", padding=correct_pad(x, kernel_size))
    x = net.layer("DepthwiseConv2D", x, f"{name}dwconv", kernel_size=kernel_size, strides=strides,
                  padding="valid" if strides == 2 else "same", use_bias=False)
    x = _bn(net, x, f"{name}bn")
    x = net.layer("Activation", x, f"{name}activation", activation="swish")
    x = _squeeze_excite(net, x, filters, max(1, int(filters_in * 0.25)), name)
    x = net.layer("Conv2D", x, f"{name}project_conv", filters=filters_out, kernel_size=1, padding="same",
                  use_bias=False)
    x = _bn(net, x, f"{name}project_bn")
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = net.layer("Dropout", x, f"{name}drop", rate=drop_rate, noise_shape=(None, 1, 1, 1))
        x = net.layer("Add", [x, inputs], f"{name}add")
    return x


@application(*_V1)
def efficientnet(net: Net, a: Args) -> T:
    width, depth, default_size, dropout = _V1[a.app]
    a.check_classes()

    def round_filters(filters: float, divisor: int = 8) -> int:
        filters *= width
        new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
        if new < 0.9 * filters:
            new += divisor
        return int(new)

    def round_repeats(repeats: int) -> int:
        return int(math.ceil(depth * repeats))

    x = net.input(a.input(default_size, 32))
    x = net.layer("Rescaling", x, scale=1.0 / 255.0)
    x = net.layer("Normalization", x, axis=3)
    if a.weights == "imagenet":
        x = net.layer("Rescaling", x, scale=[1.0 / math.sqrt(s) for s in _IMAGENET_STDDEV_RGB])
    x = net.layer("ZeroPadding2D", x, "stem_conv_pad", padding=correct_pad(x, 3))
    x = net.layer("Conv2D", x, "stem_conv", filters=round_filters(32), kernel_size=3, strides=2, padding="valid",
                  use_bias=False)
    x = _bn(net, x, "stem_bn")
    x = net.layer("Activation", x, "stem_activation", activation="swish")
    b = 0
    blocks = float(sum(round_repeats(r) for _, r, *_ in _V1_BLOCKS))
    for i, (kernel, repeats, f_in, f_out, expand, strides) in enumerate(_V1_BLOCKS):
        f_in, f_out = round_filters(f_in), round_filters(f_out)
        for j in range(round_repeats(repeats)):
            if j > 0:
                strides, f_in = 1, f_out
            x = _v1_block(net, x, 0.2 * b / blocks, f"block{i + 1}{chr(j + 97)}_", f_in, f_out, kernel, strides,
                          expand)
            b += 1
    x = net.layer("Conv2D", x, "top_conv", filters=round_filters(1280), kernel_size=1, padding="same", use_bias=False)
    x = _bn(net, x, "top_bn")
    x = net.layer("Activation", x, "top_activation", activation="swish")
    return a.head(net, x, dropout=dropout, pools=("avg_pool", "max_pool"))


# width, depth, default size, the name its blocks are looked up by
_V2 = {
    "EfficientNetV2B0": (1.0, 1.0, 224, "efficientnetv2-b0"), "EfficientNetV2B1": (1.0, 1.1, 240, "efficientnetv2-b1"),
    "EfficientNetV2B2": (1.1, 1.2, 260, "efficientnetv2-b2"), "EfficientNetV2B3": (1.2, 1.4, 300, "efficientnetv2-b3"),
    "EfficientNetV2S": (1.0, 1.0, 384, "efficientnetv2-s"), "EfficientNetV2M": (1.0, 1.0, 480, "efficientnetv2-m"),
    "EfficientNetV2L": (1.0, 1.0, 480, "efficientnetv2-l"),
}
# kernel, repeats, filters in, filters out, expand ratio, se ratio, strides, fused (conv_type 1)
_B = ((3, 1, 32, 16, 1, 0, 1, True), (3, 2, 16, 32, 4, 0, 2, True), (3, 2, 32, 48, 4, 0, 2, True),
      (3, 3, 48, 96, 4, 0.25, 2, False), (3, 5, 96, 112, 6, 0.25, 1, False), (3, 8, 112, 192, 6, 0.25, 2, False))
_V2_BLOCKS = {
    "efficientnetv2-s": ((3, 2, 24, 24, 1, 0, 1, True), (3, 4, 24, 48, 4, 0, 2, True), (3, 4, 48, 64, 4, 0, 2, True),
                         (3, 6, 64, 128, 4, 0.25, 2, False), (3, 9, 128, 160, 6, 0.25, 1, False),
                         (3, 15, 160, 256, 6, 0.25, 2, False)),
    "efficientnetv2-m": ((3, 3, 24, 24, 1, 0, 1, True), (3, 5, 24, 48, 4, 0, 2, True), (3, 5, 48, 80, 4, 0, 2, True),
                         (3, 7, 80, 160, 4, 0.25, 2, False), (3, 14, 160, 176, 6, 0.25, 1, False),
                         (3, 18, 176, 304, 6, 0.25, 2, False), (3, 5, 304, 512, 6, 0.25, 1, False)),
    "efficientnetv2-l": ((3, 4, 32, 32, 1, 0, 1, True), (3, 7, 32, 64, 4, 0, 2, True), (3, 7, 64, 96, 4, 0, 2, True),
                         (3, 10, 96, 192, 4, 0.25, 2, False), (3, 19, 192, 224, 6, 0.25, 1, False),
                         (3, 25, 224, 384, 6, 0.25, 2, False), (3, 7, 384, 640, 6, 0.25, 1, False)),
    "efficientnetv2-b0": _B, "efficientnetv2-b1": _B, "efficientnetv2-b2": _B, "efficientnetv2-b3": _B,
}


def _v2_block(net: Net, inputs: T, fused: bool, name: str, f_in: int, f_out: int, expand: int, kernel: int,
              strides: int, se_ratio: float, survival: float) -> T:
    """efficientnet_v2.MBConvBlock (fused=False) and FusedMBConvBlock (fused=True)."""
    filters = f_in * expand
    x = inputs
    if expand != 1:
        x = net.layer("Conv2D", x, f"{name}expand_conv", filters=filters, kernel_size=kernel if fused else 1,
                      strides=strides if fused else 1, padding="same", use_bias=False)
        x = _bn(net, x, f"{name}expand_bn", momentum=0.9)
        x = net.layer("Activation", x, f"{name}expand_activation", activation="swish")
    if not fused:
        x = net.layer("DepthwiseConv2D", x, f"{name}dwconv2", kernel_size=kernel, strides=strides, padding="same",
                      use_bias=False)
        x = _bn(net, x, f"{name}bn", momentum=0.9)
        x = net.layer("Activation", x, f"{name}activation", activation="swish")
    if 0 < se_ratio <= 1:
        x = _squeeze_excite(net, x, filters, max(1, int(f_in * se_ratio)), name)
    one = not fused or expand != 1
    x = net.layer("Conv2D", x, f"{name}project_conv", filters=f_out, kernel_size=1 if one else kernel,
                  strides=1 if one else strides, padding="same", use_bias=False)
    x = _bn(net, x, f"{name}project_bn", momentum=0.9)
    if fused and expand == 1:
        x = net.layer("Activation", x, f"{name}project_activation", activation="swish")
    if strides == 1 and f_in == f_out:
        if survival:
            x = net.layer("Dropout", x, f"{name}drop", rate=survival, noise_shape=(None, 1, 1, 1))
        x = net.layer("Add", [x, inputs], f"{name}add")
    return x


@application(*_V2, extra=("include_preprocessing",))
def efficientnet_v2(net: Net, a: Args) -> T:
    width, depth, default_size, name = _V2[a.app]
    a.check_classes()

    def round_filters(filters: int) -> int:
        return int(max(8, int(filters * width + 4) // 8 * 8))

    shape = a.input(default_size, 32)
    x = net.input(shape)
    if a.get("include_preprocessing", True):
        if name.split("-")[-1].startswith("b") and shape[2] == 3:
            x = net.layer("Rescaling", x, scale=1.0 / 255)
            x = net.layer("Normalization", x, mean=[0.485, 0.456, 0.406],
                          variance=[0.229**2, 0.224**2, 0.225**2], axis=3)
        else:
            x = net.layer("Rescaling", x, scale=1.0 / 128.0, offset=-1)
    blocks_args = _V2_BLOCKS[name]
    x = net.layer("Conv2D", x, "stem_conv", filters=round_filters(blocks_args[0][2]), kernel_size=3, strides=2,
                  padding="same", use_bias=False)
    x = _bn(net, x, "stem_bn", momentum=0.9)
    x = net.layer("Activation", x, "stem_activation", activation="swish")
    b = 0
    blocks = float(sum(r for _, r, *_ in blocks_args))
    for i, (kernel, repeats, f_in, f_out, expand, se_ratio, strides, fused) in enumerate(blocks_args):
        f_in, f_out = round_filters(f_in), round_filters(f_out)
        for j in range(int(math.ceil(depth * repeats))):
            if j > 0:
                strides, f_in = 1, f_out
            x = _v2_block(net, x, fused, f"block{i + 1}{chr(j + 97)}_", f_in, f_out, expand, kernel, strides,
                          se_ratio, 0.2 * b / blocks)
            b += 1
    x = net.layer("Conv2D", x, "top_conv", filters=round_filters(1280), kernel_size=1, strides=1, padding="same",
                  use_bias=False)
    x = _bn(net, x, "top_bn", momentum=0.9)
    x = net.layer("Activation", x, "top_activation", activation="swish")
    return a.head(net, x, dropout=0.2, pools=("avg_pool", "max_pool"))
