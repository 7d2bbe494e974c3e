"""Static inference of `application:` nodes (graphspec.analysis.shapes.applications) against Keras.

The fast tests are pure Python: figures Keras 3.15 gives for every application at its
default settings, argument checks, and what lint does with `node.layer` and `node.*`.
The `keras` tests build a few small applications and compare; the `slow` test builds all
40 (and variants of each family's arguments) and compares every layer's name and output
shape, the parameters, the trainable parameters, and the multiply-accumulates counted
independently from the built model's kernels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import graphspec
from graphspec.analysis.shapes import NoRule, ShapeError
from graphspec.analysis.shapes.applications import infer_application, supported_applications
from graphspec.spec import catalog

# keras.applications.<name>(weights=None): count_params() and the output shape, from Keras 3.15.
DEFAULTS: dict[str, int] = {
    "ConvNeXtBase": 88591464, "ConvNeXtLarge": 197767336, "ConvNeXtSmall": 50223688, "ConvNeXtTiny": 28589128,
    "ConvNeXtXLarge": 350196968, "DenseNet121": 8062504, "DenseNet169": 14307880, "DenseNet201": 20242984,
    "EfficientNetB0": 5330571, "EfficientNetB1": 7856239, "EfficientNetB2": 9177569, "EfficientNetB3": 12320535,
    "EfficientNetB4": 19466823, "EfficientNetB5": 30562527, "EfficientNetB6": 43265143, "EfficientNetB7": 66658687,
    "EfficientNetV2B0": 7200312, "EfficientNetV2B1": 8212124, "EfficientNetV2B2": 10178374,
    "EfficientNetV2B3": 14467622, "EfficientNetV2L": 119027848, "EfficientNetV2M": 54431388,
    "EfficientNetV2S": 21612360, "InceptionResNetV2": 55873736, "InceptionV3": 23851784, "MobileNet": 4253864,
    "MobileNetV2": 3538984, "MobileNetV3Large": 5507432, "MobileNetV3Small": 2554968, "NASNetLarge": 88949818,
    "NASNetMobile": 5326716, "ResNet101": 44707176, "ResNet101V2": 44675560, "ResNet152": 60419944,
    "ResNet152V2": 60380648, "ResNet50": 25636712, "ResNet50V2": 25613800, "VGG16": 138357544,
    "VGG19": 143667240, "Xception": 22910480,
}


def test_every_application_is_modelled() -> None:
    assert supported_applications() == set(catalog.APPLICATIONS) == set(DEFAULTS)


@pytest.mark.parametrize("app", sorted(DEFAULTS))
def test_default_parameter_counts(app: str) -> None:
    result = infer_application(app, {})
    assert result.params == DEFAULTS[app]
    assert result.output == (1000,)


def test_resnet50_in_detail() -> None:
    r = infer_application("ResNet50", {})
    assert (r.params, r.trainable_params, r.macs) == (25_636_712, 25_583_592, 3_857_973_248)
    assert r.layers["input_layer"] == ((224, 224, 3),) and r.layers["conv5_block3_out"] == ((7, 7, 2048),)
    assert len(r.layers) == 177  # model.layers, the input included
    top = infer_application("ResNet50", {"include_top": False, "pooling": "max", "input_shape": [64, 96, 3]})
    assert top.output == (2048,) and "max_pool" in top.layers and top.params == 23_587_712


def test_none_sizes_give_none_shapes_and_unknown_macs() -> None:
    r = infer_application("DenseNet121", {"include_top": False})
    assert r.output == (None, None, 1024) and r.macs is None
    assert infer_application("MobileNetV3Small", {}).macs is None  # its default input is (None, None, 3)


@pytest.mark.parametrize(("app", "args", "message"), [
    ("VGG19", {"input_shape": [10, 10, 3]}, "input size must be at least 32x32"),
    ("Xception", {"include_top": False, "input_shape": [70, 80, 3]}, "at least 71x71"),
    ("ResNet50", {"input_shape": [None, None, 3]}, "give a static `input_shape`"),
    ("ResNet50", {"input_shape": [224, 224]}, "three integers"),
    ("ResNet50", {"weights": "imagenet", "classes": 10}, "`classes` should be 1000"),
    ("ResNet50", {"weights": "imagenet", "input_shape": [200, 200, 3]}, "should be (224, 224, 3)"),
    ("ResNet50", {"weights": "imagenet", "include_top": False, "input_shape": [64, 64, 1]}, "3 channels"),
    ("VGG16", {"weights": "imagenet", "classifier_activation": "relu"}, "only `None` and `softmax`"),
    ("MobileNet", {"weights": "imagenet", "alpha": 0.3}, "`alpha` can be one of"),
    ("MobileNetV3Small", {"input_shape": [16, 64, 3]}, "at least 32x32"),
    ("NASNetLarge", {"weights": "imagenet", "include_top": False, "input_shape": [None, 331, 3]}, "static"),
])
def test_keras_errors(app: str, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        infer_application(app, args)


def test_arguments_not_modelled() -> None:
    with pytest.raises(NoRule, match="input_tensor"):
        infer_application("VGG16", {"input_tensor": None})
    with pytest.raises(NoRule):
        infer_application("VGG17", {})


def test_family_arguments_change_the_network() -> None:
    assert infer_application("MobileNet", {"alpha": 0.5}).params < infer_application("MobileNet", {}).params
    small = infer_application("MobileNetV3Small", {"minimalistic": True, "input_shape": [64, 64, 3]})
    assert small.params < DEFAULTS["MobileNetV3Small"] and small.macs is not None
    no_pre = infer_application("EfficientNetV2B0", {"include_preprocessing": False})
    assert "rescaling" not in no_pre.layers and "rescaling" in infer_application("EfficientNetV2B0", {}).layers
    # ImageNet weights add EfficientNet's per-channel rescaling (and no parameters)
    assert "rescaling_1" in infer_application("EfficientNetB0", {"weights": "imagenet"}).layers


def test_called_on_a_tensor_takes_its_sizes(tmp_path: Path) -> None:
    r = infer_application("ResNet50", {"include_top": False}, (64, 64, 3))
    assert r.output == (2, 2, 2048) and r.macs == infer_application(
        "ResNet50", {"include_top": False, "input_shape": [64, 64, 3]}).macs
    with pytest.raises(ShapeError, match="called on a tensor of shape"):
        infer_application("ResNet50", {}, (64, 64, 3))


def _check(tmp_path: Path, body: str) -> Any:
    spec = tmp_path / "t.yaml"
    spec.write_text("graphspec: 1\nname: t\n" + body)
    return graphspec.check(spec)


def test_lint_knows_application_layers(tmp_path: Path) -> None:
    checked = _check(tmp_path, "nodes:\n  v: {application: VGG16, include_top: false, input_shape: [64, 64, 3]}\n"
                     "  f: {type: Flatten, inputs: v.block4_pool}\n  d: {type: Dense, units: 3}\n"
                     "models:\n  m: {inputs: v, outputs: [d, v.block5_conv1]}\n")
    assert checked.ok and not checked.diagnostics, [str(d) for d in checked.diagnostics]
    m = checked.analysis.models["m"]
    assert m.output_shapes == {"d": (3,), "block5_conv1": (4, 4, 512)}
    assert m.params == 14_714_688 + 4 * 4 * 512 * 3 + 3
    checked = _check(tmp_path, "nodes:\n  v: {application: MobileNetV2, weights: null}\n"
                     "models:\n  m: {inputs: v, outputs: v.*}\n")
    shapes = checked.analysis.models["m"].output_shapes
    assert shapes["predictions"] == (1000,) and shapes["block_16_project_BN"] == (7, 7, 320)


def test_lint_reports_application_errors(tmp_path: Path) -> None:
    checked = _check(tmp_path, "inputs:\n  img: [64, 64, 3]\nnodes:\n"
                     "  v: {application: ResNet50, include_top: false, input_shape: [32, 32, 3]}\n")
    (d,) = checked.diagnostics.errors
    assert d.code == "GS300" and "called on a tensor of shape (64, 64, 3)" in d.message
    assert (d.location.line, d.location.col) == (6, 3)
    checked = _check(tmp_path, "inputs:\n  img: [64, 64, 3]\nnodes:\n"
                     "  v: {application: ResNet50, include_top: false, input_shape: [null, null, 3]}\n"
                     "  d: {type: Dense, units: 2}\nexpect: {output_shapes: {d: [2, 2, 2]}}\n")
    assert checked.ok and checked.analysis.models["t"].output_shapes == {"d": (2, 2, 2)}


def test_activations_inside_count_against_the_budget(tmp_path: Path) -> None:
    checked = _check(tmp_path, "nodes:\n  v: {application: VGG16, weights: null, include_top: false, "
                     "input_shape: [100000, 100000, 3]}\n")
    (d,) = checked.diagnostics.errors
    assert d.code == "GS500" and "`v` (its layer `block1_conv1`) produces 640,000,000,000 values" in d.message


# -- against Keras ---------------------------------------------------------------------------


def _keras_macs(layer: Any) -> int | None:
    """MACs of a built layer, independently of graphspec's rules: every kernel weight is one
    multiply-accumulate per output position (the output's axes between batch and channels)."""
    if getattr(layer, "layers", None):  # a nested Sequential (ConvNeXt's stem)
        inner = [_keras_macs(sub) for sub in layer.layers]
        return None if any(m is None for m in inner) else sum(m for m in inner if m is not None)
    kernels = [w for w in layer.weights if w.path.endswith("kernel")]
    if not kernels:
        return 0
    positions = layer.output.shape[1:-1]
    if any(d is None for d in positions):
        return None
    return math.prod(positions) * sum(math.prod(w.shape) for w in kernels)


def compare(keras: Any, app: str, args: dict[str, Any]) -> None:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    model = getattr(keras.applications, app)(weights=None, **kwargs)
    static = infer_application(app, args)
    assert static.output == tuple(model.output.shape[1:])
    assert static.params == model.count_params()
    assert static.trainable_params == sum(math.prod(w.shape) for w in model.trainable_weights)
    got = {name: shapes[0] for name, shapes in static.layers.items()}
    want = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert got == want
    layer_macs = {layer.name: _keras_macs(layer) for layer in model.layers}
    assert static.layer_macs == layer_macs
    total = None if None in layer_macs.values() else sum(m for m in layer_macs.values() if m is not None)
    assert static.macs == total


FEW = [
    ("MobileNetV3Small", {"input_shape": [33, 35, 3], "minimalistic": True}),
    ("EfficientNetB0", {"input_shape": [33, 33, 3], "include_top": False, "pooling": "avg"}),
    ("ConvNeXtTiny", {"input_shape": [32, 32, 1], "classes": 5}),
]


@pytest.mark.keras
@pytest.mark.parametrize(("app", "args"), FEW, ids=[a for a, _ in FEW])
def test_few_applications_match_keras(keras_clean: Any, app: str, args: dict[str, Any]) -> None:
    compare(keras_clean, app, args)


VARIANTS = [
    ("VGG16", {"include_top": False, "input_shape": [48, 64, 3], "pooling": "max"}),
    ("ResNet101V2", {"include_top": False, "input_shape": [None, None, 3], "pooling": "avg"}),
    ("ResNet152", {"include_top": False, "input_shape": [65, 33, 3]}),
    ("DenseNet169", {"include_top": False, "input_shape": [None, None, 3]}),
    ("MobileNet", {"alpha": 0.5, "depth_multiplier": 2, "input_shape": [130, 130, 3], "classes": 10, "dropout": 0.5}),
    ("MobileNetV2", {"alpha": 1.4, "input_shape": [97, 97, 3], "include_top": False}),
    ("MobileNetV3Large", {"minimalistic": True, "alpha": 0.75, "include_preprocessing": False,
                          "input_shape": [33, 33, 3]}),
    ("MobileNetV3Small", {"alpha": 1.25, "input_shape": [64, 64, 3], "dropout_rate": 0.0}),
    ("EfficientNetB3", {"input_shape": [65, 67, 3], "include_top": False, "pooling": "max"}),
    ("EfficientNetV2B1", {"include_preprocessing": False, "input_shape": [64, 64, 1], "classes": 3}),
    ("EfficientNetV2M", {"include_top": False, "input_shape": [96, 96, 3]}),
    ("InceptionV3", {"input_shape": [139, 139, 3], "classes": 7, "classifier_activation": None}),
    ("InceptionResNetV2", {"include_top": False, "input_shape": [75, 75, 3], "pooling": "max"}),
    ("Xception", {"include_top": False, "input_shape": [100, 80, 3]}),
    ("NASNetMobile", {"include_top": False}),
    ("NASNetLarge", {"include_top": False, "input_shape": [97, 97, 3]}),
    ("ConvNeXtSmall", {"include_top": False, "pooling": "avg", "input_shape": [64, 64, 1]}),
]
ALL = [(app, {}) for app in sorted(DEFAULTS)] + VARIANTS


@pytest.mark.slow
@pytest.mark.keras
@pytest.mark.parametrize(("app", "args"), ALL, ids=[f"{a}-{i}" for i, (a, _) in enumerate(ALL)])
def test_every_application_matches_keras(keras_unweighted: Any, app: str, args: dict[str, Any]) -> None:
    compare(keras_unweighted, app, args)  # shapes, counts and kernel sizes: the weights' values do not matter


BOTH_RAISE = [
    ("VGG19", {"input_shape": [31, 64, 3]}),
    ("ResNet50", {"input_shape": [None, None, 3]}),
    ("MobileNetV3Small", {"input_shape": [20, 64, 3]}),
    ("Xception", {"include_top": False, "input_shape": [64, 71, 3]}),
]


@pytest.mark.keras
@pytest.mark.parametrize(("app", "args"), BOTH_RAISE, ids=[a for a, _ in BOTH_RAISE])
def test_keras_rejects_what_lint_rejects(keras_clean: Any, app: str, args: dict[str, Any]) -> None:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    with pytest.raises(Exception):  # noqa: B017 - Keras raises ValueError or a backend error
        getattr(keras_clean.applications, app)(weights=None, **kwargs)
    with pytest.raises(ShapeError):
        infer_application(app, args)
