"""`graphspec import`: functional Keras models -> specs that build back to the same model.

The fast tests use small hand-made models (shared layers, nested models,
keras.ops calls between layers, names that are not spec names) and the three
kinds of source. The round-trip sweep over keras.applications is marked
`slow` (`make test-fast` skips it): import -> check -> build ->
same parameter count, same layer types in the same order, same graph, and the
same outputs once the weights are copied across.

GRAPHSPEC_IMPORT_ALL=1 adds every other application (at 75x75 inputs; about 7 minutes on two cores).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec.analysis.summary import static_summary
from graphspec.render.text import model_rows
from graphspec import compiler
from graphspec import importer
from graphspec.errors import SpecError, UsageError

from .backend_twin import zero_initializers

pytestmark = pytest.mark.keras

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "specs" / "plugins" / "custom_dense.py"


def build_back(text: str, tmp_path: Path, plugins: list[str] | None = None, name: str = "spec.yaml") -> Any:
    """Write, check (strictly) and build a spec text: its one public model."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    checked = compiler.check(path, plugins=plugins or [])
    assert checked.ok, [f"{d.code} {d.message}" for d in checked.diagnostics.errors]
    models = compiler.build(checked, compile=False)
    assert len(models) == 1
    return next(iter(models.values()))


def assert_same(original: Any, rebuilt: Any, inputs: Any, *, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert rebuilt.count_params() == original.count_params()
    assert importer.layer_types(rebuilt) == importer.layer_types(original)
    assert importer.compare(original, rebuilt) == []
    rebuilt.set_weights(original.get_weights())
    want = original(inputs, training=False)
    got = rebuilt(inputs, training=False)
    want = want if isinstance(want, (list, tuple)) else [want]
    got = got if isinstance(got, (list, tuple)) else [got]
    assert len(want) == len(got)
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


def spec_errors(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [f"{d.code} {d.message}" for d in exc.value.diagnostics]


# -- hand-made models ---------------------------------------------------------------------------
def toy_model(keras: Any) -> Any:
    """Shared layers, a nested model called twice, keras.ops between layers, two inputs and outputs."""
    from keras import layers, ops

    enc_in = keras.Input((8,), name="enc_in")
    encoder = keras.Model(enc_in, layers.Dense(4, activation="relu", name="dense")(enc_in), name="encoder")
    a = keras.Input((8,), name="a")
    b = keras.Input((8,), name="b")
    shared = layers.Dense(8, name="shared", kernel_initializer=keras.initializers.HeNormal(seed=3),
                          kernel_regularizer=keras.regularizers.L2(0.01))
    sa, sb = shared(a), shared(b)
    mean = ops.mean(sa, axis=-1, keepdims=True)
    flipped = 1.0 - sb  # a constant before the tensor: keyword inputs
    cat = ops.concatenate([sa, flipped, mean], axis=-1)
    ea, eb = encoder(sa), encoder(sb)
    outer = ops.einsum("bi,bj->bij", ea, eb)
    flat = layers.Flatten(name="flat.1")(outer)
    positive = ops.where(ops.greater(cat, 0.0), cat, 0.0)
    merged = layers.Concatenate(name="merge")([flat, positive])
    out = layers.Dense(3, name="dense")(merged)  # same name as the encoder's layer
    return keras.Model([a, b], [out, ea], name="toy")


def test_toy_model_round_trip(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    model = toy_model(keras)
    imp = importer.import_model(model, source="toy")
    assert imp.verified
    text = imp.text
    # Readable: names kept, one line per node, defaults left out, chains without `inputs`.
    assert "  shared: {type: Dense, units: 8, kernel_initializer: {type: HeNormal, seed: 3}, " \
           "kernel_regularizer: l2, inputs: a}\n" in text
    assert "  mean: {op: mean, axis: -1, keepdims: true}\n" in text
    assert "  shared_2: {share: shared, inputs: b}\n" in text
    assert "  subtract: {op: subtract, x1: 1.0, inputs: {x2: shared_2}}\n" in text
    assert "  einsum: {op: einsum, subscripts: \"bi,bj->bij\", inputs: [encoder, encoder_2]}\n" in text
    assert "  encoder: {model: encoder, inputs: shared}\n" in text
    assert "  encoder_2: {model: encoder, inputs: shared_2}\n" in text
    assert "  encoder: {inputs: enc_in, outputs: encoder_dense, submodel: true}\n" in text
    assert "  toy: {inputs: [a, b], outputs: [dense, encoder]}\n" in text
    assert "): 210 parameters, " in text.splitlines()[0]  # the count, in the first line's comment
    # --expect also states it for lint (and makes a variant with another width fail GS501).
    pinned = importer.import_model(model, source="toy", verify=False, expect=True).text
    assert "  toy: {inputs: [a, b], outputs: [dense, encoder], expect: {params: 210}}\n" in pinned
    assert imp.renames == {"encoder/dense": "encoder_dense", "toy/flat.1": "flat_1"}
    assert "flat.1 -> flat_1" in text  # the record, in the header
    rebuilt = build_back(text, tmp_path)
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((4, 8)).astype("float32"), rng.standard_normal((4, 8)).astype("float32")]
    assert_same(model, rebuilt, x)


def test_defaults_left_out_and_collapsed(keras_clean: Any) -> None:
    keras = keras_clean
    from keras import layers

    x = keras.Input((32, 32, 3), name="img")
    y = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pad")(x)
    y = layers.Conv2D(16, (3, 3), strides=(1, 1), padding="valid", use_bias=True, name="conv")(y)
    y = layers.MaxPooling2D((3, 3), strides=(2, 2), name="pool")(y)
    y = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name="bn")(y)
    y = layers.Dropout(0.5, name="drop")(y)
    model = keras.Model(x, y, name="defaults")
    text = importer.import_model(model).text
    assert "  pad: {type: ZeroPadding2D}\n" in text
    assert "  conv: {type: Conv2D, filters: 16, kernel_size: 3}\n" in text
    assert "  pool: {type: MaxPooling2D, pool_size: 3, strides: 2}\n" in text
    assert "  bn: {type: BatchNormalization}\n" in text
    assert "  drop: {type: Dropout, rate: 0.5}\n" in text
    assert "inputs: " not in text.split("nodes:")[1].split("models:")[0]


def test_dtype_policies_masks_and_wrappers_kept(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    from keras import layers, ops

    tokens = keras.Input((None,), dtype="int32", name="tokens")
    emb = layers.Embedding(50, 8, mask_zero=True, name="emb")(tokens)
    seq = layers.Bidirectional(layers.LSTM(4, return_sequences=True), name="bilstm")(emb)
    att = layers.MultiHeadAttention(2, 4, name="mha")(seq, seq)
    pooled = layers.GlobalAveragePooling1D(name="gap")(att)
    half = layers.Dense(4, dtype="mixed_float16", name="half")(pooled)
    frozen = layers.Dense(2, trainable=False, name="frozen")(ops.cast(half, "float32"))
    model = keras.Model(tokens, frozen, name="text")
    imp = importer.import_model(model)
    assert "  half: {type: Dense, units: 4, dtype: mixed_float16}\n" in imp.text
    assert "  frozen: {type: Dense, units: 2, trainable: false" in imp.text
    assert "layer: {type: LSTM, units: 4, return_sequences: true}" in imp.text
    rebuilt = build_back(imp.text, tmp_path)
    assert [w.dtype for w in rebuilt.weights] == [w.dtype for w in model.weights]
    assert_same(model, rebuilt, np.array([[1, 2, 3, 0], [4, 5, 0, 0]], "int32"), rtol=1e-3, atol=1e-3)


def test_sequential_top_level_and_nested(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    from keras import layers

    block = keras.Sequential([keras.Input((6,)), layers.Dense(5, name="d1"), layers.LayerNormalization(name="ln")],
                             name="block")
    x = keras.Input((6,), name="x")
    y = layers.Dense(5, name="d0")(block(x))
    model = keras.Model(x, y, name="with_block")
    imp = importer.import_model(model)
    assert "  block: {model: block, inputs: x}\n" in imp.text
    rebuilt = build_back(imp.text, tmp_path)
    assert_same(model, rebuilt, np.ones((2, 6), "float32"))

    seq = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="a"), layers.Dense(2, name="b")], name="seq")
    imp = importer.import_model(seq)
    rebuilt = build_back(imp.text, tmp_path, name="seq.yaml")
    assert_same(seq, rebuilt, np.ones((2, 4), "float32"))


def test_yaml_scalars_read_back() -> None:
    import yaml

    values = {"a": 1e-05, "b": 1e20, "c": 0.1, "d": "yes", "e": "bi,bj->bij", "f": None, "g": True, "h": "relu",
              "i": [1, [2, 3]], "j": "", "k": "1.5", "l": -2.5e-07}
    text = importer.to_yaml({"graphspec": 1, "name": "x", "nodes": {"n": values}})
    assert yaml.safe_load(text)["nodes"]["n"] == values
    assert "h: relu" in text and "a: 1.0e-05" in text


# -- failures the format cannot express ---------------------------------------------------------------
def test_lambda_layer_is_refused(keras_clean: Any) -> None:
    keras = keras_clean
    x = keras.Input((4,), name="x")
    y = keras.layers.Lambda(lambda t: t * 2, name="double")(x)
    model = keras.Model(x, keras.layers.Dense(2, name="out")(y))
    with pytest.raises(SpecError) as exc:
        importer.import_model(model, source="lambda_model")
    (message,) = spec_errors(exc)
    assert message.startswith("GS701") and "`double` is a Lambda layer" in message


def test_lambda_in_keras_file_is_refused(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.layers.Lambda(lambda t: t + 1, name="plus_one")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(SpecError) as exc:
        importer.import_source(str(path))
    assert "Lambda layer" in spec_errors(exc)[0]


def test_custom_layer_needs_a_plugin(keras_clean: Any) -> None:
    keras = keras_clean

    class Scale(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 2.0

    x = keras.Input((4,), name="x")
    model = keras.Model(x, Scale(name="scale")(x))
    with pytest.raises(SpecError) as exc:
        importer.import_model(model)
    (message,) = spec_errors(exc)
    assert message.startswith("GS701") and "`scale` is a custom layer" in message and "Scale" in message
    assert "--plugin" in (exc.value.diagnostics[0].hint or "")


def test_subclassed_model_is_refused(keras_clean: Any) -> None:
    keras = keras_clean

    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="net")
            self.dense = keras.layers.Dense(2)

        def call(self, x: Any) -> Any:
            return self.dense(x)

    net = Net()
    net(np.ones((1, 3), "float32"))
    with pytest.raises(SpecError) as exc:
        importer.import_model(net)
    assert "subclassed model" in spec_errors(exc)[0]


def test_single_outputs_of_multi_output_layers_and_ops(keras_clean: Any, tmp_path: Path) -> None:
    """One output of a split, and an LSTM's states, become `node.N` references."""
    keras = keras_clean
    enc_in, dec_in = keras.Input((None, 16), name="enc_in"), keras.Input((None, 16), name="dec_in")
    _, h, c = keras.layers.LSTM(8, return_state=True, name="encoder")(enc_in)
    seq = keras.layers.LSTM(8, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    parts = keras.ops.split(keras.layers.Dense(16, name="out")(seq), 2, axis=-1)
    model = keras.Model([enc_in, dec_in], [parts[1], h], name="s2s")
    imp = importer.import_model(model)
    assert "initial_state: [encoder.1, encoder.2]" in imp.text
    assert "outputs: [split.1, encoder.1]" in imp.text
    rebuilt = build_back(imp.text, tmp_path)
    x = [np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32") for _ in range(2)]
    assert_same(model, rebuilt, x)


def test_slice_is_an_op_node(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    x = keras.Input((8, 3), name="x")
    model = keras.Model(x, x[:, 0], name="first_step")
    imp = importer.import_model(model)
    assert '  get_item: {op: get_item, key: "[:, 0]"}\n' in imp.text
    assert_same(model, build_back(imp.text, tmp_path), np.arange(48, dtype="float32").reshape(2, 8, 3))


# -- sources --------------------------------------------------------------------------------------------
def test_keras_file_source(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    model = toy_model(keras)
    path = tmp_path / "toy.keras"
    model.save(path)
    imp = importer.import_source(str(path))
    assert imp.verified and imp.name == "toy"
    loaded = keras.saving.load_model(path, compile=False)
    rebuilt = build_back(imp.text, tmp_path)
    x = [np.ones((2, 8), "float32"), np.full((2, 8), 0.5, "float32")]
    assert_same(loaded, rebuilt, x)


def test_module_function_source_with_plugin(keras_clean: Any, tmp_path: Path) -> None:
    module = tmp_path / "make_model.py"
    module.write_text(textwrap.dedent(f"""
        import importlib.util
        import sys

        import keras

        spec = importlib.util.spec_from_file_location("custom_dense_for_test", {str(PLUGIN)!r})
        plugin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plugin)


        def build(units=3):
            x = keras.Input((4,), name="features")
            h = plugin.CustomDense(units, name="custom")(x)
            return keras.Model(x, keras.layers.Dense(1, name="score")(h), name="scorer")
    """), encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        importer.import_source(f"{module}:build")
    assert "CustomDense" in spec_errors(exc)[0] and "no plugin" in spec_errors(exc)[0]

    imp = importer.import_source(f"{module}:build", plugins=[str(PLUGIN)], args={"units": 5})
    assert imp.plugins == [str(PLUGIN)]
    assert "  custom: {type: CustomDense, units: 5}\n" in imp.text
    build_back(imp.text, tmp_path, plugins=[str(PLUGIN)])


def test_application_source_and_unknown_sources() -> None:
    imp = importer.import_source("keras.applications.MobileNetV3Small",
                                 args={"input_shape": (32, 32, 3), "include_top": False, "include_preprocessing": False})
    assert imp.verified and imp.name == "MobileNetV3Small"
    assert "{op: add, x2: 3.0}" in imp.text and '{op: multiply, x2: "${1/6}"}' in imp.text
    with pytest.raises(UsageError, match="unknown application"):
        importer.load_source("keras.applications.ResNet51")
    with pytest.raises(UsageError, match="no such file"):
        importer.load_source("missing.keras")
    with pytest.raises(UsageError, match="cannot tell"):
        importer.load_source("something")


def test_cli_import(keras_clean: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    keras = keras_clean
    model = toy_model(keras)
    src = tmp_path / "toy.keras"
    model.save(src)
    out = tmp_path / "toy.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "round trip verified" in result.output
    assert out.read_text().startswith("graphspec: 1  # Imported from ")  # the header costs no line
    assert "expect:" not in out.read_text()
    pinned = tmp_path / "pinned.yaml"
    result = runner.invoke(app, ["import", str(src), "-o", str(pinned), "--expect", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "expect: {params: 210}" in pinned.read_text()

    x = keras.Input((4,), name="x")
    mlp = keras.Model(x, keras.layers.Dense(2, name="out")(keras.layers.Dense(8, name="hidden")(x)), name="mlp")
    mlp.save(tmp_path / "mlp.keras")
    for extra, code in (([], 0), (["--expect"], 1)):
        spec = tmp_path / f"mlp{len(extra)}.yaml"
        assert runner.invoke(app, ["import", str(tmp_path / "mlp.keras"), "-o", str(spec), *extra]).exit_code == 0
        lint = runner.invoke(app, ["lint", str(spec), "--set", "nodes.hidden.units=16"])
        # A variant with another width: fine, unless the spec was pinned to the source's count.
        assert lint.exit_code == code and ("GS501" in lint.output) == bool(code), lint.output

    x = keras.Input((4,), name="x")
    bad = keras.Model(x, keras.layers.Lambda(lambda t: t, name="ident")(x))
    bad_path = tmp_path / "bad.keras"
    bad.save(bad_path)
    result = runner.invoke(app, ["import", str(bad_path), "-o", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 1
    assert "GS701" in result.output and not (tmp_path / "bad.yaml").exists()

    result = runner.invoke(app, ["import", "keras.applications.Nope"])
    assert result.exit_code == 2


# -- keras.applications round trips ------------------------------------------------------------------------
# (application, constructor arguments, input batch shape). Small inputs where the
# application allows them; the default include_top model for a few.
APPLICATIONS = [
    ("ResNet50", {}, (2, 224, 224, 3)),
    ("ResNet50V2", {"input_shape": (64, 64, 3)}, (2, 64, 64, 3)),
    ("MobileNet", {"input_shape": (128, 128, 3)}, (2, 128, 128, 3)),
    ("MobileNetV2", {"input_shape": (96, 96, 3)}, (2, 96, 96, 3)),
    ("MobileNetV3Small", {}, (2, 64, 64, 3)),
    ("DenseNet121", {"input_shape": (64, 64, 3)}, (2, 64, 64, 3)),
    ("EfficientNetB0", {"input_shape": (64, 64, 3)}, (2, 64, 64, 3)),
    ("EfficientNetV2B0", {"input_shape": (64, 64, 3)}, (2, 64, 64, 3)),
    ("InceptionV3", {"input_shape": (75, 75, 3)}, (2, 75, 75, 3)),
    ("InceptionResNetV2", {"input_shape": (75, 75, 3), "include_top": False, "pooling": "avg"}, (2, 75, 75, 3)),
    ("Xception", {"input_shape": (71, 71, 3)}, (2, 71, 71, 3)),
    ("NASNetMobile", {"input_shape": (64, 64, 3), "include_top": False}, (2, 64, 64, 3)),
    ("ConvNeXtTiny", {"input_shape": (32, 32, 3)}, (2, 32, 32, 3)),
    ("VGG16", {"input_shape": (32, 32, 3), "include_top": False}, (2, 32, 32, 3)),
]
if os.environ.get("GRAPHSPEC_IMPORT_ALL") == "1":
    from graphspec.spec import catalog

    _listed = {a for a, _, _ in APPLICATIONS}
    # At 75x75 (the smallest size every application accepts): the same layers and parameters as at the
    # default size for all but the VGGs' flattened top, and a forward pass that takes a fraction of the time.
    APPLICATIONS += [(a, {"input_shape": (75, 75, 3)}, (1, 75, 75, 3))
                     for a in sorted(catalog.APPLICATIONS) if a not in _listed]


@pytest.mark.slow
@pytest.mark.parametrize(("app", "kwargs", "batch"), APPLICATIONS, ids=[a[0] for a in APPLICATIONS])
def test_application_round_trip(keras_clean: Any, tmp_path: Path, app: str, kwargs: dict[str, Any],
                                batch: tuple[int, ...] | None) -> None:
    keras = keras_clean
    original = getattr(keras.applications, app)(weights=None, **kwargs)
    imp = importer.import_model(original, source=f"keras.applications.{app}", verify=False)
    keras.backend.clear_session(free_memory=False)  # the rebuilt model's ops are named as in a fresh process (`add`, not `add_3`)
    with zero_initializers():  # assert_same copies the original's (random) weights into it before comparing
        rebuilt = build_back(imp.text, tmp_path, plugins=imp.plugins)
    # Static inference (what `graphspec lint` reports, no TensorFlow) agrees with Keras too.
    static = compiler.check(tmp_path / "spec.yaml", plugins=imp.plugins)
    assert [d.code for d in static.diagnostics] == []
    (info,) = [m for m in static.analysis.models.values() if m.name == rebuilt.name]
    assert info.params == original.count_params()
    assert info.trainable == sum(int(np.prod(w.shape)) for w in original.trainable_weights)
    # ... and so does `graphspec summary`'s static table, row by row (name, type, shape, params, inputs).
    (table,) = static_summary(static.graph, static.analysis, [rebuilt.name])
    assert [r.as_dict() for r in table.rows] == model_rows(rebuilt)
    if batch is None:
        batch = (1, *(d or 64 for d in original.input_shape[1:]))
    x = np.random.default_rng(0).uniform(0.0, 255.0, batch).astype("float32")
    assert_same(original, rebuilt, x)
