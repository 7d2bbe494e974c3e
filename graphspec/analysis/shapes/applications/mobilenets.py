"""MobileNet, MobileNetV2 and MobileNetV3 (Small and Large), ported from keras.src.applications
(mobilenet.py, mobilenet_v2.py, mobilenet_v3.py) onto :class:`Net`."""

from __future__ import annotations

from collections.abc import Callable

from graphspec.analysis.shapes.applications._net import Args, Net, T, application, correct_pad, make_divisible


def _sized_default(a: Args, sizes: tuple[int, ...]) -> int:
    """The default size MobileNet v1/v2 take from a square `input_shape` of a known size."""
    if a.input_shape is None or len(a.input_shape) < 2:
        return 224
    rows, cols = a.input_shape[0], a.input_shape[1]
    return rows if rows == cols and rows in sizes else 224


@application("MobileNet", extra=("alpha", "depth_multiplier", "dropout"))
def mobilenet(net: Net, a: Args) -> T:
    alpha, dm, dropout = a.get("alpha", 1.0), a.get("depth_multiplier", 1), a.get("dropout", 1e-3)
    a.check_classes()
    x = net.input(a.input(_sized_default(a, (128, 160, 192, 224)), 32))
    if a.weights == "imagenet":
        if dm != 1:
            raise a.error(f"with imagenet weights, `depth_multiplier` must be 1. Received: depth_multiplier={dm}")
        if alpha not in (0.25, 0.5, 0.75, 1.0):
            raise a.error(f"with imagenet weights, `alpha` can be one of 0.25, 0.50, 0.75 or 1.0 only. "
                          f"Received: alpha={alpha}")
    x = net.layer("Conv2D", x, "conv1", filters=int(32 * alpha), kernel_size=3, padding="same", use_bias=False,
                  strides=2)
    x = net.layer("BatchNormalization", x, "conv1_bn", axis=-1)
    x = net.layer("ReLU", x, "conv1_relu", max_value=6.0)
    blocks = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
              (512, 1), (1024, 2), (1024, 1))
    for block_id, (filters, stride) in enumerate(blocks, start=1):
        if stride != 1:
            x = net.layer("ZeroPadding2D", x, f"conv_pad_{block_id}", padding=((0, 1), (0, 1)))
        x = net.layer("DepthwiseConv2D", x, f"conv_dw_{block_id}", kernel_size=3,
                      padding="same" if stride == 1 else "valid", depth_multiplier=dm, strides=stride, use_bias=False)
        x = net.layer("BatchNormalization", x, f"conv_dw_{block_id}_bn", axis=-1)
        x = net.layer("ReLU", x, f"conv_dw_{block_id}_relu", max_value=6.0)
        x = net.layer("Conv2D", x, f"conv_pw_{block_id}", filters=int(filters * alpha), kernel_size=1,
                      padding="same", use_bias=False, strides=1)
        x = net.layer("BatchNormalization", x, f"conv_pw_{block_id}_bn", axis=-1)
        x = net.layer("ReLU", x, f"conv_pw_{block_id}_relu", max_value=6.0)
    if a.include_top:
        x = net.layer("GlobalAveragePooling2D", x, keepdims=True)
        x = net.layer("Dropout", x, "dropout", rate=dropout)
        x = net.layer("Conv2D", x, "conv_preds", filters=a.classes, kernel_size=1, padding="same")
        x = net.layer("Reshape", x, "reshape_2", target_shape=(a.classes,))
        a.validate_activation()
        return net.layer("Activation", x, "predictions", activation=a.classifier_activation)
    return a.pool(net, x)


def _bn3(net: Net, x: T, name: str) -> T:
    return net.layer("BatchNormalization", x, name, axis=-1, epsilon=1e-3, momentum=0.999)


@application("MobileNetV2", extra=("alpha",))
def mobilenet_v2(net: Net, a: Args) -> T:
    alpha = a.get("alpha", 1.0)
    a.check_classes()
    x = net.input(a.input(_sized_default(a, (96, 128, 160, 192, 224)), 32))
    if a.weights == "imagenet" and alpha not in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
        raise a.error("with imagenet weights, `alpha` must be one of 0.35, 0.50, 0.75, 1.0, 1.3 or 1.4 only. "
                      f"Received: alpha={alpha}")
    x = net.layer("Conv2D", x, "Conv1", filters=make_divisible(32 * alpha, 8), kernel_size=3, strides=2,
                  padding="same", use_bias=False)
    x = _bn3(net, x, "bn_Conv1")
    x = net.layer("ReLU", x, "Conv1_relu", max_value=6.0)
    blocks = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6),
              (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6),
              (320, 1, 6))
    for block_id, (filters, stride, expansion) in enumerate(blocks):
        inputs = x
        in_channels = x.shape[-1] or 0
        pointwise = make_divisible(int(filters * alpha), 8)
        prefix = f"block_{block_id}_"
        if block_id:
            x = net.layer("Conv2D", x, f"{prefix}expand", filters=expansion * in_channels, kernel_size=1,
                          padding="same", use_bias=False, activation=None)
            x = _bn3(net, x, f"{prefix}expand_BN")
            x = net.layer("ReLU", x, f"{prefix}expand_relu", max_value=6.0)
        else:
            prefix = "expanded_conv_"
        if stride == 2:
            x = net.layer("ZeroPadding2D", x, f"{prefix}pad", padding=correct_pad(x, 3))
        x = net.layer("DepthwiseConv2D", x, f"{prefix}depthwise", kernel_size=3, strides=stride, activation=None,
                      use_bias=False, padding="same" if stride == 1 else "valid")
        x = _bn3(net, x, f"{prefix}depthwise_BN")
        x = net.layer("ReLU", x, f"{prefix}depthwise_relu", max_value=6.0)
        x = net.layer("Conv2D", x, f"{prefix}project", filters=pointwise, kernel_size=1, padding="same",
                      use_bias=False, activation=None)
        x = _bn3(net, x, f"{prefix}project_BN")
        if in_channels == pointwise and stride == 1:
            x = net.layer("Add", [inputs, x], f"{prefix}add")
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = net.layer("Conv2D", x, "Conv_1", filters=last, kernel_size=1, use_bias=False)
    x = _bn3(net, x, "Conv_1_bn")
    x = net.layer("ReLU", x, "out_relu", max_value=6.0)
    return a.head(net, x, avg=None)


Activation = Callable[[Net, T], T]


def _relu(net: Net, x: T) -> T:
    return net.layer("ReLU", x)


def _hard_swish(net: Net, x: T) -> T:
    return net.layer("Activation", x, activation="hard_swish")


def _hard_sigmoid(net: Net, x: T) -> T:
    x = net.layer("ReLU", net.op("add", x, x2=3.0), max_value=6.0)
    return net.op("multiply", x, x2=1.0 / 6.0)


def _v3_block(net: Net, x: T, expansion: float, filters: int, kernel: int, stride: int, se_ratio: float | None,
              activation: Activation, block_id: int) -> T:
    shortcut = x
    prefix = "expanded_conv_"
    infilters = x.shape[-1] or 0
    if block_id:
        prefix = f"expanded_conv_{block_id}_"
        x = net.layer("Conv2D", x, f"{prefix}expand", filters=make_divisible(infilters * expansion), kernel_size=1,
                      padding="same", use_bias=False)
        x = _bn3(net, x, f"{prefix}expand_bn")
        x = activation(net, x)
    if stride == 2:
        x = net.layer("ZeroPadding2D", x, f"{prefix}depthwise_pad", padding=correct_pad(x, kernel))
    x = net.layer("DepthwiseConv2D", x, f"{prefix}depthwise", kernel_size=kernel, strides=stride,
                  padding="same" if stride == 1 else "valid", use_bias=False)
    x = _bn3(net, x, f"{prefix}depthwise_bn")
    x = activation(net, x)
    if se_ratio:
        channels = make_divisible(infilters * expansion)
        se = net.layer("GlobalAveragePooling2D", x, f"{prefix}squeeze_excite_avg_pool", keepdims=True)
        se = net.layer("Conv2D", se, f"{prefix}squeeze_excite_conv", filters=make_divisible(channels * se_ratio),
                       kernel_size=1, padding="same")
        se = net.layer("ReLU", se, f"{prefix}squeeze_excite_relu")
        se = net.layer("Conv2D", se, f"{prefix}squeeze_excite_conv_1", filters=channels, kernel_size=1,
                       padding="same")
        se = _hard_sigmoid(net, se)
        x = net.layer("Multiply", [x, se], f"{prefix}squeeze_excite_mul")
    x = net.layer("Conv2D", x, f"{prefix}project", filters=filters, kernel_size=1, padding="same", use_bias=False)
    x = _bn3(net, x, f"{prefix}project_bn")
    if stride == 1 and infilters == filters:
        x = net.layer("Add", [shortcut, x], f"{prefix}add")
    return x


# expansion, filters, kernel (None: the variant's), stride, squeeze-excite, the variant's activation
# (else ReLU)
_V3Row = tuple[float, int, int | None, int, bool, bool]
_V3_SMALL: tuple[_V3Row, ...] = (
    (1, 16, 3, 2, True, False), (72 / 16, 24, 3, 2, False, False), (88 / 24, 24, 3, 1, False, False),
    (4, 40, None, 2, True, True), (6, 40, None, 1, True, True), (6, 40, None, 1, True, True),
    (3, 48, None, 1, True, True), (3, 48, None, 1, True, True), (6, 96, None, 2, True, True),
    (6, 96, None, 1, True, True), (6, 96, None, 1, True, True))
_V3_LARGE: tuple[_V3Row, ...] = (
    (1, 16, 3, 1, False, False), (4, 24, 3, 2, False, False), (3, 24, 3, 1, False, False),
    (3, 40, None, 2, True, False), (3, 40, None, 1, True, False), (3, 40, None, 1, True, False),
    (6, 80, 3, 2, False, True), (2.5, 80, 3, 1, False, True), (2.3, 80, 3, 1, False, True),
    (2.3, 80, 3, 1, False, True), (6, 112, 3, 1, True, True), (6, 112, 3, 1, True, True),
    (6, 160, None, 2, True, True), (6, 160, None, 1, True, True), (6, 160, None, 1, True, True))


@application("MobileNetV3Small", "MobileNetV3Large",
             extra=("alpha", "minimalistic", "dropout_rate", "include_preprocessing"))
def mobilenet_v3(net: Net, a: Args) -> T:
    alpha, minimalistic = a.get("alpha", 1.0), bool(a.get("minimalistic", False))
    a.check_classes()
    shape = a.input_shape if a.input_shape is not None else (None, None, 3)
    rows, cols = shape[0], shape[1]
    if rows and cols and (rows < 32 or cols < 32):
        raise a.error(f"input size must be at least 32x32. Received: input_shape={shape}")
    if a.weights == "imagenet" and ((not minimalistic and alpha not in (0.75, 1.0)) or (minimalistic and alpha != 1.0)):
        raise a.error("with imagenet weights, `alpha` can be 0.75 or 1.0 (not minimalistic), or 1.0 (minimalistic)")
    x = net.input(shape)
    kernel, activation, se_ratio = (3, _relu, None) if minimalistic else (5, _hard_swish, 0.25)
    if a.get("include_preprocessing", True):
        x = net.layer("Rescaling", x, scale=1.0 / 127.5, offset=-1.0)
    x = net.layer("Conv2D", x, "conv", filters=16, kernel_size=3, strides=2, padding="same", use_bias=False)
    x = _bn3(net, x, "conv_bn")
    x = activation(net, x)
    small = a.app == "MobileNetV3Small"
    for block_id, (expansion, filters, k, stride, se, act) in enumerate(_V3_SMALL if small else _V3_LARGE):
        x = _v3_block(net, x, expansion, make_divisible(filters * alpha), kernel if k is None else k, stride,
                      se_ratio if se else None, activation if act else _relu, block_id)
    last_conv = make_divisible((x.shape[-1] or 0) * 6)
    last_point = 1024 if small else 1280
    if alpha > 1.0:
        last_point = make_divisible(last_point * alpha)
    x = net.layer("Conv2D", x, "conv_1", filters=last_conv, kernel_size=1, padding="same", use_bias=False)
    x = _bn3(net, x, "conv_1_bn")
    x = activation(net, x)
    if a.include_top:
        x = net.layer("GlobalAveragePooling2D", x, keepdims=True)
        x = net.layer("Conv2D", x, "conv_2", filters=last_point, kernel_size=1, padding="same", use_bias=True)
        x = activation(net, x)
        dropout = a.get("dropout_rate", 0.2)
        if dropout > 0:
            x = net.layer("Dropout", x, rate=dropout)
        x = net.layer("Conv2D", x, "logits", filters=a.classes, kernel_size=1, padding="same")
        x = net.layer("Flatten", x)
        a.validate_activation()
        return net.layer("Activation", x, "predictions", activation=a.classifier_activation)
    return a.pool(net, x, "avg_pool", "max_pool")
