"""NASNet (Mobile and Large) and ConvNeXt (Tiny to XLarge), ported from keras.src.applications
(nasnet.py, convnext.py) onto :class:`Net`."""

from __future__ import annotations

from graphspec.analysis.shapes.applications._net import Args, Net, T, application, correct_pad


def _bn(net: Net, x: T, name: str | None) -> T:
    return net.layer("BatchNormalization", x, name, axis=-1, momentum=0.9997, epsilon=1e-3)


def _relu(net: Net, x: T, name: str | None = None) -> T:
    return net.layer("Activation", x, name, activation="relu")


def _conv1(net: Net, x: T, filters: int, name: str | None) -> T:
    return net.layer("Conv2D", x, name, filters=filters, kernel_size=1, strides=1, padding="same", use_bias=False)


def _sep_block(net: Net, ip: T, filters: int, kernel: int = 3, strides: int = 1, block_id: str = "") -> T:
    x = _relu(net, ip)
    if strides == 2:
        x = net.layer("ZeroPadding2D", x, f"separable_conv_1_pad_{block_id}", padding=correct_pad(x, kernel))
    x = net.layer("SeparableConv2D", x, f"separable_conv_1_{block_id}", filters=filters, kernel_size=kernel,
                  strides=strides, padding="valid" if strides == 2 else "same", use_bias=False)
    x = _bn(net, x, f"separable_conv_1_bn_{block_id}")
    x = _relu(net, x)
    x = net.layer("SeparableConv2D", x, f"separable_conv_2_{block_id}", filters=filters, kernel_size=kernel,
                  padding="same", use_bias=False)
    return _bn(net, x, f"separable_conv_2_bn_{block_id}")


def _adjust(net: Net, p: T | None, ip: T, filters: int, block_id: str) -> T:
    if p is None:
        return ip
    if p.shape[-2] != ip.shape[-2]:
        p = _relu(net, p, f"adjust_relu_1_{block_id}")
        p1 = net.layer("AveragePooling2D", p, f"adjust_avg_pool_1_{block_id}", pool_size=1, strides=2,
                       padding="valid")
        p1 = _conv1(net, p1, filters // 2, f"adjust_conv_1_{block_id}")
        p2 = net.layer("ZeroPadding2D", p, padding=((0, 1), (0, 1)))
        p2 = net.layer("Cropping2D", p2, cropping=((1, 0), (1, 0)))
        p2 = net.layer("AveragePooling2D", p2, f"adjust_avg_pool_2_{block_id}", pool_size=1, strides=2,
                       padding="valid")
        p2 = _conv1(net, p2, filters // 2, f"adjust_conv_2_{block_id}")
        p = net.layer("Concatenate", [p1, p2], axis=-1)
        return _bn(net, p, f"adjust_bn_{block_id}")
    if p.shape[-1] != filters:
        p = _relu(net, p)
        p = _conv1(net, p, filters, f"adjust_conv_projection_{block_id}")
        return _bn(net, p, f"adjust_bn_{block_id}")
    return p


def _avg3(net: Net, x: T, name: str) -> T:
    return net.layer("AveragePooling2D", x, name, pool_size=3, strides=1, padding="same")


def _normal_cell(net: Net, ip: T, p: T | None, filters: int, block_id: str) -> tuple[T, T]:
    q = _adjust(net, p, ip, filters, block_id)
    h = _bn(net, _conv1(net, _relu(net, ip), filters, f"normal_conv_1_{block_id}"), f"normal_bn_1_{block_id}")
    x1_1 = _sep_block(net, h, filters, 5, block_id=f"normal_left1_{block_id}")
    x1_2 = _sep_block(net, q, filters, block_id=f"normal_right1_{block_id}")
    x1 = net.layer("Add", [x1_1, x1_2], f"normal_add_1_{block_id}")
    x2_1 = _sep_block(net, q, filters, 5, block_id=f"normal_left2_{block_id}")
    x2_2 = _sep_block(net, q, filters, 3, block_id=f"normal_right2_{block_id}")
    x2 = net.layer("Add", [x2_1, x2_2], f"normal_add_2_{block_id}")
    x3 = net.layer("Add", [_avg3(net, h, f"normal_left3_{block_id}"), q], f"normal_add_3_{block_id}")
    x4 = net.layer("Add", [_avg3(net, q, f"normal_left4_{block_id}"), _avg3(net, q, f"normal_right4_{block_id}")],
                   f"normal_add_4_{block_id}")
    x5 = _sep_block(net, h, filters, block_id=f"normal_left5_{block_id}")
    x5 = net.layer("Add", [x5, h], f"normal_add_5_{block_id}")
    x = net.layer("Concatenate", [q, x1, x2, x3, x4, x5], f"normal_concat_{block_id}", axis=-1)
    return x, ip


def _reduction_cell(net: Net, ip: T, p: T | None, filters: int, block_id: str) -> tuple[T, T]:
    q = _adjust(net, p, ip, filters, block_id)
    h = _bn(net, _conv1(net, _relu(net, ip), filters, f"reduction_conv_1_{block_id}"), f"reduction_bn_1_{block_id}")
    h3 = net.layer("ZeroPadding2D", h, f"reduction_pad_1_{block_id}", padding=correct_pad(h, 3))
    x1_1 = _sep_block(net, h, filters, 5, 2, f"reduction_left1_{block_id}")
    x1_2 = _sep_block(net, q, filters, 7, 2, f"reduction_right1_{block_id}")
    x1 = net.layer("Add", [x1_1, x1_2], f"reduction_add_1_{block_id}")
    x2_1 = net.layer("MaxPooling2D", h3, f"reduction_left2_{block_id}", pool_size=3, strides=2, padding="valid")
    x2_2 = _sep_block(net, q, filters, 7, 2, f"reduction_right2_{block_id}")
    x2 = net.layer("Add", [x2_1, x2_2], f"reduction_add_2_{block_id}")
    x3_1 = net.layer("AveragePooling2D", h3, f"reduction_left3_{block_id}", pool_size=3, strides=2, padding="valid")
    x3_2 = _sep_block(net, q, filters, 5, 2, f"reduction_right3_{block_id}")
    x3 = net.layer("Add", [x3_1, x3_2], f"reduction_add3_{block_id}")
    x4 = net.layer("Add", [x2, _avg3(net, x1, f"reduction_left4_{block_id}")])
    x5_1 = _sep_block(net, x1, filters, 3, block_id=f"reduction_left4_{block_id}")
    x5_2 = net.layer("MaxPooling2D", h3, f"reduction_right5_{block_id}", pool_size=3, strides=2, padding="valid")
    x5 = net.layer("Add", [x5_1, x5_2], f"reduction_add4_{block_id}")
    x = net.layer("Concatenate", [x2, x3, x4, x5], f"reduction_concat_{block_id}", axis=-1)
    return x, ip


# penultimate filters, blocks, stem filters, skip reduction, default size
_NASNET = {"NASNetMobile": (1056, 4, 32, False, 224), "NASNetLarge": (4032, 6, 96, True, 331)}


@application(*_NASNET)
def nasnet(net: Net, a: Args) -> T:
    penultimate, num_blocks, stem_filters, skip_reduction, default_size = _NASNET[a.app]
    mult = 2
    if a.app == "NASNetMobile" and not a.include_top and a.input_shape is None:
        a = Args(**{**a.__dict__, "input_shape": (224, 224, 3)})
    a.check_classes()
    if a.input_shape is not None and None in a.input_shape and a.weights == "imagenet":
        raise a.error("with imagenet weights, the input shape must be static (no None entries). "
                      f"Received: input_shape={a.input_shape}")
    x = net.input(a.input(default_size, 32))
    filters = penultimate // 24
    x = net.layer("Conv2D", x, "stem_conv1", filters=stem_filters, kernel_size=3, strides=2, padding="valid",
                  use_bias=False)
    x = _bn(net, x, "stem_bn1")
    p: T | None = None
    x, p = _reduction_cell(net, x, p, filters // mult**2, "stem_1")
    x, p = _reduction_cell(net, x, p, filters // mult, "stem_2")
    for stage in range(3):
        if stage:
            x, p0 = _reduction_cell(net, x, p, filters * mult**stage, f"reduce_{stage * num_blocks}")
            p = p if skip_reduction else p0
        for i in range(num_blocks):
            x, p = _normal_cell(net, x, p, filters * mult**stage, f"{stage * num_blocks + i + bool(stage)}")
    x = _relu(net, x)
    return a.head(net, x, avg=None)


_CONVNEXT = {  # depths, projection dims, the default name its layers are prefixed with
    "ConvNeXtTiny": ((3, 3, 9, 3), (96, 192, 384, 768), "convnext_tiny"),
    "ConvNeXtSmall": ((3, 3, 27, 3), (96, 192, 384, 768), "convnext_small"),
    "ConvNeXtBase": ((3, 3, 27, 3), (128, 256, 512, 1024), "convnext_base"),
    "ConvNeXtLarge": ((3, 3, 27, 3), (192, 384, 768, 1536), "convnext_large"),
    "ConvNeXtXLarge": ((3, 3, 27, 3), (256, 512, 1024, 2048), "convnext_xlarge"),
}


@application(*_CONVNEXT, extra=("include_preprocessing",))
def convnext(net: Net, a: Args) -> T:
    depths, dims, name = _CONVNEXT[a.app]
    a.check_classes()
    shape = a.input(224, 32)
    x = net.input(shape)
    if a.get("include_preprocessing", True) and shape[2] == 3:
        x = net.layer("Normalization", x, f"{name}_prestem_normalization",
                      mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
                      variance=[(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2])
    for i, (depth, dim) in enumerate(zip(depths, dims)):
        if i == 0:
            x = net.sequential(f"{name}_stem", [
                ("Conv2D", {"filters": dim, "kernel_size": 4, "strides": 4, "name": f"{name}_stem_conv"}),
                ("LayerNormalization", {"epsilon": 1e-6, "name": f"{name}_stem_layernorm"}),
            ], x)
        else:
            x = net.sequential(f"{name}_downsampling_block_{i - 1}", [
                ("LayerNormalization", {"epsilon": 1e-6, "name": f"{name}_downsampling_layernorm_{i - 1}"}),
                ("Conv2D", {"filters": dim, "kernel_size": 2, "strides": 2,
                            "name": f"{name}_downsampling_conv_{i - 1}"}),
            ], x)
        for j in range(depth):
            block = f"{name}_stage_{i}_block_{j}"
            y = net.layer("Conv2D", x, f"{block}_depthwise_conv", filters=dim, kernel_size=7, padding="same",
                          groups=dim)
            y = net.layer("LayerNormalization", y, f"{block}_layernorm", epsilon=1e-6)
            y = net.layer("Dense", y, f"{block}_pointwise_conv_1", units=4 * dim)
            y = net.layer("Activation", y, f"{block}_gelu", activation="gelu")
            y = net.layer("Dense", y, f"{block}_pointwise_conv_2", units=dim)
            y = net.layer("LayerScale", y, f"{block}_layer_scale", init_values=1e-6, projection_dim=dim)
            y = net.layer("Activation", y, f"{block}_identity", activation="linear")
            x = net.op("add", x, y)
    if a.include_top:
        a.validate_activation()
        x = net.layer("GlobalAveragePooling2D", x, f"{name}_head_gap")
        x = net.layer("LayerNormalization", x, f"{name}_head_layernorm", epsilon=1e-6)
        return net.layer("Dense", x, f"{name}_head_dense", units=a.classes, activation=a.classifier_activation)
    x = a.pool(net, x)
    return net.layer("LayerNormalization", x, epsilon=1e-6)
