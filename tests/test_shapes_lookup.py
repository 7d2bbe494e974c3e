"""Static rules for StringLookup, IntegerLookup and TextVectorization, and the element-wise ops
that keep their input's shape: pure Python, then the same table against Keras."""

from __future__ import annotations

from typing import Any

import pytest

from graphspec.analysis.shapes import NoRule, ShapeError, infer

V = ["a", "b", "c"]
# (layer, args, input shape without the batch axis, input dtype, output shape)
CASES: list[tuple[str, dict[str, Any], tuple[int | None, ...], str, tuple[int | None, ...]]] = [
    ("StringLookup", {"vocabulary": V}, (5,), "string", (5,)),
    ("StringLookup", {}, (None,), "string", (None,)),  # int mode needs no vocabulary
    ("StringLookup", {"vocabulary": V, "output_mode": "one_hot"}, (1,), "string", (4,)),
    ("StringLookup", {"vocabulary": V, "output_mode": "one_hot"}, (5,), "string", (5, 4)),
    ("StringLookup", {"vocabulary": V, "output_mode": "multi_hot", "num_oov_indices": 2}, (5,), "string", (5,)),
    ("StringLookup", {"vocabulary": V, "output_mode": "tf_idf", "idf_weights": [1.0, 2.0, 3.0]}, (5,), "string",
     (4,)),
    ("StringLookup", {"vocabulary": ["[UNK]", *V], "output_mode": "count"}, (5,), "string", (4,)),
    ("StringLookup", {"output_mode": "count"}, (5,), "string", (None,)),  # no vocabulary yet: unknown depth
    ("StringLookup", {"output_mode": "count", "max_tokens": 10, "pad_to_max_tokens": True}, (5,), "string", (10,)),
    ("StringLookup", {"vocabulary": ["a", "b"], "mask_token": "", "output_mode": "multi_hot"}, (5,), "string", (3,)),
    ("StringLookup", {"vocabulary": V, "invert": True}, (5,), "int64", (5,)),
    ("StringLookup", {"vocabulary": V, "output_mode": "binary"}, (2, 3), "string", (2, 4)),
    ("IntegerLookup", {"vocabulary": [3, 4, 5], "output_mode": "one_hot"}, (), "int64", (4,)),
    ("IntegerLookup", {"vocabulary": [3, 4, 5], "mask_token": 0}, (4,), "int64", (4,)),
    ("IntegerLookup", {"vocabulary": [3, 4, 5], "mask_token": 0, "output_mode": "count"}, (4,), "int64", (4,)),
    ("TextVectorization", {"vocabulary": ["a", "b"], "output_sequence_length": 7}, (1,), "string", (7,)),
    ("TextVectorization", {"vocabulary": ["a", "b"]}, (), "string", (None,)),
    ("TextVectorization", {"vocabulary": ["a", "b"], "output_mode": "multi_hot"}, (1,), "string", (1, 3)),
    ("TextVectorization", {"vocabulary": ["a", "b"], "output_mode": "multi_hot"}, (), "string", (3,)),
    ("TextVectorization", {"vocabulary": ["a", "b"], "output_mode": "count", "split": None}, (), "string", (3,)),
    ("TextVectorization", {"vocabulary": ["a", "b"], "output_mode": "tf_idf", "idf_weights": [1.0, 2.0]}, (),
     "string", (3,)),
    ("TextVectorization", {"max_tokens": 20, "pad_to_max_tokens": True, "output_mode": "one_hot", "split": None},
     (1,), "string", (20,)),
]

ERRORS: list[tuple[str, dict[str, Any], tuple[int | None, ...], str]] = [
    ("StringLookup", {"vocabulary": ["a", "a"]}, (3,), "repeated term"),
    ("StringLookup", {"vocabulary": V, "output_mode": "one_hot", "invert": True}, (3,), "when `invert` is true"),
    ("StringLookup", {"vocabulary": V, "output_mode": "tf_idf"}, (3,), "`idf_weights` must be given"),
    ("StringLookup", {"vocabulary": V, "idf_weights": [1.0, 2.0, 3.0]}, (3,), "only be set if"),
    ("StringLookup", {"vocabulary": V, "max_tokens": 3}, (3,), "larger than `max_tokens`"),
    ("StringLookup", {"output_mode": "count", "pad_to_max_tokens": True}, (3,), "needs `max_tokens`"),
    ("StringLookup", {"output_mode": "hashed"}, (3,), "`output_mode` must be one of"),
    ("IntegerLookup", {"vocabulary": [0, 1], "mask_token": 0}, (3,), "mask token is in the vocabulary"),
    ("TextVectorization", {"output_mode": "count", "output_sequence_length": 4}, (1,), "must not be set"),
]


@pytest.mark.parametrize(("layer", "args", "shape", "dtype", "out"), CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                                               enumerate(CASES)])
def test_lookup_rules(layer: str, args: dict[str, Any], shape: tuple[int | None, ...], dtype: str,
                      out: tuple[int | None, ...]) -> None:
    result = infer(layer, args, [shape])
    assert (result.outputs, result.params, result.macs) == ((out,), 0, 0)


@pytest.mark.parametrize(("layer", "args", "shape", "message"), ERRORS, ids=[f"{c[0]}-{i}" for i, c in
                                                                           enumerate(ERRORS)])
def test_lookup_errors(layer: str, args: dict[str, Any], shape: tuple[int | None, ...], message: str) -> None:
    with pytest.raises(ShapeError, match=message.replace("`", ".")):
        infer(layer, args, [shape])


def test_vocabulary_file_is_not_read() -> None:
    with pytest.raises(NoRule, match="vocabulary file"):
        infer("StringLookup", {"vocabulary": "/etc/passwd", "output_mode": "one_hot"}, [(1,)])


@pytest.mark.keras
@pytest.mark.parametrize(("layer", "args", "shape", "dtype", "out"), CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                                               enumerate(CASES)])
def test_lookup_rules_match_keras(keras_clean: Any, layer: str, args: dict[str, Any],
                                  shape: tuple[int | None, ...], dtype: str, out: tuple[int | None, ...]) -> None:
    keras = keras_clean
    obj = getattr(keras.layers, layer)(**args)
    y = obj(keras.Input(shape, dtype=dtype))
    assert tuple(y.shape[1:]) == out
    assert obj.count_params() == 0


@pytest.mark.keras
@pytest.mark.parametrize(("layer", "args", "shape", "message"), ERRORS, ids=[f"{c[0]}-{i}" for i, c in
                                                                           enumerate(ERRORS)])
def test_keras_rejects_them_too(keras_clean: Any, layer: str, args: dict[str, Any], shape: tuple[int | None, ...],
                                message: str) -> None:
    keras = keras_clean
    dtype = "int64" if layer == "IntegerLookup" else "string"
    with pytest.raises(Exception):  # noqa: B017 - ValueError from the constructor, RuntimeError from the call
        getattr(keras.layers, layer)(**args)(keras.Input(shape, dtype=dtype))


# keras.ops functions that keep the shape of their (first) input
OPS: list[tuple[str, dict[str, Any], list[tuple[int | None, ...]]]] = [
    ("ones_like", {}, [(4, 5)]),
    ("zeros_like", {"dtype": "int32"}, [(None, 3)]),
    ("full_like", {"fill_value": 2.0}, [(4,)]),
    ("cumsum", {"axis": 1}, [(4, 5)]),
    ("cumprod", {"axis": -1}, [(4, 5)]),
    ("sort", {}, [(6,)]),
    ("argsort", {"axis": 1}, [(6, 2)]),
    ("flip", {"axis": 1}, [(3, 2)]),
    ("roll", {"shift": 1, "axis": 1}, [(3, 2)]),
    ("log1p", {}, [(3,)]),
    ("arctan", {}, [(3,)]),
    ("isnan", {}, [(2, 2)]),
    ("tril", {}, [(3, 3)]),
    ("hypot", {}, [(4, 1), (1, 5)]),
    ("bitwise_and", {}, [(4,), (4,)]),
]


def test_ops_without_axis_are_not_guessed() -> None:
    with pytest.raises(NoRule, match="flattened"):
        infer("ops.cumsum", {}, [(4, 5)])


@pytest.mark.parametrize(("op", "args", "inputs"), OPS, ids=[o for o, _, _ in OPS])
def test_shape_keeping_ops(op: str, args: dict[str, Any], inputs: list[tuple[int | None, ...]]) -> None:
    out = infer(f"ops.{op}", args, inputs).outputs[0]
    assert out == (inputs[0] if len(inputs) == 1 else (4, 5) if op == "hypot" else inputs[0])


@pytest.mark.keras
@pytest.mark.parametrize(("op", "args", "inputs"), OPS, ids=[o for o, _, _ in OPS])
def test_shape_keeping_ops_match_keras(keras_clean: Any, op: str, args: dict[str, Any],
                                       inputs: list[tuple[int | None, ...]]) -> None:
    keras = keras_clean
    dtype = "int32" if op.startswith("bitwise") else "float32"
    tensors = [keras.Input(s, dtype=dtype) for s in inputs]
    y = getattr(keras.ops, op)(*tensors, **args)
    assert tuple(y.shape[1:]) == infer(f"ops.{op}", args, inputs).outputs[0]
