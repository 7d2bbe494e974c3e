"""The functional API guide's models, written by hand in Keras 3.

The reference every example spec is compared with (tests/test_specs.py) and
timed against (bench/bench_compile.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "specs" / "plugins" / "custom_dense.py"


# -- the guide's code, adapted to Keras 3 ---------------------------------------------
def mnist_mlp(keras: Any) -> dict[str, Any]:
    layers = keras.layers
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return {"mnist_model": keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")}


def autoencoder(keras: Any) -> dict[str, Any]:
    layers = keras.layers
    encoder_input = keras.Input(shape=(28, 28, 1), name="img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    x = layers.Reshape((4, 4, 1))(encoder_output)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
    autoencoder = keras.Model(encoder_input, decoder_output, name="autoencoder")
    return {"encoder": encoder, "autoencoder": autoencoder}


def autoencoder_nested(keras: Any) -> dict[str, Any]:
    layers = keras.layers
    encoder_input = keras.Input(shape=(28, 28, 1), name="original_img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    x = layers.Reshape((4, 4, 1))(decoder_input)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
    decoder = keras.Model(decoder_input, decoder_output, name="decoder")
    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    encoded_img = encoder(autoencoder_input)
    decoded_img = decoder(encoded_img)
    autoencoder = keras.Model(autoencoder_input, decoded_img, name="autoencoder")
    return {"encoder": encoder, "decoder": decoder, "autoencoder": autoencoder}


def ensemble(keras: Any) -> dict[str, Any]:
    layers = keras.layers

    def get_model() -> Any:
        inputs = keras.Input(shape=(128,))
        outputs = layers.Dense(1)(inputs)
        return keras.Model(inputs, outputs)

    model1, model2, model3 = get_model(), get_model(), get_model()
    inputs = keras.Input(shape=(128,))
    y1, y2, y3 = model1(inputs), model2(inputs), model3(inputs)
    outputs = layers.average([y1, y2, y3])
    return {"ensemble": keras.Model(inputs=inputs, outputs=outputs, name="ensemble")}


def ticket_router(keras: Any) -> dict[str, Any]:
    layers = keras.layers
    num_tags, num_words, num_departments = 12, 10000, 4
    title_input = keras.Input(shape=(None,), name="title", dtype="int32")
    body_input = keras.Input(shape=(None,), name="body", dtype="int32")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Embedding(num_words, 64)(title_input)
    body_features = layers.Embedding(num_words, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input], outputs=[priority_pred, department_pred],
                        name="ticket_router")
    return {"ticket_router": model}


def toy_resnet(keras: Any) -> dict[str, Any]:
    layers = keras.layers
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return {"toy_resnet": keras.Model(inputs, outputs, name="toy_resnet")}


def shared_embedding(keras: Any) -> dict[str, Any]:
    layers = keras.layers
    shared = layers.Embedding(1000, 128)
    text_input_a = keras.Input(shape=(None,), dtype="int32")
    text_input_b = keras.Input(shape=(None,), dtype="int32")
    encoded_input_a = shared(text_input_a)
    encoded_input_b = shared(text_input_b)
    model = keras.Model([text_input_a, text_input_b], [encoded_input_a, encoded_input_b], name="shared_embedding")
    return {"shared_embedding": model}


def custom_dense(keras: Any) -> dict[str, Any]:
    from graphspec.build import plugins

    custom = plugins.load_all([str(PLUGIN)])["CustomDense"]
    inputs = keras.Input((4,))
    outputs = custom(10)(inputs)
    return {"custom_dense": keras.Model(inputs, outputs, name="custom_dense")}


def vgg19_features(keras: Any) -> dict[str, Any]:
    vgg19 = keras.applications.VGG19(weights=None)
    features_list = [layer.output for layer in vgg19.layers]
    return {"vgg19_features": keras.Model(inputs=vgg19.input, outputs=features_list, name="vgg19_features")}


CASES: dict[str, tuple[Callable[[Any], dict[str, Any]], dict[str, int]]] = {
    "mnist_mlp.yaml": (mnist_mlp, {"mnist_model": 55_050}),
    "autoencoder.yaml": (autoencoder, {"encoder": 18_672, "autoencoder": 28_241}),
    "autoencoder_nested.yaml": (autoencoder_nested, {"encoder": 18_672, "decoder": 9_569, "autoencoder": 28_241}),
    "ensemble.yaml": (ensemble, {"ensemble": 387}),
    "ticket_router.yaml": (ticket_router, {"ticket_router": 1_392_097}),
    "resnet.yaml": (toy_resnet, {"toy_resnet": 223_242}),
    "shared_embedding.yaml": (shared_embedding, {"shared_embedding": 128_000}),
    "custom_layer.yaml": (custom_dense, {"custom_dense": 50}),
    "vgg19_features.yaml": (vgg19_features, {"vgg19_features": 143_667_240}),
}
