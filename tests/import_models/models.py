"""Small Keras models for the import tests, one per construct `graphspec import` must handle.

Written for these tests from the Keras API documentation (functional API, preprocessing and
lookup layers, `keras.ops`): they are not copies of keras.io examples. Each function builds a
fresh model; `tests/test_import_constructs.py` imports it, lints the spec, builds it back and
compares outputs with the same weights.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops


def conv_mixer(image_size: int = 32, width: int = 32, depth: int = 4, kernel: int = 5, patch: int = 2,
               classes: int = 10) -> Any:
    images = keras.Input((image_size, image_size, 3), name="images")
    x = layers.Rescaling(1 / 255)(images)
    # Patches: a strided convolution, then GELU and batch normalization.
    x = layers.Conv2D(width, patch, strides=patch)(x)
    x = layers.Activation("gelu")(x)
    x = layers.BatchNormalization()(x)
    for _ in range(depth):
        # Spatial mixing (depthwise, with a residual connection) ...
        shortcut = x
        x = layers.DepthwiseConv2D(kernel, padding="same")(x)
        x = layers.Activation("gelu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Add()([x, shortcut])
        # ... then channel mixing (pointwise).
        x = layers.Conv2D(width, 1)(x)
        x = layers.Activation("gelu")(x)
        x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    scores = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(images, scores)


def unet_like(size: int = 64, classes: int = 3, widths: tuple[int, ...] = (16, 32, 64)) -> Any:
    images = keras.Input((size, size, 3), name="images")
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same")(images)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    skip = x
    # Down: two separable convolutions, then halve the size; the shortcut is a strided 1x1 convolution.
    for width in widths[1:]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(width, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(width, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.add([x, layers.Conv2D(width, 1, strides=2, padding="same")(skip)])
        skip = x
    # Up: two transposed convolutions, then double the size; the shortcut is upsampled too.
    for width in widths[::-1]:
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(width, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(width, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        shortcut = layers.Conv2D(width, 1, padding="same")(layers.UpSampling2D(2)(skip))
        x = layers.add([x, shortcut])
        skip = x
    masks = layers.Conv2D(classes, 3, activation="softmax", padding="same")(x)
    return keras.Model(images, masks)


def unet_skips(size: int = 32, classes: int = 2, widths: tuple[int, ...] = (8, 16)) -> Any:
    """A U-Net whose skips are concatenations: they span the whole model, so it has no units to
    repeat, but a chain (convolution, batch normalization, ReLU) that repeats in every stage."""
    images = keras.Input((size, size, 3), name="images")
    x, skips = images, []
    for width in widths:
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    for width, skip in zip(widths[::-1], skips[::-1]):
        x = layers.Concatenate()([layers.UpSampling2D()(x), skip])
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
    return keras.Model(images, layers.Conv2D(classes, 1, activation="softmax")(x))


CITIES = ["lisbon", "porto", "braga", "faro"]


def structured() -> Any:
    """Dict inputs (a string, an integer and a number) through lookup layers; dict outputs."""
    inputs = {
        "city": keras.Input((1,), dtype="string", name="city"),
        "rooms": keras.Input((1,), dtype="int64", name="rooms"),
        "area": keras.Input((1,), name="area"),
    }
    city = layers.StringLookup(vocabulary=CITIES, output_mode="one_hot", name="city_onehot")(inputs["city"])
    rooms = layers.IntegerLookup(vocabulary=[1, 2, 3, 4, 5], output_mode="one_hot", name="rooms_onehot")(
        inputs["rooms"])
    area = layers.Normalization(mean=80.0, variance=400.0, name="area_scaled")(inputs["area"])
    features = layers.Concatenate(name="features")([city, rooms, area])
    hidden = layers.Dense(16, activation="relu", name="hidden")(features)
    outputs = {
        "price": layers.Dense(1, name="price")(hidden),
        "kind": layers.Dense(3, activation="softmax", name="kind")(hidden),
    }
    return keras.Model(inputs, outputs, name="houses")


def text_classifier() -> Any:
    """TextVectorization with a fixed vocabulary, then a bag of embeddings."""
    text = keras.Input((1,), dtype="string", name="text")
    tokens = layers.TextVectorization(vocabulary=["good", "bad", "film", "plot", "actors"],
                                      output_sequence_length=6, name="tokens")(text)
    x = layers.Embedding(7, 4, name="embedding")(tokens)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(text, layers.Dense(1, activation="sigmoid", name="score")(x), name="reviews")


def sliced() -> Any:
    """Python indexing of tensors: a column, a tail, a stride, a new axis, and a scalar input."""
    series = keras.Input((8, 3), name="series")
    weight = keras.Input((), name="weight")
    first = series[:, 0]
    tail = series[..., 1:]
    every_other = series[:, ::2, 1:]
    x = layers.Flatten()(layers.Concatenate(axis=1)([tail[:, :4], every_other]))
    x = layers.Concatenate()([x, first, weight[:, None]])
    return keras.Model([series, weight], layers.Dense(2, name="out")(x), name="sliced")


def patches(image_size: int = 32, patch: int = 4, width: int = 16) -> Any:
    """keras.ops.image between layers: resize, crop and patches (the start of a vision transformer)."""
    images = keras.Input((image_size, image_size, 3), name="images")
    small = ops.image.resize(images, (image_size // 2, image_size // 2))
    center = ops.image.crop_images(small, 2, 2, target_height=12, target_width=12)
    cut = ops.image.extract_patches(center, patch)
    n = (12 // patch) ** 2
    tokens = layers.Reshape((n, patch * patch * 3))(cut)
    x = layers.Dense(width)(tokens)
    x = layers.MultiHeadAttention(num_heads=2, key_dim=width // 2)(x, x)
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(images, layers.Dense(5)(x), name="patches")


def dict_submodel() -> Any:
    """A model that takes and returns dicts, called inside another model."""
    a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
    h = layers.Dense(8, activation="relu", name="joint")(layers.Concatenate(name="both")([a, b]))
    head = keras.Model({"a": a, "b": b}, {"mean": layers.Dense(1, name="mean")(h),
                                          "spread": layers.Dense(1, activation="softplus", name="spread")(h)},
                       name="head")
    x, y = keras.Input((4,), name="x"), keras.Input((2,), name="y")
    out = head({"a": x, "b": y})
    return keras.Model([x, y], [out["mean"], out["spread"]], name="uses_head")


def time_distributed_model() -> Any:
    """TimeDistributed over a functional sub-model: `layer: {model: frame_encoder}` (tests/test_import_wrapped_model.py)."""
    frame = keras.Input((8, 8, 1), name="frame")
    encoder = keras.Model(frame, layers.Dense(4)(layers.Flatten()(frame)), name="frame_encoder")
    clip = keras.Input((5, 8, 8, 1), name="clip")
    return keras.Model(clip, layers.TimeDistributed(encoder, name="per_frame")(clip), name="clips")


def rnn_cell_model() -> Any:
    """Bidirectional over an RNN with a custom cell: refused (a cell's step is Python code)."""
    from tests.import_models.broken_layers import MinimalCell

    seq = keras.Input((5, 4), name="seq")
    with keras.saving.custom_object_scope({"MinimalCell": MinimalCell}):  # Bidirectional copies the layer
        birnn = layers.Bidirectional(layers.RNN(MinimalCell(3)), name="birnn")
    return keras.Model(seq, birnn(seq), name="cells")


def custom_model(kind: str) -> Any:
    """One custom layer that breaks Keras's serialization contract (see broken_layers.py)."""
    from tests.import_models import broken_layers

    x = keras.Input((4,), name="x")
    layer = {"no_kwargs": lambda: broken_layers.NoKwargs(3),
             "forgets": lambda: broken_layers.ForgetsUnits(units=6, name="forgets"),
             "hidden": lambda: broken_layers.HiddenUnits(units=6, name="hidden"),
             "no_config": lambda: broken_layers.NoConfig(keras.initializers.Constant(2.0), name="no_config"),
             "good": lambda: broken_layers.Scaled(units=3, factor=0.5, name="good")}[kind]()
    return keras.Model(x, layers.Dense(2, name="out")(layer(x)), name=f"custom_{kind}")
