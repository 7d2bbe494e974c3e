"""InceptionV3, InceptionResNetV2 and Xception, ported from keras.src.applications
(inception_v3.py, inception_resnet_v2.py, xception.py) onto :class:`Net`."""

from __future__ import annotations

from collections.abc import Sequence

from graphspec.analysis.shapes.applications._net import Args, Net, T, application


def _conv_bn_v3(net: Net, x: T, filters: int, rows: int, cols: int, padding: str = "same",
                strides: int = 1, name: str | None = None) -> T:
    """inception_v3.conv2d_bn."""
    x = net.layer("Conv2D", x, None if name is None else f"{name}_conv", filters=filters, kernel_size=(rows, cols),
                  strides=strides, padding=padding, use_bias=False)
    x = net.layer("BatchNormalization", x, None if name is None else f"{name}_bn", axis=3, scale=False)
    return net.layer("Activation", x, name, activation="relu")


def _concat(net: Net, xs: Sequence[T], name: str | None = None) -> T:
    return net.layer("Concatenate", list(xs), name, axis=3)


def _avg3(net: Net, x: T) -> T:
    return net.layer("AveragePooling2D", x, pool_size=3, strides=1, padding="same")


@application("InceptionV3")
def inception_v3(net: Net, a: Args) -> T:
    a.check_classes()
    c = _conv_bn_v3
    x = net.input(a.input(299, 75))
    x = c(net, x, 32, 3, 3, strides=2, padding="valid")
    x = c(net, x, 32, 3, 3, padding="valid")
    x = c(net, x, 64, 3, 3)
    x = net.layer("MaxPooling2D", x, pool_size=3, strides=2)
    x = c(net, x, 80, 1, 1, padding="valid")
    x = c(net, x, 192, 3, 3, padding="valid")
    x = net.layer("MaxPooling2D", x, pool_size=3, strides=2)
    for i, pool_filters in enumerate((32, 64, 64)):  # mixed 0, 1, 2: 35 x 35 x 256/288
        b1 = c(net, x, 64, 1, 1)
        b5 = c(net, c(net, x, 48, 1, 1), 64, 5, 5)
        b3 = c(net, c(net, c(net, x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        bp = c(net, _avg3(net, x), pool_filters, 1, 1)
        x = _concat(net, [b1, b5, b3, bp], f"mixed{i}")
    b3 = c(net, x, 384, 3, 3, strides=2, padding="valid")  # mixed 3: 17 x 17 x 768
    bd = c(net, c(net, c(net, x, 64, 1, 1), 96, 3, 3), 96, 3, 3, strides=2, padding="valid")
    bp = net.layer("MaxPooling2D", x, pool_size=3, strides=2)
    x = _concat(net, [b3, bd, bp], "mixed3")
    for i, f in enumerate((128, 160, 160, 192)):  # mixed 4, 5, 6, 7: 17 x 17 x 768
        b1 = c(net, x, 192, 1, 1)
        b7 = c(net, c(net, c(net, x, f, 1, 1), f, 1, 7), 192, 7, 1)
        bd = c(net, x, f, 1, 1)
        for filters, rows, cols in ((f, 7, 1), (f, 1, 7), (f, 7, 1), (192, 1, 7)):
            bd = c(net, bd, filters, rows, cols)
        bp = c(net, _avg3(net, x), 192, 1, 1)
        x = _concat(net, [b1, b7, bd, bp], f"mixed{4 + i}")
    b3 = c(net, c(net, x, 192, 1, 1), 320, 3, 3, strides=2, padding="valid")  # mixed 8: 8 x 8 x 1280
    b7 = c(net, c(net, c(net, x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    b7 = c(net, b7, 192, 3, 3, strides=2, padding="valid")
    bp = net.layer("MaxPooling2D", x, pool_size=3, strides=2)
    x = _concat(net, [b3, b7, bp], "mixed8")
    for i in range(2):  # mixed 9, 10: 8 x 8 x 2048
        b1 = c(net, x, 320, 1, 1)
        b3 = c(net, x, 384, 1, 1)
        b3 = _concat(net, [c(net, b3, 384, 1, 3), c(net, b3, 384, 3, 1)], f"mixed9_{i}")
        bd = c(net, c(net, x, 448, 1, 1), 384, 3, 3)
        bd = _concat(net, [c(net, bd, 384, 1, 3), c(net, bd, 384, 3, 1)])
        bp = c(net, _avg3(net, x), 192, 1, 1)
        x = _concat(net, [b1, b3, bd, bp], f"mixed{9 + i}")
    return a.head(net, x)


def _conv_bn_irv2(net: Net, x: T, filters: int, kernel: int | tuple[int, int], strides: int = 1,
                  padding: str = "same", activation: str | None = "relu", use_bias: bool = False,
                  name: str | None = None) -> T:
    """inception_resnet_v2.conv2d_bn."""
    x = net.layer("Conv2D", x, name, filters=filters, kernel_size=kernel, strides=strides, padding=padding,
                  use_bias=use_bias)
    if not use_bias:
        x = net.layer("BatchNormalization", x, None if name is None else f"{name}_bn", axis=3, scale=False)
    if activation is not None:
        x = net.layer("Activation", x, None if name is None else f"{name}_ac", activation=activation)
    return x


def _irv2_block(net: Net, x: T, scale: float, block_type: str, block_idx: int,
                activation: str | None = "relu") -> T:
    c = _conv_bn_irv2
    if block_type == "block35":
        branches = [c(net, x, 32, 1), c(net, c(net, x, 32, 1), 32, 3),
                    c(net, c(net, c(net, x, 32, 1), 48, 3), 64, 3)]
    elif block_type == "block17":
        branches = [c(net, x, 192, 1), c(net, c(net, c(net, x, 128, 1), 160, (1, 7)), 192, (7, 1))]
    else:
        branches = [c(net, x, 192, 1), c(net, c(net, c(net, x, 192, 1), 224, (1, 3)), 256, (3, 1))]
    name = f"{block_type}_{block_idx}"
    mixed = _concat(net, branches, f"{name}_mixed")
    up = c(net, mixed, x.shape[3] or 0, 1, activation=None, use_bias=True, name=f"{name}_conv")
    x = net.layer("CustomScaleLayer", [x, up], scale=scale)
    if activation is not None:
        x = net.layer("Activation", x, f"{name}_ac", activation=activation)
    return x


@application("InceptionResNetV2")
def inception_resnet_v2(net: Net, a: Args) -> T:
    a.check_classes()
    c = _conv_bn_irv2
    x = net.input(a.input(299, 75))
    x = c(net, x, 32, 3, strides=2, padding="valid")
    x = c(net, x, 32, 3, padding="valid")
    x = c(net, x, 64, 3)
    x = net.layer("MaxPooling2D", x, pool_size=3, strides=2)
    x = c(net, x, 80, 1, padding="valid")
    x = c(net, x, 192, 3, padding="valid")
    x = net.layer("MaxPooling2D", x, pool_size=3, strides=2)
    b0 = c(net, x, 96, 1)
    b1 = c(net, c(net, x, 48, 1), 64, 5)
    b2 = c(net, c(net, c(net, x, 64, 1), 96, 3), 96, 3)
    bp = c(net, _avg3(net, x), 64, 1)
    x = _concat(net, [b0, b1, b2, bp], "mixed_5b")
    for i in range(1, 11):
        x = _irv2_block(net, x, 0.17, "block35", i)
    b0 = c(net, x, 384, 3, strides=2, padding="valid")
    b1 = c(net, c(net, c(net, x, 256, 1), 256, 3), 384, 3, strides=2, padding="valid")
    bp = net.layer("MaxPooling2D", x, pool_size=3, strides=2, padding="valid")
    x = _concat(net, [b0, b1, bp], "mixed_6a")
    for i in range(1, 21):
        x = _irv2_block(net, x, 0.1, "block17", i)
    b0 = c(net, c(net, x, 256, 1), 384, 3, strides=2, padding="valid")
    b1 = c(net, c(net, x, 256, 1), 288, 3, strides=2, padding="valid")
    b2 = c(net, c(net, c(net, x, 256, 1), 288, 3), 320, 3, strides=2, padding="valid")
    bp = net.layer("MaxPooling2D", x, pool_size=3, strides=2, padding="valid")
    x = _concat(net, [b0, b1, b2, bp], "mixed_7a")
    for i in range(1, 10):
        x = _irv2_block(net, x, 0.2, "block8", i)
    x = _irv2_block(net, x, 1.0, "block8", 10, activation=None)
    x = c(net, x, 1536, 1, name="conv_7b")
    return a.head(net, x)


def _sep_bn(net: Net, x: T, filters: int, name: str) -> T:
    x = net.layer("SeparableConv2D", x, name, filters=filters, kernel_size=3, padding="same", use_bias=False)
    return net.layer("BatchNormalization", x, f"{name}_bn", axis=-1)


def _residual(net: Net, x: T, filters: int) -> T:
    r = net.layer("Conv2D", x, filters=filters, kernel_size=1, strides=2, padding="same", use_bias=False)
    return net.layer("BatchNormalization", r, axis=-1)


@application("Xception")
def xception(net: Net, a: Args) -> T:
    a.check_classes()
    x = net.input(a.input(299, 71))
    x = net.layer("Conv2D", x, "block1_conv1", filters=32, kernel_size=3, strides=2, use_bias=False)
    x = net.layer("BatchNormalization", x, "block1_conv1_bn", axis=-1)
    x = net.layer("Activation", x, "block1_conv1_act", activation="relu")
    x = net.layer("Conv2D", x, "block1_conv2", filters=64, kernel_size=3, use_bias=False)
    x = net.layer("BatchNormalization", x, "block1_conv2_bn", axis=-1)
    x = net.layer("Activation", x, "block1_conv2_act", activation="relu")
    for block, filters in ((2, 128), (3, 256), (4, 728)):
        residual = _residual(net, x, filters)
        if block > 2:
            x = net.layer("Activation", x, f"block{block}_sepconv1_act", activation="relu")
        x = _sep_bn(net, x, filters, f"block{block}_sepconv1")
        x = net.layer("Activation", x, f"block{block}_sepconv2_act", activation="relu")
        x = _sep_bn(net, x, filters, f"block{block}_sepconv2")
        x = net.layer("MaxPooling2D", x, f"block{block}_pool", pool_size=3, strides=2, padding="same")
        x = net.layer("Add", [x, residual])
    for i in range(8):
        residual = x
        prefix = f"block{i + 5}"
        for j in (1, 2, 3):
            x = net.layer("Activation", x, f"{prefix}_sepconv{j}_act", activation="relu")
            x = _sep_bn(net, x, 728, f"{prefix}_sepconv{j}")
        x = net.layer("Add", [x, residual])
    residual = _residual(net, x, 1024)
    x = net.layer("Activation", x, "block13_sepconv1_act", activation="relu")
    x = _sep_bn(net, x, 728, "block13_sepconv1")
    x = net.layer("Activation", x, "block13_sepconv2_act", activation="relu")
    x = _sep_bn(net, x, 1024, "block13_sepconv2")
    x = net.layer("MaxPooling2D", x, "block13_pool", pool_size=3, strides=2, padding="same")
    x = net.layer("Add", [x, residual])
    x = _sep_bn(net, x, 1536, "block14_sepconv1")
    x = net.layer("Activation", x, "block14_sepconv1_act", activation="relu")
    x = _sep_bn(net, x, 2048, "block14_sepconv2")
    x = net.layer("Activation", x, "block14_sepconv2_act", activation="relu")
    return a.head(net, x)
