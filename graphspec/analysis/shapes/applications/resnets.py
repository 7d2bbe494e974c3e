"""VGG, ResNet (v1 and v2) and DenseNet, ported from keras.src.applications (vgg16.py,
vgg19.py, resnet.py, resnet_v2.py, densenet.py) onto :class:`Net`."""

from __future__ import annotations

from graphspec.analysis.shapes.applications._net import Args, Net, T, application

_VGG_BLOCKS = {"VGG16": (2, 2, 3, 3, 3), "VGG19": (2, 2, 4, 4, 4)}


@application("VGG16", "VGG19")
def vgg(net: Net, a: Args) -> T:
    a.check_classes()
    x = net.input(a.input(224, 32))
    for block, (convs, filters) in enumerate(zip(_VGG_BLOCKS[a.app], (64, 128, 256, 512, 512)), start=1):
        for i in range(1, convs + 1):
            x = net.layer("Conv2D", x, f"block{block}_conv{i}", filters=filters, kernel_size=3,
                          activation="relu", padding="same")
        x = net.layer("MaxPooling2D", x, f"block{block}_pool", pool_size=2, strides=2)
    if a.include_top:
        x = net.layer("Flatten", x, "flatten")
        x = net.layer("Dense", x, "fc1", units=4096, activation="relu")
        x = net.layer("Dense", x, "fc2", units=4096, activation="relu")
        a.validate_activation()
        return net.layer("Dense", x, "predictions", units=a.classes, activation=a.classifier_activation)
    return a.pool(net, x)


_EPS = 1.001e-5
_RESNET_STACKS = {
    "ResNet50": (3, 4, 6, 3), "ResNet101": (3, 4, 23, 3), "ResNet152": (3, 8, 36, 3),
    "ResNet50V2": (3, 4, 6, 3), "ResNet101V2": (3, 4, 23, 3), "ResNet152V2": (3, 8, 36, 3),
}


def _bn(net: Net, x: T, name: str | None, **args: object) -> T:
    return net.layer("BatchNormalization", x, name, axis=3, epsilon=_EPS, **args)


def _block_v1(net: Net, x: T, filters: int, stride: int = 1, conv_shortcut: bool = True, name: str = "") -> T:
    if conv_shortcut:
        shortcut = net.layer("Conv2D", x, f"{name}_0_conv", filters=4 * filters, kernel_size=1, strides=stride)
        shortcut = _bn(net, shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = net.layer("Conv2D", x, f"{name}_1_conv", filters=filters, kernel_size=1, strides=stride)
    x = _bn(net, x, f"{name}_1_bn")
    x = net.layer("Activation", x, f"{name}_1_relu", activation="relu")
    x = net.layer("Conv2D", x, f"{name}_2_conv", filters=filters, kernel_size=3, padding="same")
    x = _bn(net, x, f"{name}_2_bn")
    x = net.layer("Activation", x, f"{name}_2_relu", activation="relu")
    x = net.layer("Conv2D", x, f"{name}_3_conv", filters=4 * filters, kernel_size=1)
    x = _bn(net, x, f"{name}_3_bn")
    x = net.layer("Add", [shortcut, x], f"{name}_add")
    return net.layer("Activation", x, f"{name}_out", activation="relu")


def _block_v2(net: Net, x: T, filters: int, stride: int = 1, conv_shortcut: bool = False, name: str = "") -> T:
    preact = _bn(net, x, f"{name}_preact_bn")
    preact = net.layer("Activation", preact, f"{name}_preact_relu", activation="relu")
    if conv_shortcut:
        shortcut = net.layer("Conv2D", preact, f"{name}_0_conv", filters=4 * filters, kernel_size=1, strides=stride)
    else:
        shortcut = net.layer("MaxPooling2D", x, pool_size=1, strides=stride) if stride > 1 else x
    x = net.layer("Conv2D", preact, f"{name}_1_conv", filters=filters, kernel_size=1, strides=1, use_bias=False)
    x = _bn(net, x, f"{name}_1_bn")
    x = net.layer("Activation", x, f"{name}_1_relu", activation="relu")
    x = net.layer("ZeroPadding2D", x, f"{name}_2_pad", padding=((1, 1), (1, 1)))
    x = net.layer("Conv2D", x, f"{name}_2_conv", filters=filters, kernel_size=3, strides=stride, use_bias=False)
    x = _bn(net, x, f"{name}_2_bn")
    x = net.layer("Activation", x, f"{name}_2_relu", activation="relu")
    x = net.layer("Conv2D", x, f"{name}_3_conv", filters=4 * filters, kernel_size=1)
    return net.layer("Add", [shortcut, x], f"{name}_out")


@application(*_RESNET_STACKS)
def resnet(net: Net, a: Args) -> T:
    a.check_classes()
    preact = a.app.endswith("V2")
    x = net.input(a.input(224, 32))
    x = net.layer("ZeroPadding2D", x, "conv1_pad", padding=((3, 3), (3, 3)))
    x = net.layer("Conv2D", x, "conv1_conv", filters=64, kernel_size=7, strides=2, use_bias=True)
    if not preact:
        x = _bn(net, x, "conv1_bn")
        x = net.layer("Activation", x, "conv1_relu", activation="relu")
    x = net.layer("ZeroPadding2D", x, "pool1_pad", padding=((1, 1), (1, 1)))
    x = net.layer("MaxPooling2D", x, "pool1_pool", pool_size=3, strides=2)
    for stage, (blocks, filters) in enumerate(zip(_RESNET_STACKS[a.app], (64, 128, 256, 512)), start=2):
        name = f"conv{stage}"
        if preact:
            stride = 1 if stage == 5 else 2
            x = _block_v2(net, x, filters, conv_shortcut=True, name=f"{name}_block1")
            for i in range(2, blocks):
                x = _block_v2(net, x, filters, name=f"{name}_block{i}")
            x = _block_v2(net, x, filters, stride=stride, name=f"{name}_block{blocks}")
        else:
            x = _block_v1(net, x, filters, stride=1 if stage == 2 else 2, name=f"{name}_block1")
            for i in range(2, blocks + 1):
                x = _block_v1(net, x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    if preact:
        x = _bn(net, x, "post_bn")
        x = net.layer("Activation", x, "post_relu", activation="relu")
    return a.head(net, x, pools=("avg_pool", "max_pool"))


_DENSENET_BLOCKS = {"DenseNet121": (6, 12, 24, 16), "DenseNet169": (6, 12, 32, 32), "DenseNet201": (6, 12, 48, 32)}


@application(*_DENSENET_BLOCKS)
def densenet(net: Net, a: Args) -> T:
    a.check_classes()
    x = net.input(a.input(224, 32))
    x = net.layer("ZeroPadding2D", x, padding=((3, 3), (3, 3)))
    x = net.layer("Conv2D", x, "conv1_conv", filters=64, kernel_size=7, strides=2, use_bias=False)
    x = _bn(net, x, "conv1_bn")
    x = net.layer("Activation", x, "conv1_relu", activation="relu")
    x = net.layer("ZeroPadding2D", x, padding=((1, 1), (1, 1)))
    x = net.layer("MaxPooling2D", x, "pool1", pool_size=3, strides=2)
    blocks = _DENSENET_BLOCKS[a.app]
    for stage, n in enumerate(blocks, start=2):
        for i in range(1, n + 1):
            name = f"conv{stage}_block{i}"
            x1 = _bn(net, x, f"{name}_0_bn")
            x1 = net.layer("Activation", x1, f"{name}_0_relu", activation="relu")
            x1 = net.layer("Conv2D", x1, f"{name}_1_conv", filters=128, kernel_size=1, use_bias=False)
            x1 = _bn(net, x1, f"{name}_1_bn")
            x1 = net.layer("Activation", x1, f"{name}_1_relu", activation="relu")
            x1 = net.layer("Conv2D", x1, f"{name}_2_conv", filters=32, kernel_size=3, padding="same", use_bias=False)
            x = net.layer("Concatenate", [x, x1], f"{name}_concat", axis=3)
        if stage < 5:  # transition block
            name = f"pool{stage}"
            x = _bn(net, x, f"{name}_bn")
            x = net.layer("Activation", x, f"{name}_relu", activation="relu")
            x = net.layer("Conv2D", x, f"{name}_conv", filters=int((x.shape[3] or 0) * 0.5), kernel_size=1,
                          use_bias=False)
            x = net.layer("AveragePooling2D", x, f"{name}_pool", pool_size=2, strides=2)
    x = _bn(net, x, "bn")
    x = net.layer("Activation", x, "relu", activation="relu")
    return a.head(net, x, pools=("avg_pool", "max_pool"))
