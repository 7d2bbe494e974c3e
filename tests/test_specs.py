"""Every example spec builds to the model the functional API guide writes by hand.

For each spec: same parameter count, same layer types in the same order, and,
after copying the hand-written model's weights into the compiled one, the same
outputs on random inputs. Saving to .keras and loading gives the same outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec import compiler

from .conftest import PLUGIN, SPECS

pytestmark = pytest.mark.keras


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
    from graphspec import plugins

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


def build_spec(name: str) -> dict[str, Any]:
    checked = compiler.check(SPECS / name, plugins=[str(PLUGIN)])
    assert checked.ok, [str(d) for d in checked.diagnostics.errors]
    return compiler.build(checked)


def random_inputs(model: Any, rng: np.random.Generator, batch: int = 2) -> list[np.ndarray]:
    out = []
    for t in model.inputs:
        shape = [batch] + [d if d is not None else 7 for d in t.shape[1:]]
        if "int" in str(t.dtype):
            out.append(rng.integers(0, 1000, size=shape).astype(str(t.dtype)))
        else:
            out.append(rng.standard_normal(shape).astype("float32"))
    return out


def layer_types(model: Any) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def as_list(y: Any) -> list[np.ndarray]:
    return [np.asarray(v) for v in (y if isinstance(y, (list, tuple)) else [y])]


def test_every_spec_has_a_case() -> None:
    names = {p.name for p in SPECS.glob("*.yaml")}
    guide = set(CASES)
    assert guide <= names, f"missing guide specs: {guide - names}"


@pytest.mark.parametrize("spec", sorted(CASES))
def test_spec_builds_the_guides_model(spec: str, keras_clean: Any) -> None:
    keras = keras_clean
    hand_fn, expected = CASES[spec]
    compiled = build_spec(spec)
    hand = hand_fn(keras)
    assert sorted(compiled) == sorted(expected)
    rng = np.random.default_rng(0)
    for name, params in expected.items():
        ours, theirs = compiled[name], hand[name]
        assert ours.count_params() == theirs.count_params() == params
        assert layer_types(ours) == layer_types(theirs)
        for a, b in zip(theirs.layers, ours.layers):
            b.set_weights(a.get_weights())
        x = random_inputs(theirs, rng, batch=1 if spec.startswith("vgg19") else 2)
        x = x[0] if len(x) == 1 else x
        want, got = as_list(theirs(x)), as_list(ours(x))
        assert len(want) == len(got)
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_shared_layers_share_weights(keras_clean: Any) -> None:
    models = build_spec("autoencoder.yaml")
    enc, auto = models["encoder"], models["autoencoder"]
    shared = {id(layer) for layer in enc.layers} & {id(layer) for layer in auto.layers}
    assert len(shared) == len(enc.layers)  # the encoder is part of the autoencoder
    emb = build_spec("shared_embedding.yaml")["shared_embedding"]
    assert [type(layer).__name__ for layer in emb.layers].count("Embedding") == 1


def test_nested_models_are_the_same_objects(keras_clean: Any) -> None:
    models = build_spec("autoencoder_nested.yaml")
    inner = [layer for layer in models["autoencoder"].layers if type(layer).__name__ == "Functional"]
    assert inner[0] is models["encoder"] and inner[1] is models["decoder"]


def test_ensemble_members_are_independent(keras_clean: Any) -> None:
    model = build_spec("ensemble.yaml")["ensemble"]
    members = [layer for layer in model.layers if type(layer).__name__ == "Functional"]
    assert len(members) == 3 and len({id(m) for m in members}) == 3
    assert len({id(m.layers[1].kernel) for m in members}) == 3


def test_ticket_router_compile_settings(keras_clean: Any) -> None:
    model = build_spec("ticket_router.yaml")["ticket_router"]
    assert model.output_names == ["priority", "department"]
    assert set(model.loss) == {"priority", "department"}
    assert type(model.loss["priority"]).__name__ == "BinaryCrossentropy"
    assert model.loss["department"].get_config()["from_logits"] is True
    assert model.get_compile_config()["loss_weights"] == {"priority": 1.0, "department": 0.2}
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)


@pytest.mark.parametrize("spec", sorted(set(CASES) - {"vgg19_features.yaml"}))
def test_save_and_load_round_trip(spec: str, keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    from graphspec.artifacts import save_model

    models = build_spec(spec)
    rng = np.random.default_rng(1)
    for name, model in models.items():
        path = tmp_path / f"{name}.keras"
        save_model(model, path)
        loaded = keras.models.load_model(path)
        x = random_inputs(model, rng)
        x = x[0] if len(x) == 1 else x
        for w, g in zip(as_list(model(x)), as_list(loaded(x))):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
        if getattr(model, "optimizer", None) is not None and getattr(model, "compiled", False):
            assert type(loaded.optimizer).__name__ == type(model.optimizer).__name__
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
