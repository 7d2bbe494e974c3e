"""Multiply-accumulates (docs/lint.md, "Compute"): per layer, per model, and `expect: {macs, max_macs}`.

Every example spec is checked against a count worked out by hand here from its layers, not
from graphspec's rules. Pure Python: nothing here imports Keras.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import graphspec
from graphspec.analysis.shapes import infer
from graphspec.cli.app import app

from .conftest import PLUGIN, SPECS


def _conv(size: int, cin: int, cout: int, k: int = 3) -> int:
    """A k x k convolution producing size x size x cout: each output value is a k*k*cin window."""
    return size * size * cout * k * k * cin


def _deconv(size_in: int, cin: int, cout: int, k: int = 3) -> int:
    """A transposed k x k convolution: each input value meets the whole kernel."""
    return size_in * size_in * cin * k * k * cout


# VGG19 at 224 x 224: (output size, input channels, output channels) of its sixteen 3x3 convolutions.
_VGG19_CONVS = ([(224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128), (56, 128, 256)]
                + [(56, 256, 256)] * 3 + [(28, 256, 512)] + [(28, 512, 512)] * 3 + [(14, 512, 512)] * 4)

HAND: dict[str, dict[str, int | None]] = {
    "mnist_mlp.yaml": {"mnist_model": 784 * 64 + 64 * 64 + 64 * 10},
    "resnet50.yaml": {"resnet50": 3_857_973_248},  # the issue's figure for keras.applications.ResNet50
    "resnet.yaml": {"toy_resnet": _conv(30, 3, 32) + _conv(28, 32, 64) + 4 * _conv(9, 64, 64)
                    + _conv(7, 64, 64) + 64 * 256 + 256 * 10},
    "resnet_cifar10.yaml": {"toy_resnet": _conv(30, 3, 32) + _conv(28, 32, 64) + 4 * _conv(9, 64, 64)
                            + _conv(7, 64, 64) + 64 * 256 + 256 * 10},  # resnet.yaml's model on CIFAR-10
    "digits.yaml": {"digits": _conv(8, 1, 32) + _conv(8, 32, 64) + 4 * 4 * 64 * 128 + 128 * 10},
    "autoencoder.yaml": {
        "encoder": _conv(26, 1, 16) + _conv(24, 16, 32) + _conv(6, 32, 32) + _conv(4, 32, 16),
        "autoencoder": _conv(26, 1, 16) + _conv(24, 16, 32) + _conv(6, 32, 32) + _conv(4, 32, 16)
        + _deconv(4, 1, 16) + _deconv(6, 16, 32) + _deconv(24, 32, 16) + _deconv(26, 16, 1),
    },
    "autoencoder_nested.yaml": {
        "encoder": _conv(26, 1, 16) + _conv(24, 16, 32) + _conv(6, 32, 32) + _conv(4, 32, 16),
        "decoder": _deconv(4, 1, 16) + _deconv(6, 16, 32) + _deconv(24, 32, 16) + _deconv(26, 16, 1),
        "autoencoder": 3_157_056 + 2_919_744,
    },
    "ensemble.yaml": {"member": 128, "ensemble": 3 * 128},  # three fresh copies of Dense(1) on 128 features
    "shared_embedding.yaml": {"shared_embedding": 0},  # an Embedding is a lookup
    "ticket_router.yaml": {"ticket_router": None},  # LSTMs over sequences of unknown length
    "vgg19_features.yaml": {"vgg19_features": sum(_conv(s, i, o) for s, i, o in _VGG19_CONVS)
                            + 25088 * 4096 + 4096 * 4096 + 4096 * 1000},
    "custom_layer.yaml": {"custom_dense": 4 * 10},  # CustomDense declares its MACs
}


def test_every_example_spec_has_a_hand_count() -> None:
    assert set(HAND) == {p.name for p in SPECS.glob("*.yaml")}


@pytest.mark.parametrize("spec", sorted(HAND))
def test_example_spec_macs(spec: str) -> None:
    checked = graphspec.check(SPECS / spec, plugins=[str(PLUGIN)])
    assert checked.ok and not checked.diagnostics, [str(d) for d in checked.diagnostics]
    assert {n: m.macs for n, m in checked.analysis.models.items()} == HAND[spec]


def test_ticket_router_with_fixed_lengths() -> None:
    checked = graphspec.check(SPECS / "ticket_router.yaml", sets=["inputs.title.shape=[20]", "inputs.body.shape=[50]"])
    lstm = 20 * 4 * (64 + 128) * 128 + 50 * 4 * (64 + 32) * 32  # per step: 4 gates x (input + recurrent) kernels
    assert checked.analysis.models["ticket_router"].macs == lstm + 172 * 1 + 172 * 4


def test_resnet50_states_its_macs_for_any_number_of_classes() -> None:
    checked = graphspec.check(SPECS / "resnet50.yaml", sets=["vars.classes=10"])
    assert checked.ok and checked.analysis.models["resnet50"].macs == 3_857_973_248 - 2048 * (1000 - 10)


def test_examples_in_the_issue() -> None:
    assert HAND["mnist_mlp.yaml"]["mnist_model"] == 54_912
    assert HAND["vgg19_features.yaml"]["vgg19_features"] == 19_632_062_464


# (layer, args, input shapes, MACs) -- worked out by hand
LAYERS: list[tuple[str, dict[str, Any], list[tuple[int | None, ...]], int | None]] = [
    ("Dense", {"units": 10}, [(20,)], 200),
    ("Dense", {"units": 10}, [(5, 20)], 1000),
    ("Dense", {"units": 10}, [(None, 20)], None),
    ("EinsumDense", {"equation": "abc,cd->abd", "output_shape": [None, 16], "bias_axes": "d"}, [(10, 8)],
     10 * 8 * 16),
    ("EinsumDense", {"equation": "...b,bc->...c", "output_shape": 4}, [(3, 5, 6)], 3 * 5 * 6 * 4),
    ("Embedding", {"input_dim": 1000, "output_dim": 16}, [(7,)], 0),
    ("Conv2D", {"filters": 8, "kernel_size": 3, "groups": 2}, [(10, 10, 4)], 8 * 8 * 8 * 9 * 2),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "padding": "causal"}, [(10, 2)], 10 * 4 * 3 * 2),
    ("Conv3D", {"filters": 2, "kernel_size": 2}, [(4, 5, 6, 1)], 3 * 4 * 5 * 2 * 8),
    ("Conv2D", {"filters": 8, "kernel_size": 3}, [(None, 10, 4)], None),
    ("Conv2D", {"filters": 8, "kernel_size": 3, "data_format": "channels_first"}, [(4, 10, 10)], 8 * 8 * 8 * 9 * 4),
    ("Conv2DTranspose", {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"}, [(8, 8, 16)],
     8 * 8 * 16 * 9 * 8),
    ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2}, [(10, 10, 4)], 8 * 8 * 8 * 9),
    ("SeparableConv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}, [(10, 10, 4)],
     10 * 10 * 4 * 9 + 10 * 10 * 4 * 16),
    ("SimpleRNN", {"units": 3}, [(7, 5)], 7 * (5 * 3 + 3 * 3)),
    ("LSTM", {"units": 3, "return_sequences": True}, [(7, 5)], 7 * 4 * (5 * 3 + 3 * 3)),
    ("GRU", {"units": 3}, [(7, 5)], 7 * 3 * (5 * 3 + 3 * 3)),
    ("LSTM", {"units": 3}, [(None, 5)], None),
    ("Bidirectional", {"layer": {"type": "GRU", "units": 3}}, [(7, 5)], 2 * 7 * 3 * (5 * 3 + 3 * 3)),
    ("TimeDistributed", {"layer": {"type": "Dense", "units": 4}}, [(6, 3)], 6 * 3 * 4),
    # projections (query, key, value, output), then scores and the weighted sum: heads x 10 x 20 x key_dim each
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 8}, [(10, 16), (20, 16)],
     10 * 16 * 16 + 20 * 16 * 16 + 20 * 16 * 16 + 10 * 16 * 16 + 2 * 10 * 20 * 8 + 2 * 10 * 20 * 8),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 8}, [(None, 16), (20, 16)], None),
    ("Attention", {}, [(10, 16), (20, 16)], 10 * 20 * 16 + 10 * 20 * 16),
    ("AdditiveAttention", {}, [(10, 16), (20, 16), (20, 16)], 10 * 20 * 16 + 10 * 20 * 16),
    # not counted: activations, normalization, pooling, reshaping, merging, dropout
    ("BatchNormalization", {}, [(10, 10, 4)], 0),
    ("MaxPooling2D", {}, [(10, 10, 4)], 0),
    ("GlobalAveragePooling2D", {}, [(10, 10, 4)], 0),
    ("Add", {}, [(4,), (4,)], 0),
    ("Dot", {"axes": 1}, [(4,), (4,)], 0),
    ("Flatten", {}, [(None, 3)], 0),
    ("Activation", {"activation": "relu"}, [(None,)], 0),
]


@pytest.mark.parametrize(("layer", "args", "inputs", "macs"), LAYERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(LAYERS)])
def test_layer_macs(layer: str, args: dict[str, Any], inputs: list[tuple[int | None, ...]], macs: int | None) -> None:
    assert infer(layer, args, inputs).macs == macs


HEAD = "graphspec: 1\nname: t\ninputs:\n  x: [16]\n  y: [16]\n"


def _check(tmp_path: Path, text: str) -> Any:
    spec = tmp_path / "t.yaml"
    spec.write_text(text)
    return graphspec.check(spec)


def test_shared_layers_count_once_per_call_and_sub_models_per_call(tmp_path: Path) -> None:
    checked = _check(tmp_path, HEAD + "nodes:\n  a: {type: Dense, units: 4, inputs: x}\n"
                     "  b: {share: a, inputs: y}\n  s: {type: Add, inputs: [a, b]}\n"
                     "models:\n  m: {inputs: [x, y], outputs: s}\n")
    model = checked.analysis.models["m"]
    assert (model.params, model.macs) == (68, 2 * 16 * 4)  # one set of weights, two calls
    assert model.layer_macs == {"x": 0, "y": 0, "a": 128, "s": 0}

    checked = _check(tmp_path, HEAD + "nodes:\n  d: {type: Dense, units: 4, inputs: x}\n"
                     "  c1: {model: sub, inputs: y}\n  c2: {model: sub, inputs: c1}\n"
                     "models:\n  sub: {inputs: x, outputs: d, submodel: true}\n"
                     "  m: {inputs: y, outputs: c2}\n")
    assert checked.diagnostics.has_errors  # the second call feeds 4 features to a 16-feature model
    checked = _check(tmp_path, HEAD + "nodes:\n  d: {type: Dense, units: 16, inputs: x}\n"
                     "  c1: {model: sub, inputs: y}\n  c2: {model: sub, inputs: c1}\n"
                     "  c3: {model: sub, fresh: true, inputs: c2}\n"
                     "models:\n  sub: {inputs: x, outputs: d, submodel: true}\n"
                     "  m: {inputs: y, outputs: c3}\n")
    model = checked.analysis.models["m"]
    assert (model.params, model.macs) == (2 * 272, 3 * 256)
    assert model.layer_macs == {"y": 0, "sub": 512, "c3": 256}


def test_expect_macs_and_max_macs(tmp_path: Path) -> None:
    base = "graphspec: 1\nname: t\ninputs:\n  x: [784]\nnodes:\n  d: {type: Dense, units: 64}\n"
    assert _check(tmp_path, base + "expect: {macs: 50176, max_macs: 50176}\n").ok
    checked = _check(tmp_path, base + "expect: {macs: 50000}\n")
    (d,) = checked.diagnostics.errors
    assert d.code == "GS501" and "50,176 multiply-accumulates per sample, the spec expects 50,000" in d.message
    assert (d.location.line, d.location.col) == (7, 10)
    checked = _check(tmp_path, base + "expect: {max_macs: 1000}\n")
    (d,) = checked.diagnostics.errors
    assert d.code == "GS500" and "50,176 multiply-accumulates per sample; the budget is 1,000" in d.message
    assert (d.location.line, d.location.col) == (7, 10) and "`d` (Dense) with 50,176" in d.notes[0]
    # Unknown MACs are not checked, like unknown parameter counts.
    unknown = "graphspec: 1\nname: t\ninputs:\n  x: [null, 8]\nnodes:\n  d: {type: Dense, units: 64}\n"
    assert _check(tmp_path, unknown + "expect: {macs: 1, max_macs: 1}\n").ok


def test_lint_json_has_macs() -> None:
    result = CliRunner().invoke(app, ["lint", "--format", "json", str(SPECS / "resnet50.yaml"),
                                      str(SPECS / "ticket_router.yaml")])
    doc = json.loads(result.output)
    assert [m["macs"] for f in doc["files"] for m in f["models"]] == [3_857_973_248, None]


@pytest.mark.keras
def test_summary_json_has_macs_per_layer(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    app_args = "application: MobileNetV3Small, weights: null, minimalistic: true, input_shape: [32, 32, 3]"
    # A model over a stand-alone application is made of the application's layers, named by Keras as in a
    # fresh session (as `graphspec summary` runs): earlier models in this process must not shift the names.
    from graphspec.build.backend import keras

    keras.backend.clear_session(free_memory=False)
    spec.write_text(f"graphspec: 1\nname: t\nnodes:\n  a: {{{app_args}}}\nmodels:\n  m: {{inputs: a, outputs: a}}\n")
    doc = json.loads(CliRunner().invoke(app, ["summary", "--format", "json", str(spec)]).stdout)
    (model,) = doc["models"]
    rows = {row["name"]: row["macs"] for row in model["layers"]}
    assert None not in rows.values() and model["macs"] == sum(rows.values()) > 0
    assert rows["conv"] == 16 * 16 * 16 * 3 * 3 * 3  # 3x3 convolution, stride 2, 16 filters
    # Called on an input, the application is one layer of the model.
    spec.write_text(f"graphspec: 1\nname: t\ninputs:\n  x: [32, 32, 3]\nnodes:\n  a: {{{app_args}}}\n"
                    "  d: {type: Dense, units: 2}\n")
    doc = json.loads(CliRunner().invoke(app, ["summary", "--format", "json", str(spec)]).stdout)
    (model,) = doc["models"]
    rows = {row["name"]: row["macs"] for row in model["layers"]}
    assert rows["x"] == 0 and rows["d"] == 1000 * 2 and rows["a"] == model["macs"] - 2000
