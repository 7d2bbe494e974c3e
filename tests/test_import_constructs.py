"""`graphspec import` on the constructs real Keras code uses (issue 12).

Every model comes from `tests/import_models/models.py` (written for these tests from the Keras
API documentation). Each one that the format can express must import, lint with Keras's exact
parameter count (static inference, no TensorFlow), build back, and give the same outputs for
the same weights; each one it cannot express is refused with exit code 1 and a GS70x diagnostic
that names the cause.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec import compiler, importer
from graphspec.analysis import shapes
from graphspec.errors import SpecError

from .conftest import ROOT

pytestmark = pytest.mark.keras

MODELS = ROOT / "tests" / "import_models" / "models.py"
BROKEN = str(ROOT / "tests" / "import_models" / "broken_layers.py")


def _models() -> Any:
    from tests.import_models import models

    return models


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def round_trip(model: Any, inputs: Any, tmp_path: Path, *, source: str, plugins: list[str] | None = None,
               static: bool = True) -> importer.Imported:
    """Import, lint, build back and compare; returns the import."""
    imp = importer.import_model(model, source=source, plugins=plugins)
    assert imp.verified
    path = tmp_path / f"{imp.name}.yaml"
    path.write_text(imp.text, encoding="utf-8")
    checked = compiler.check(path, plugins=imp.plugins)
    assert checked.ok, [f"{d.code} {d.message}" for d in checked.diagnostics.errors]
    assert checked.analysis is not None
    info = checked.analysis.models[imp.name]
    if static:
        assert [d.code for d in checked.diagnostics] == []
        assert info.params == model.count_params()
        assert info.trainable == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    rebuilt = compiler.build(checked, compile=False)[imp.name]
    assert importer.compare(model, rebuilt) == []
    rebuilt.set_weights(model.get_weights())
    want, got = model(inputs, training=False), rebuilt(inputs, training=False)
    assert type(want) is type(got)
    if isinstance(want, dict):
        assert sorted(want) == sorted(got)
    for w, g in zip(_as_list(want), _as_list(got), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)
    return imp


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


# -- readable output: blocks for repeated structure ------------------------------------------------
def test_conv_mixer_is_one_block_repeated(keras_clean: Any, tmp_path: Path) -> None:
    models = _models()
    model = models.conv_mixer()
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:conv_mixer")
    assert imp.name == "conv_mixer"  # named after its source, not `functional`
    assert imp.blocks == 1
    assert "{block: depthwise_conv2d_block, repeat: 4}" in imp.text
    assert 'scale: "${1/255}"' in imp.text  # the exact ratio, not 0.00392156862745098
    flat = importer.import_model(model, source=f"{MODELS}:conv_mixer", blocks=False, verify=False)
    python = _lines(inspect.getsource(models.conv_mixer))
    # The spec is no longer than the Python that builds the model (measured: 21 lines against 22),
    # and far shorter than one node per layer call.
    assert _lines(imp.text) <= python
    assert _lines(imp.text) < _lines(flat.text) * 0.6


def test_unet_like_uses_each_for_per_stage_widths(keras_clean: Any, tmp_path: Path) -> None:
    models = _models()
    model = models.unet_like()
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype("float32")
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:unet_like")
    assert imp.blocks == 3
    assert "repeat: 2, each: {filters: [32, 64]}}" in imp.text
    assert "repeat: 3, each: {filters: [64, 32, 16]}}" in imp.text
    assert "max_pooling2d: {type: MaxPooling2D, pool_size: 3, strides: 2, padding: same}" in imp.text
    # The (activation, convolution, batch normalization) pair of both loops is one inner block, repeated
    # twice in each; its convolution's type is a parameter (SeparableConv2D down, Conv2DTranspose up).
    assert "params: {conv2d: SeparableConv2D, filters: null}" in imp.text
    assert "conv2d: {type: $conv2d, filters: $filters, kernel_size: 3, padding: same}" in imp.text
    assert "{block: activation_block, repeat: 2, conv2d: Conv2DTranspose, filters: $filters}" in imp.text
    python = _lines(inspect.getsource(models.unet_like))
    assert _lines(imp.text) <= python + 1  # measured: 32 lines against 31


def test_unet_skips_repeats_chains_between_its_skips(keras_clean: Any, tmp_path: Path) -> None:
    models = _models()
    model = models.unet_skips()
    x = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype("float32")
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:unet_skips")
    # The concatenated skips keep the model from being cut into units, but each stage's chain of two
    # (convolution, batch normalization, ReLU) is one instance; the middle ones are named after their
    # output, so the concatenations read as in Keras.
    assert imp.blocks == 1
    assert "  activation_3: {block: conv2d_block, repeat: 2}\n" in imp.text
    assert "  concatenate: {type: Concatenate, inputs: [up_sampling2d, activation_3]}\n" in imp.text
    assert imp.renames["conv2d_2"] == "activation_3_1_conv2d" and "activation_3" not in imp.renames
    flat = importer.import_model(model, source=f"{MODELS}:unet_skips", blocks=False, verify=False)
    assert _lines(imp.text) < _lines(flat.text) * 0.7  # measured: 22 lines against 35 (and 19 of Python)


def test_unet_at_the_size_of_the_keras_io_example_is_shorter_than_its_python(keras_clean: Any) -> None:
    # Issue 12 measured the keras.io U-Net (entry 32 filters, down 64/128/256, up 256/128/64/32, 160x160,
    # 3 classes: 2,058,979 parameters) at 34 lines of Python. unet_like builds that architecture.
    model = _models().unet_like(size=160, classes=3, widths=(32, 64, 128, 256))
    assert model.count_params() == 2_058_979
    imp = importer.import_model(model, source=f"{MODELS}:unet_like")
    assert imp.verified
    assert _lines(imp.text) <= 34  # measured: 32


def test_flat_import_keeps_keras_names(keras_clean: Any) -> None:
    model = _models().conv_mixer()
    imp = importer.import_model(model, source=f"{MODELS}:conv_mixer", blocks=False)
    assert imp.blocks == 0 and "blocks:" not in imp.text
    assert "  depthwise_conv2d_3: {type: DepthwiseConv2D, kernel_size: 5, padding: same}\n" in imp.text


# -- lookup layers, dict inputs and outputs ---------------------------------------------------------------
def test_structured_data_with_dict_inputs_and_outputs(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    model = _models().structured()
    import tensorflow as tf  # string tensors

    x = {"city": tf.constant([["porto"], ["faro"], ["paris"]]), "rooms": tf.constant([[1], [3], [9]], "int64"),
         "area": tf.constant([[50.0], [80.0], [120.0]])}
    lookups_modelled = shapes.has_rule("StringLookup") and shapes.has_rule("IntegerLookup")
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:structured", static=lookups_modelled)
    text = imp.text
    assert "vocabulary_size" not in text  # derived by Keras: not an argument
    assert "  city_onehot: {type: StringLookup, vocabulary: [lisbon, porto, braga, faro], output_mode: one_hot, " \
           "inputs: city}\n" in text
    assert "inputs_as: dict, outputs_as: dict" in text
    if not lookups_modelled:
        # Until the lookup layers have static rules, lint says exactly which nodes it cannot follow.
        checked = compiler.check(tmp_path / "houses.yaml")
        assert sorted(d.message.split("`")[1] for d in checked.diagnostics) == ["city_onehot", "rooms_onehot"]
    # The rebuilt model takes and returns the same dicts, so `fit` on dict data works as on the original.
    rebuilt = imp.rebuilt
    assert sorted(rebuilt.input) == ["area", "city", "rooms"] and sorted(rebuilt.output) == ["kind", "price"]
    rebuilt.compile(optimizer="sgd", loss={"price": "mse", "kind": "sparse_categorical_crossentropy"})
    history = rebuilt.fit(x, {"price": np.ones((3, 1)), "kind": np.array([0, 1, 2])}, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "price_loss", "kind_loss"}
    del keras


def test_adapted_lookup_is_refused_with_the_cause(keras_clean: Any) -> None:
    keras = keras_clean
    lookup = keras.layers.StringLookup(name="learned")
    lookup.adapt(np.array([["a"], ["b"], ["a"]]))
    words = keras.Input((1,), dtype="string", name="words")
    model = keras.Model(words, lookup(words))
    with pytest.raises(SpecError) as exc:
        importer.import_model(model, source="adapted")
    (d,) = exc.value.diagnostics
    assert d.code == "GS701" and "learned its vocabulary with adapt()" in d.message
    assert "get_vocabulary()" in (d.hint or "")


def test_text_vectorization_with_a_vocabulary(keras_clean: Any, tmp_path: Path) -> None:
    model = _models().text_classifier()
    import tensorflow as tf  # string tensors

    x = tf.constant([["good film"], ["bad plot, bad actors"]])
    modelled = shapes.has_rule("TextVectorization")
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:text_classifier", static=modelled)
    assert "{type: TextVectorization, output_sequence_length: 6, vocabulary: [good, bad, film, plot, actors]}" \
        in imp.text


def test_model_that_takes_a_dict_called_inside_another(keras_clean: Any, tmp_path: Path) -> None:
    model = _models().dict_submodel()
    x = [np.ones((2, 4), "float32"), np.full((2, 2), 0.5, "float32")]
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:dict_submodel")
    assert "  head: {model: head, inputs: {a: x, b: \"y\"}}\n" in imp.text
    assert "  uses_head: {inputs: [x, \"y\"], outputs: head}\n" in imp.text  # the sub-model's dict output


# -- slicing, keras.ops.image ----------------------------------------------------------------------------
def test_slicing_becomes_get_item_nodes(keras_clean: Any, tmp_path: Path) -> None:
    model = _models().sliced()
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(3, 8, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32")]
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:sliced")
    for key in ('"[:, 0]"', '"[..., 1:]"', '"[:, ::2, 1:]"', '"[:, None]"', '"[:, :4]"'):
        assert f"{{op: get_item, key: {key}" in imp.text
    assert "  weight: []\n" in imp.text  # a scalar input, sliced with a new axis


def test_image_ops_between_layers(keras_clean: Any, tmp_path: Path) -> None:
    model = _models().patches()
    x = np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype("float32")
    imp = round_trip(model, x, tmp_path, source=f"{MODELS}:patches")
    assert "  resize: {op: image.resize, size: [16, 16]}\n" in imp.text
    assert "  extract_patches: {op: image.extract_patches, size: 4}\n" in imp.text  # defaults left out
    assert "{op: image.crop_images, top_cropping: 2, left_cropping: 2, target_height: 12, target_width: 12}" \
        in imp.text


# -- refusals name the cause ----------------------------------------------------------------------------
def _refusal(source: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    out = tmp_path / "out.yaml"
    result = CliRunner().invoke(app, ["import", source, "-o", str(out), *extra])
    assert not out.exists()
    return result.exit_code, result.output


@pytest.mark.parametrize(("function", "code", "words"), [
    ("rnn_cell_model", "GS701", ["`birnn`", "an RNN over a cell (MinimalCell)"]),
])
def test_cells_in_wrappers_are_refused(keras_clean: Any, tmp_path: Path, function: str,
                                                         code: str, words: list[str]) -> None:
    exit_code, output = _refusal(f"{MODELS}:{function}", tmp_path, "--plugin", BROKEN)
    assert exit_code == 1, output
    assert f"error[{code}]" in output and "Traceback" not in output
    line = inspect.getsourcelines(getattr(_models(), function))[1]
    assert f"{MODELS}:{line}:1: error[{code}]" in output  # located at the function's `def`
    text = " ".join(output.split())
    for w in words:
        assert w in text


@pytest.mark.parametrize(("kind", "words"), [
    ("no_kwargs", ["NoKwargs.__init__ takes no `**kwargs`", "rejects `name`", "super().__init__(**kwargs)"]),
    ("forgets", ["ForgetsUnits.get_config() does not return `units`", "units=6", "default 4",
                 '"units": self.units']),
    ("hidden", ["HiddenUnits recreated from its config has weights of shapes [(4, 4)], the original [(4, 6)]",
                "does not return `units`"]),
    ("no_config", ["get_config() fails", "NotImplementedError", "give NoConfig a get_config()"]),
])
def test_custom_layers_that_break_the_contract_are_blamed(keras_clean: Any, tmp_path: Path, kind: str,
                                                          words: list[str]) -> None:
    exit_code, output = _refusal(f"{MODELS}:custom_model", tmp_path, "--plugin", BROKEN, "--arg", f"kind={kind}")
    assert exit_code == 1, output
    text = " ".join(output.split())
    assert "error[GS701]" in text and "graphspec bug" not in text and "Traceback" not in text
    for w in words:
        assert w in text, text


def test_custom_layer_that_keeps_the_contract_imports(keras_clean: Any, tmp_path: Path) -> None:
    model = _models().custom_model("good")
    imp = round_trip(model, np.ones((2, 4), "float32"), tmp_path, source=f"{MODELS}:custom_model",
                     plugins=[BROKEN], static=False)  # a plugin layer has no static rule
    assert "  good: {type: Scaled, units: 3, factor: 0.5}\n" in imp.text


# -- ops with no tensor input (the format; Keras evaluates them when it builds the model) ------------------
POSITIONS = """
graphspec: 1
name: positions
inputs: {tokens: [16, 8]}
nodes:
  position: {op: arange, start: 0, stop: 16, dtype: float32}
  column: {op: get_item, key: "[:, None]"}
  scaled: {op: multiply, x2: 0.0625}
  added: {op: add, inputs: [tokens, scaled]}
  pooled: {type: GlobalAveragePooling1D}
  out: {type: Dense, units: 3}
"""


def test_op_with_no_tensor_input(keras_clean: Any, tmp_path: Path) -> None:
    path = tmp_path / "positions.yaml"
    path.write_text(POSITIONS, encoding="utf-8")
    checked = compiler.check(path)
    assert checked.ok and [d.code for d in checked.diagnostics] == []
    assert checked.analysis is not None and checked.analysis.models["positions"].params == 27
    model = compiler.build(checked, compile=False)["positions"]
    x = np.zeros((2, 16, 8), "float32")
    x[:, :, 0] = 1.0
    # `out` sees the mean over positions of tokens + position/16 (a column, broadcast over 8 features).
    pooled = (x + (np.arange(16, dtype="float32") / 16)[:, None]).mean(axis=1)
    kernel, bias = model.get_layer("out").get_weights()
    np.testing.assert_allclose(model(x), pooled @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_layer_with_weights_on_constants_is_an_error(keras_clean: Any, tmp_path: Path) -> None:
    text = POSITIONS.replace("  column: {op: get_item, key: \"[:, None]\"}\n",
                             "  column: {type: Dense, units: 8, inputs: position}\n")
    text = text.replace("position: {op: arange, start: 0, stop: 16, dtype: float32}",
                        "position: {op: ones, shape: [16, 1]}")
    path = tmp_path / "frozen.yaml"
    path.write_text(text, encoding="utf-8")
    checked = compiler.check(path)
    assert [d.code for d in checked.diagnostics] == ["GS302"]  # lint cannot follow it ...
    with pytest.raises(SpecError) as exc:
        compiler.build(checked, compile=False)
    (d,) = exc.value.diagnostics  # ... and build refuses it, located
    assert d.code == "GS301" and "applied only to constants" in d.message and d.location.line == 7


# -- a model that overrides train_step: import its functional parts (docs/import.md, "The VAE") ----------
def test_vae_split_into_functional_parts(keras_clean: Any, tmp_path: Path) -> None:
    from tests.import_models import vae

    plugin = str(ROOT / "tests" / "import_models" / "vae.py")
    whole = vae.VAE(vae.encoder(), vae.decoder(), name="vae")
    whole(np.zeros((1, 28, 28, 1), "float32"))
    with pytest.raises(SpecError) as exc:
        importer.import_model(whole, source="vae")
    assert "subclassed model (VAE)" in exc.value.diagnostics[0].message
    imp = importer.import_source(f"{plugin}:forward", plugins=[plugin])
    text = imp.text
    assert "  z: {type: Sampling, seed: 1, inputs: [z_mean, z_log_var]}\n" in text
    assert "  encoder: {model: encoder, inputs: image}\n" in text
    assert "  decoder: {model: decoder, inputs: encoder.2}\n" in text
    assert "  vae: {inputs: image, outputs: [decoder, encoder.0, encoder.1]}\n" in text
    path = tmp_path / "vae.yaml"
    path.write_text(text, encoding="utf-8")
    checked = compiler.check(path, plugins=[plugin])
    assert checked.ok, [d.message for d in checked.diagnostics.errors]
    built = compiler.build(checked, models=["encoder", "decoder", "vae"], compile=False)
    assert built["vae"].count_params() == whole.count_params()
    # The training step stays Python: the VAE class, over the parts the spec built.
    trained = vae.VAE(built["encoder"], built["decoder"])
    trained.compile(optimizer="adam")
    images = np.random.default_rng(4).uniform(size=(16, 28, 28, 1)).astype("float32")
    history = trained.fit(images, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
