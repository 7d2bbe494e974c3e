"""Every example spec builds to the model the functional API guide writes by hand.

For each spec: same parameter count, same layer types in the same order, and,
after copying the hand-written model's weights into the compiled one, the same
outputs on random inputs. Saving to .keras and loading gives the same outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec import compiler

from .conftest import PLUGIN, SPECS
from .guide import CASES

pytestmark = pytest.mark.keras


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
def test_save_and_load_round_trip(spec: str, keras_clean: Any, tmp_path: Path, monkeypatch: Any) -> None:
    keras = keras_clean
    from keras.src.saving import saving_lib  # where Keras's saver makes its working folders

    from graphspec.run.artifacts import save_model

    made: list[str] = []
    real = saving_lib.get_temp_dir
    monkeypatch.setattr(saving_lib, "get_temp_dir", lambda: made.append(real()) or made[-1])
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
        # Keras's working folders (which a kill mid-save would leave) are next to the file, not in the system's
        # temporary folder, and gone after the save: nothing written outside the target's folder.
        assert made and all(Path(m).is_relative_to(tmp_path) for m in made), made
        made.clear()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
