"""Static rules for `op:` nodes (keras.ops) and graphspec's built-in plugin layers, against Keras."""

from __future__ import annotations

from typing import Any

import pytest

from graphspec.analysis import shapes

CASES: list[tuple[str, dict[str, Any], list[tuple[int | None, ...]]]] = [
    ("add", {"x2": 3.0}, [(4, 5)]),
    ("add", {}, [(4, 5), (4, 5)]),
    ("add", {}, [(4, 5), (5,)]),
    ("multiply", {}, [(4, 1), (1, 5)]),
    ("maximum", {}, [(None, 5), (1, 5)]),
    ("add", {}, [(4, 5), (4, 6)]),
    ("relu", {}, [(7, 3)]),
    ("softmax", {"axis": -1}, [(7, 3)]),
    ("reshape", {"newshape": [-1, 15]}, [(3, 5)]),
    ("transpose", {"axes": [0, 2, 1]}, [(3, 5)]),
    ("concatenate", {"axis": -1}, [(3, 5), (3, 2)]),
    ("concatenate", {"axis": 1}, [(3, 5), (4, 5)]),
    ("concatenate", {"axis": -1}, [(3, 5), (4, 2)]),
    ("mean", {"axis": [1, 2], "keepdims": True}, [(4, 4, 3)]),
    ("sum", {"axis": -1}, [(4, 4, 3)]),
    ("expand_dims", {"axis": 1}, [(4,)]),
    ("cast", {"dtype": "float16"}, [(3,)]),
]


def _infer(op: str, args: dict[str, Any], ins: list[tuple[int | None, ...]]) -> Any:
    try:
        return shapes.infer(f"ops.{op}", args, ins).outputs[0]
    except shapes.ShapeError:
        return "error"


def test_rules_are_pure_python() -> None:
    assert shapes.has_rule("ops.add") and shapes.has_rule("LayerScale")
    assert _infer("add", {}, [(4, 5), (4, 6)]) == "error"
    with pytest.raises(shapes.NoRule):
        shapes.infer("ops.concatenate", {}, [(3,), (3,)])  # keras.ops.concatenate's axis=0: the batch


@pytest.mark.keras
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_op_rule_matches_keras(case: tuple[str, dict[str, Any], list[tuple[int | None, ...]]]) -> None:
    from graphspec.build.backend import keras

    op, args, ins = case
    fn = getattr(keras.ops, op)
    tensors = [keras.Input(s) for s in ins]
    try:
        out = fn(tensors, **args) if op == "concatenate" else fn(*tensors, **args)
        want: Any = tuple(out.shape[1:])
    except ValueError:
        want = "error"
    assert _infer(op, args, ins) == want


@pytest.mark.keras
def test_builtin_plugin_layers_match_keras() -> None:
    from graphspec.build import plugins as plugin_loader
    from graphspec.spec import plugins
    from graphspec.build.backend import keras

    classes = plugin_loader.load_all(plugins.BUILTIN)
    x = keras.Input((7, 7, 96))
    layer = classes["LayerScale"](init_values=1e-6, projection_dim=96)
    y = layer(x)
    got = shapes.infer("LayerScale", {"init_values": 1e-6, "projection_dim": 96}, [(7, 7, 96)])
    assert got.outputs == (tuple(y.shape[1:]),) and got.params == layer.count_params() == 96
    a, b = keras.Input((5, 5, 32)), keras.Input((5, 5, 32))
    z = classes["CustomScaleLayer"](scale=0.17)([a, b])
    got = shapes.infer("CustomScaleLayer", {"scale": 0.17}, [(5, 5, 32), (5, 5, 32)])
    assert got.outputs == (tuple(z.shape[1:]),) and got.params == 0
