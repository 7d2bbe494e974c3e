"""Differential tests: graphspec.analysis.shapes (pure Python) versus real Keras layers.

For every rule family, hypothesis generates constructor arguments and input
shapes; the real Keras layer is built on ``keras.Input`` tensors and the test
asserts that static inference agrees on the output shape(s), on
``count_params()`` and on the trainable split -- or that both agree the
combination is invalid (Keras raises <-> ShapeError).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphspec.analysis.shapes import NoRule, ShapeError, infer

pytestmark = pytest.mark.keras

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@functools.cache
def _keras() -> Any:
    """Keras, imported on first use so that collecting this file stays cheap."""
    return pytest.importorskip("keras")

# GRAPHSPEC_DIFF_EXAMPLES=500 gives a deeper (slower) local run.
SETTINGS = settings(
    max_examples=int(os.environ.get("GRAPHSPEC_DIFF_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

LIST_INPUT_LAYERS = {
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "Attention", "AdditiveAttention",
}


def _make_layer(layer_type: str, args: dict[str, Any]) -> Any:
    kwargs = dict(args)
    for key in ("layer", "backward_layer"):
        sub = kwargs.get(key)
        if isinstance(sub, dict):
            sub = dict(sub)
            kwargs[key] = _make_layer(sub.pop("type"), sub)
    return getattr(_keras().layers, layer_type)(**kwargs)


def run_keras(layer_type: str, args: dict[str, Any], inputs: list[tuple]) -> Any:
    """(outputs, params, trainable) from real Keras, or the exception it raised."""
    keras = _keras()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = _make_layer(layer_type, args)
            tensors = [keras.Input(shape=s) for s in inputs]
            if layer_type in LIST_INPUT_LAYERS:
                out = layer(tensors)
            elif layer_type == "MultiHeadAttention":
                key = tensors[2] if len(tensors) > 2 else None
                out = layer(tensors[0], tensors[1], key=key)
            else:
                out = layer(tensors[0])
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            shapes = []
            for o in outs:
                shape = tuple(o.shape)
                assert shape and shape[0] is None, f"unexpected batch dimension in {shape}"
                shapes.append(shape[1:])
            params = layer.count_params()
            trainable = sum(math.prod(w.shape) for w in layer.trainable_weights)
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 -- Keras rejected the combination
        return e
    return tuple(shapes), params, trainable


def check(layer_type: str, args: dict[str, Any], inputs: list[tuple]) -> None:
    try:
        mine = infer(layer_type, args, inputs)
        mine_err: ShapeError | None = None
    except NoRule as e:
        assert "could not evaluate" not in str(e), f"{layer_type}({args}) on {inputs}: {e}"
        return
    except ShapeError as e:
        mine, mine_err = None, e
    ref = run_keras(layer_type, args, inputs)
    ctx = f"{layer_type}({args}) on {inputs}"
    if isinstance(ref, Exception):
        assert mine_err is not None, (
            f"{ctx}: Keras raised {type(ref).__name__}: {str(ref)[:300]} "
            f"but static inference returned {mine}"
        )
        return
    assert mine_err is None, f"{ctx}: static inference raised {mine_err.message!r}, Keras gave {ref}"
    assert mine is not None
    shapes, params, trainable = ref
    assert mine.outputs == shapes, f"{ctx}: outputs {mine.outputs} != keras {shapes}"
    assert mine.params == params, f"{ctx}: params {mine.params} != keras {params}"
    assert mine.trainable_params == trainable, (
        f"{ctx}: trainable {mine.trainable_params} != keras {trainable}"
    )


# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------

DIMS = [None, *range(1, 13)]


def dim(draw: Any, lo: int = 1, hi: int = 12, none: bool = True) -> int | None:
    choices = ([None] if none else []) + list(range(lo, hi + 1))
    return draw(st.sampled_from(choices))


def shape(draw: Any, rank: int, hi: int = 12, none: bool = True) -> tuple:
    return tuple(dim(draw, 1, hi, none) for _ in range(rank))


def few_none_shape(draw: Any, rank: int, hi: int = 6) -> tuple:
    """A shape that only sometimes contains None dimensions."""
    return shape(draw, rank, hi=hi, none=draw(st.integers(0, 3)) == 0)


def int_or_tuple(draw: Any, n: int, lo: int, hi: int) -> Any:
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return [draw(st.integers(lo, hi)) for _ in range(n)]


def maybe(draw: Any, args: dict[str, Any], key: str, strategy: Any) -> None:
    if draw(st.booleans()):
        args[key] = draw(strategy)


# ---------------------------------------------------------------------------
# core
# ---------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_dense(data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {"units": d(st.integers(1, 8))}
    maybe(d, args, "use_bias", st.booleans())
    maybe(d, args, "trainable", st.booleans())
    check("Dense", args, [shape(d, d(st.integers(0, 3)))])


EINSUM_CASES = [
    ("ab,bc->ac", lambda d: [d(st.integers(1, 6))], ["c", None]),
    ("abc,cd->abd", lambda d: [d(st.sampled_from([None, 3, 4])), d(st.integers(1, 6))],
     ["d", "bd", None]),
    ("...b,bc->...c", lambda d: [d(st.integers(1, 6))], ["c", None]),
    ("abc,cde->abde", lambda d: [None, d(st.integers(1, 4)), d(st.integers(1, 4))],
     ["de", "e", "d", "x", None]),
    ("abc,bcd->ad", lambda d: [d(st.integers(1, 6))], ["d", None]),
    ("ab...,bc->ac...", lambda d: [d(st.integers(1, 6))], ["c", None]),
    ("ab,bc->ac...", lambda d: [d(st.integers(1, 6))], ["c", None]),
]


@SETTINGS
@given(st.data())
def test_einsum_dense(data: Any) -> None:
    d = data.draw
    eq, out_fn, bias_choices = d(st.sampled_from(EINSUM_CASES))
    args: dict[str, Any] = {"equation": eq, "output_shape": out_fn(d)}
    bias = d(st.sampled_from(bias_choices))
    if bias is not None:
        args["bias_axes"] = bias
    check("EinsumDense", args, [shape(d, d(st.integers(1, 3)), hi=6)])


@SETTINGS
@given(st.data())
def test_embedding(data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {"input_dim": d(st.integers(1, 20)), "output_dim": d(st.integers(1, 8))}
    maybe(d, args, "mask_zero", st.booleans())
    check("Embedding", args, [shape(d, d(st.integers(0, 2)))])


IDENTITY_LAYERS = [
    ("Dropout", {"rate": 0.5}),
    ("AlphaDropout", {"rate": 0.2}),
    ("GaussianDropout", {"rate": 0.3}),
    ("GaussianNoise", {"stddev": 0.1}),
    ("ActivityRegularization", {"l1": 0.01}),
    ("Activation", {"activation": "relu"}),
    ("ReLU", {"max_value": 6.0}),
    ("LeakyReLU", {"negative_slope": 0.2}),
    ("ELU", {}),
    ("Softmax", {"axis": -1}),
    ("Identity", {}),
    ("Masking", {"mask_value": 0.0}),
    ("Rescaling", {"scale": 1 / 255}),
    ("SpatialDropout1D", {"rate": 0.1}),
    ("SpatialDropout2D", {"rate": 0.1}),
    ("SpatialDropout3D", {"rate": 0.1}),
    ("UnitNormalization", {}),
    ("UnitNormalization", {"axis": 1}),
    ("UnitNormalization", {"axis": [1, 2]}),
    ("UnitNormalization", {"axis": -4}),
]


@SETTINGS
@given(st.data())
def test_identity_like(data: Any) -> None:
    d = data.draw
    layer_type, args = d(st.sampled_from(IDENTITY_LAYERS))
    check(layer_type, dict(args), [shape(d, d(st.integers(1, 4)), hi=6)])


@SETTINGS
@given(st.data())
def test_prelu(data: Any) -> None:
    d = data.draw
    rank = d(st.integers(1, 3))
    args: dict[str, Any] = {}
    if d(st.booleans()):
        args["shared_axes"] = d(st.sampled_from([1, 2, [1, 2], [2, 3], [1], [4], [0]]))
    check("PReLU", args, [shape(d, rank, hi=6)])


# ---------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------


def conv_common(d: Any, rank: int, causal: bool) -> dict[str, Any]:
    args: dict[str, Any] = {"kernel_size": int_or_tuple(d, rank, 1, 4)}
    pads = ["valid", "same"] + (["causal"] if causal else [])
    maybe(d, args, "padding", st.sampled_from(pads))
    if d(st.booleans()):
        args["strides"] = int_or_tuple(d, rank, 1, 3)
    elif d(st.booleans()):
        args["dilation_rate"] = int_or_tuple(d, rank, 1, 3)
    maybe(d, args, "use_bias", st.booleans())
    if d(st.integers(0, 4)) == 0:
        args["data_format"] = "channels_first"
    return args


def conv_input(d: Any, rank: int) -> list[tuple]:
    in_rank = rank + 1 if d(st.integers(0, 6)) else d(st.sampled_from([rank, rank + 2]))
    hi = 12 if rank < 3 else 7
    return [shape(d, in_rank, hi=hi)]


@pytest.mark.parametrize("rank", [1, 2, 3])
@SETTINGS
@given(st.data())
def test_conv(rank: int, data: Any) -> None:
    d = data.draw
    args = conv_common(d, rank, causal=rank == 1)
    args["filters"] = d(st.integers(1, 8))
    maybe(d, args, "groups", st.integers(1, 3))
    check(f"Conv{rank}D", args, conv_input(d, rank))


@pytest.mark.parametrize("rank", [1, 2, 3])
@SETTINGS
@given(st.data())
def test_conv_transpose(rank: int, data: Any) -> None:
    d = data.draw
    args = conv_common(d, rank, causal=False)
    args["filters"] = d(st.integers(1, 8))
    if d(st.booleans()):
        args["output_padding"] = int_or_tuple(d, rank, 0, 2)
    check(f"Conv{rank}DTranspose", args, conv_input(d, rank))


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("kind", ["SeparableConv", "DepthwiseConv"])
@SETTINGS
@given(st.data())
def test_depthwise_separable(kind: str, rank: int, data: Any) -> None:
    d = data.draw
    args = conv_common(d, rank, causal=False)
    maybe(d, args, "depth_multiplier", st.integers(1, 3))
    if kind == "SeparableConv":
        args["filters"] = d(st.integers(1, 8))
    layer_type = f"{kind}{rank}D"
    check(layer_type, args, conv_input(d, rank))


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["MaxPooling", "AveragePooling"])
@SETTINGS
@given(st.data())
def test_pooling(kind: str, rank: int, data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {}
    if kind == "AveragePooling" or d(st.booleans()):
        args["pool_size"] = int_or_tuple(d, rank, 1, 4)
    if d(st.booleans()):
        args["strides"] = int_or_tuple(d, rank, 1, 3)
    maybe(d, args, "padding", st.sampled_from(["valid", "same"]))
    if d(st.integers(0, 4)) == 0:
        args["data_format"] = "channels_first"
    check(f"{kind}{rank}D", args, conv_input(d, rank))


@pytest.mark.parametrize("rank", [1, 2, 3])
@SETTINGS
@given(st.data())
def test_global_pooling(rank: int, data: Any) -> None:
    d = data.draw
    kind = d(st.sampled_from(["GlobalMaxPooling", "GlobalAveragePooling"]))
    args: dict[str, Any] = {}
    maybe(d, args, "keepdims", st.booleans())
    maybe(d, args, "data_format", st.sampled_from(["channels_last", "channels_first"]))
    check(f"{kind}{rank}D", args, conv_input(d, rank))


# ---------------------------------------------------------------------------
# reshaping
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Flatten", "Reshape", "Permute", "RepeatVector"])
@SETTINGS
@given(st.data())
def test_flatten_reshape_permute_repeat(kind: str, data: Any) -> None:
    d = data.draw
    rank = d(st.integers(0 if kind == "Flatten" else 1, 3))
    in_shape = shape(d, rank, hi=6)
    if kind == "Flatten":
        args: dict[str, Any] = {}
    elif kind == "Reshape":
        n = d(st.integers(1, 3))
        target = [d(st.integers(1, 6)) for _ in range(n)]
        if d(st.booleans()):
            target[d(st.integers(0, n - 1))] = -1
        if d(st.booleans()) and None not in in_shape:
            # a target with the right total size
            size = math.prod(in_shape)
            target = [size] if d(st.booleans()) else [-1, *target[1:]]
        args = {"target_shape": target}
    elif kind == "Permute":
        n = d(st.integers(1, 3))
        args = {"dims": d(st.permutations(list(range(1, n + 1))))}
    else:
        args = {"n": d(st.integers(1, 5))}
    check(kind, args, [in_shape])


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["UpSampling", "ZeroPadding", "Cropping"])
@SETTINGS
@given(st.data())
def test_upsampling_padding_cropping(kind: str, rank: int, data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {}
    if kind == "UpSampling":
        if rank == 1:
            maybe(d, args, "size", st.integers(1, 3))
        elif d(st.booleans()):
            args["size"] = int_or_tuple(d, rank, 1, 3)
    else:
        key = "padding" if kind == "ZeroPadding" else "cropping"
        form = d(st.integers(0, 3))
        if form == 1:
            args[key] = d(st.integers(0, 3))
        elif form == 2:
            args[key] = [d(st.integers(0, 3)) for _ in range(2 if rank == 1 else rank)]
        elif form == 3 and rank > 1:
            args[key] = [[d(st.integers(0, 3)), d(st.integers(0, 3))] for _ in range(rank)]
    if rank > 1 and d(st.integers(0, 4)) == 0:
        args["data_format"] = "channels_first"
    check(f"{kind}{rank}D", args, conv_input(d, rank))


# ---------------------------------------------------------------------------
# normalization
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization"]
)
@SETTINGS
@given(st.data())
def test_normalization_layers(kind: str, data: Any) -> None:
    d = data.draw
    rank = d(st.integers(1, 3))
    args: dict[str, Any] = {}
    if d(st.booleans()):
        if kind in ("LayerNormalization", "RMSNormalization") and d(st.booleans()):
            args["axis"] = d(st.sampled_from([[1, 2], [-1, -2], [1, 3], [2, -1]]))
        else:
            args["axis"] = d(st.integers(-4, 3))
    if kind != "RMSNormalization":
        maybe(d, args, "center", st.booleans())
        maybe(d, args, "scale", st.booleans())
    if kind == "BatchNormalization":
        maybe(d, args, "renorm", st.booleans())
    if kind == "GroupNormalization":
        args["groups"] = d(st.sampled_from([-1, 1, 2, 3, 4]))
    maybe(d, args, "trainable", st.booleans())
    check(kind, args, [shape(d, rank, hi=8)])


@pytest.mark.parametrize("kind", ["Normalization", "CategoryEncoding"])
@SETTINGS
@given(st.data())
def test_preprocessing(kind: str, data: Any) -> None:
    d = data.draw
    rank = d(st.integers(1, 3))
    in_shape = shape(d, rank, hi=6)
    if kind == "Normalization":
        args: dict[str, Any] = {}
        if d(st.booleans()):
            args["axis"] = d(st.sampled_from([None, -1, 1, 2, [1, 2], [-1], 5]))
        if d(st.integers(0, 2)) == 0:
            k = d(st.integers(1, 4))
            args["mean"] = [0.5] * k if d(st.booleans()) else 0.5
            args["variance"] = [1.0] * k if isinstance(args["mean"], list) else 1.0
        check("Normalization", args, [in_shape])
    else:
        args = {"num_tokens": d(st.integers(1, 10))}
        maybe(d, args, "output_mode", st.sampled_from(["one_hot", "multi_hot", "count"]))
        if d(st.booleans()):
            in_shape = (*in_shape[:-1], 1)
        check("CategoryEncoding", args, [in_shape])


@pytest.mark.parametrize(
    "kind",
    ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
     "RandomBrightness", "Resizing", "CenterCrop", "RandomCrop"],
)
@SETTINGS
@given(st.data())
def test_image_preprocessing(kind: str, data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {
        "RandomFlip": {},
        "RandomRotation": {"factor": 0.1},
        "RandomZoom": {"height_factor": 0.1},
        "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.2},
        "RandomContrast": {"factor": 0.2},
        "RandomBrightness": {"factor": 0.2},
    }.get(kind, {"height": d(st.integers(1, 8)), "width": d(st.integers(1, 8))})
    if kind not in ("RandomContrast", "RandomBrightness") and d(st.integers(0, 4)) == 0:
        args["data_format"] = "channels_first"
    rank = 3 if d(st.integers(0, 3)) else d(st.integers(1, 4))
    check(kind, args, [shape(d, rank, hi=8)])


# ---------------------------------------------------------------------------
# merging
# ---------------------------------------------------------------------------


def merge_inputs(d: Any, n: int) -> list[tuple]:
    base = shape(d, d(st.integers(1, 3)), hi=6)
    out = []
    for _ in range(n):
        s = list(base)
        mode = d(st.integers(0, 5))
        if mode == 1 and s:
            s[d(st.integers(0, len(s) - 1))] = 1
        elif mode == 2 and s:
            s[d(st.integers(0, len(s) - 1))] = dim(d, 1, 6)
        elif mode == 3 and s:
            s = s[1:]
        elif mode == 4:
            s = [dim(d, 1, 6), *s]
        out.append(tuple(s))
    return out


@pytest.mark.parametrize(
    "kind", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
)
@SETTINGS
@given(st.data())
def test_merge(kind: str, data: Any) -> None:
    d = data.draw
    n = d(st.integers(1, 3))
    check(kind, {}, merge_inputs(d, n))


@SETTINGS
@given(st.data())
def test_concatenate(data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {}
    maybe(d, args, "axis", st.integers(-3, 3))
    check("Concatenate", args, merge_inputs(d, d(st.integers(1, 3))))


@SETTINGS
@given(st.data())
def test_dot(data: Any) -> None:
    d = data.draw
    axes = d(st.sampled_from([1, 2, -1, [1, 1], [2, 1], [1, 2], [-1, -1], [-1, 1]]))
    check("Dot", {"axes": axes}, merge_inputs(d, 2))


# ---------------------------------------------------------------------------
# recurrent
# ---------------------------------------------------------------------------


def rnn_config(d: Any, kind: str) -> dict[str, Any]:
    args: dict[str, Any] = {"units": d(st.integers(1, 6))}
    maybe(d, args, "return_sequences", st.booleans())
    maybe(d, args, "return_state", st.booleans())
    maybe(d, args, "use_bias", st.booleans())
    if kind == "GRU":
        maybe(d, args, "reset_after", st.booleans())
    if kind == "LSTM":
        maybe(d, args, "unit_forget_bias", st.booleans())
    return args


def rnn_input(d: Any) -> list[tuple]:
    rank = 2 if d(st.integers(0, 6)) else d(st.sampled_from([1, 3]))
    return [shape(d, rank, hi=6)]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@SETTINGS
@given(st.data())
def test_rnn(kind: str, data: Any) -> None:
    d = data.draw
    args = rnn_config(d, kind)
    maybe(d, args, "trainable", st.booleans())
    check(kind, args, rnn_input(d))


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@SETTINGS
@given(st.data())
def test_bidirectional(kind: str, data: Any) -> None:
    d = data.draw
    inner = {"type": kind, **rnn_config(d, kind)}
    args: dict[str, Any] = {"layer": inner}
    maybe(d, args, "merge_mode", st.sampled_from(["concat", "sum", "mul", "ave", None]))
    if d(st.integers(0, 3)) == 0:
        bkind = d(st.sampled_from(["SimpleRNN", "LSTM", "GRU"]))
        back = {"type": bkind, **rnn_config(d, bkind), "go_backwards": d(st.booleans())}
        if d(st.booleans()):
            for k in ("return_sequences", "return_state"):
                back[k] = inner.get(k, False)
        args["backward_layer"] = back
    maybe(d, inner, "trainable", st.booleans())
    maybe(d, args, "trainable", st.booleans())
    check("Bidirectional", args, rnn_input(d))


TD_CHILDREN = [
    ("Dense", lambda d: {"units": d(st.integers(1, 5))}, 1),
    ("Conv1D", lambda d: {"filters": d(st.integers(1, 4)), "kernel_size": d(st.integers(1, 3))}, 2),
    ("Conv2D", lambda d: {"filters": d(st.integers(1, 4)), "kernel_size": d(st.integers(1, 3))}, 3),
    ("MaxPooling1D", lambda d: {}, 2),
    ("MaxPooling2D", lambda d: {}, 3),
    ("Flatten", lambda d: {}, 2),
    ("BatchNormalization", lambda d: {}, 1),
    ("Dropout", lambda d: {"rate": 0.1}, 1),
    ("Embedding", lambda d: {"input_dim": 10, "output_dim": d(st.integers(1, 4))}, 1),
    ("LSTM", lambda d: {"units": d(st.integers(1, 4))}, 2),
    ("GlobalAveragePooling1D", lambda d: {}, 2),
    ("Reshape", lambda d: {"target_shape": d(st.sampled_from([[-1], [2, -1], [4, 1]]))}, 2),
    ("Conv2DTranspose", lambda d: {"filters": 2, "kernel_size": d(st.integers(1, 3)),
                                   "strides": d(st.integers(1, 2))}, 3),
    ("LayerNormalization", lambda d: {"axis": d(st.sampled_from([-1, 1, 2, [1, 2]]))}, 2),
    ("PReLU", lambda d: {}, 2),
]


@SETTINGS
@given(st.data())
def test_time_distributed(data: Any) -> None:
    d = data.draw
    child, make, child_rank = d(st.sampled_from(TD_CHILDREN))
    rank = child_rank + 1 if d(st.integers(0, 6)) else d(st.sampled_from([1, child_rank + 2]))
    args: dict[str, Any] = {"layer": {"type": child, **make(d)}}
    maybe(d, args["layer"], "trainable", st.booleans())
    maybe(d, args, "trainable", st.booleans())
    check("TimeDistributed", args, [few_none_shape(d, rank)])


# ---------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_multi_head_attention(data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {"num_heads": d(st.integers(1, 3)), "key_dim": d(st.integers(1, 4))}
    maybe(d, args, "value_dim", st.integers(1, 4))
    maybe(d, args, "use_bias", st.booleans())
    maybe(d, args, "output_shape", st.sampled_from([3, [2], [2, 3]]))
    maybe(d, args, "attention_axes", st.sampled_from([1, [1], -2, [1, 2], 2, 3, 5, -5, -7, []]))
    maybe(d, args, "use_gate", st.booleans())
    maybe(d, args, "trainable", st.booleans())
    q_rank = d(st.integers(1, 3))
    v_rank = q_rank if d(st.integers(0, 3)) else d(st.integers(1, 3))
    q = few_none_shape(d, q_rank)
    v = few_none_shape(d, v_rank)
    inputs = [q, v]
    if d(st.booleans()):
        k = list(v)
        if k and d(st.booleans()):
            k[-1] = dim(d, 1, 6)
        if len(k) > 1 and d(st.integers(0, 3)) == 0:
            k[0] = dim(d, 1, 6)
        inputs.append(tuple(k))
    check("MultiHeadAttention", args, inputs)


@pytest.mark.parametrize("kind", ["Attention", "AdditiveAttention"])
@SETTINGS
@given(st.data())
def test_attention(kind: str, data: Any) -> None:
    d = data.draw
    args: dict[str, Any] = {}
    maybe(d, args, "use_scale", st.booleans())
    if kind == "Attention":
        maybe(d, args, "score_mode", st.sampled_from(["dot", "concat"]))
    rank = d(st.integers(1, 3))
    n = d(st.integers(2, 3))
    check(kind, args, [shape(d, rank, hi=6) for _ in range(n)])
