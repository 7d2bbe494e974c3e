"""Unit tests for graphspec.analysis.shapes (pure Python, no TensorFlow/Keras import)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from graphspec.analysis.shapes import (
    LayerShapes,
    NoRule,
    ShapeError,
    has_rule,
    infer,
    supported_layers,
)

# (layer_type, args, inputs, outputs, params, trainable_params)
# Every row was checked against Keras 3.15 (layer.count_params() / output shapes).
CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]], tuple[Any, ...], int, int]] = [
    # core
    ("InputLayer", {"shape": [28, 28, 1]}, [], ((28, 28, 1),), 0, 0),
    ("InputLayer", {"shape": [None, 8]}, [], ((None, 8),), 0, 0),
    ("Dense", {"units": 10}, [(20,)], ((10,),), 210, 210),
    ("Dense", {"units": 10, "use_bias": False}, [(5, 20)], ((5, 10),), 200, 200),
    ("Dense", {"units": 4, "trainable": False}, [(None, 3)], ((None, 4),), 16, 0),
    ("EinsumDense", {"equation": "abc,cd->abd", "output_shape": [None, 16], "bias_axes": "d"},
     [(10, 8)], ((None, 16),), 144, 144),
    ("Embedding", {"input_dim": 1000, "output_dim": 16, "mask_zero": True}, [(None,)],
     ((None, 16),), 16000, 16000),
    ("Embedding", {"input_dim": 10, "output_dim": 4}, [()], ((4,),), 40, 40),
    # convolutions
    ("Conv2D", {"filters": 64, "kernel_size": 3}, [(32, 32, 3)], ((30, 30, 64),), 1792, 1792),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "padding": "same"}, [(32, 32, 3)],
     ((32, 32, 64),), 1792, 1792),
    ("Conv2D", {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
     [(33, 32, 3)], ((17, 16, 8),), 224, 224),
    ("Conv2D", {"filters": 8, "kernel_size": [1, 5], "groups": 2, "use_bias": False},
     [(None, 12, 4)], ((None, 8, 8),), 80, 80),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
     [(10, 2)], ((10, 4),), 28, 28),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "strides": 2}, [(None, 2)], ((None, 4),), 28, 28),
    ("Conv3D", {"filters": 2, "kernel_size": 2}, [(4, 5, 6, 1)], ((3, 4, 5, 2),), 18, 18),
    ("Conv2DTranspose", {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
     [(8, 8, 16)], ((16, 16, 8),), 1160, 1160),
    ("Conv2DTranspose", {"filters": 1, "kernel_size": 3, "strides": 2}, [(8, 8, 1)],
     ((17, 17, 1),), 10, 10),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 4, "strides": 3, "padding": "same",
                         "output_padding": 1}, [(5, 3)], ((13, 2),), 26, 26),
    ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2}, [(10, 10, 4)],
     ((8, 8, 8),), 80, 80),
    ("SeparableConv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}, [(10, 10, 4)],
     ((10, 10, 16),), 116, 116),
    ("SeparableConv1D", {"filters": 3, "kernel_size": 2, "depth_multiplier": 2}, [(6, 2)],
     ((5, 3),), 23, 23),
    # pooling
    ("MaxPooling2D", {}, [(32, 32, 3)], ((16, 16, 3),), 0, 0),
    ("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, [(7, None, 3)],
     ((4, None, 3),), 0, 0),
    ("AveragePooling1D", {"pool_size": 2}, [(9, 3)], ((4, 3),), 0, 0),
    ("MaxPooling3D", {"pool_size": [1, 2, 2]}, [(4, 8, 8, 2)], ((4, 4, 4, 2),), 0, 0),
    ("GlobalAveragePooling2D", {}, [(7, 7, 512)], ((512,),), 0, 0),
    ("GlobalMaxPooling1D", {"keepdims": True}, [(None, 5)], ((1, 5),), 0, 0),
    # reshaping
    ("Flatten", {}, [(4, 4, 3)], ((48,),), 0, 0),
    ("Flatten", {}, [(None, 4)], ((None,),), 0, 0),
    ("Reshape", {"target_shape": [4, 4, 1]}, [(16,)], ((4, 4, 1),), 0, 0),
    ("Reshape", {"target_shape": [-1, 2]}, [(3, 4)], ((6, 2),), 0, 0),
    ("Reshape", {"target_shape": [-1, 2]}, [(None, 4)], ((None, 2),), 0, 0),
    ("Permute", {"dims": [2, 1]}, [(10, 64)], ((64, 10),), 0, 0),
    ("RepeatVector", {"n": 3}, [(32,)], ((3, 32),), 0, 0),
    ("UpSampling1D", {}, [(5, 2)], ((10, 2),), 0, 0),
    ("UpSampling2D", {"size": [2, 3]}, [(4, None, 2)], ((8, None, 2),), 0, 0),
    ("ZeroPadding2D", {"padding": [[1, 2], [3, 4]]}, [(10, 10, 3)], ((13, 17, 3),), 0, 0),
    ("ZeroPadding2D", {}, [(10, 10, 3)], ((12, 12, 3),), 0, 0),
    ("ZeroPadding1D", {"padding": [0, 2]}, [(5, 1)], ((7, 1),), 0, 0),
    ("Cropping2D", {"cropping": [1, 2]}, [(10, 10, 3)], ((8, 6, 3),), 0, 0),
    ("Cropping1D", {}, [(5, 2)], ((3, 2),), 0, 0),
    ("Cropping3D", {}, [(4, 4, 4, 1)], ((2, 2, 2, 1),), 0, 0),
    # normalization / activations / regularization
    ("BatchNormalization", {}, [(32, 32, 64)], ((32, 32, 64),), 256, 128),
    ("BatchNormalization", {"axis": 1, "center": False}, [(8, 5)], ((8, 5),), 24, 8),
    ("LayerNormalization", {}, [(10, 64)], ((10, 64),), 128, 128),
    ("LayerNormalization", {"axis": [1, 2]}, [(3, 4)], ((3, 4),), 24, 24),
    ("GroupNormalization", {"groups": 4}, [(8, 8, 16)], ((8, 8, 16),), 32, 32),
    ("RMSNormalization", {}, [(5, 6)], ((5, 6),), 6, 6),
    ("UnitNormalization", {}, [(5,)], ((5,),), 0, 0),
    ("Dropout", {"rate": 0.5}, [(None, 7)], ((None, 7),), 0, 0),
    ("SpatialDropout2D", {"rate": 0.1}, [(4, 4, 2)], ((4, 4, 2),), 0, 0),
    ("Activation", {"activation": "relu"}, [(3,)], ((3,),), 0, 0),
    ("Softmax", {}, [(3, 2)], ((3, 2),), 0, 0),
    ("LeakyReLU", {"negative_slope": 0.1}, [(3,)], ((3,),), 0, 0),
    ("PReLU", {}, [(10, 3)], ((10, 3),), 30, 30),
    ("PReLU", {"shared_axes": [1, 2]}, [(8, 8, 3)], ((8, 8, 3),), 3, 3),
    ("Rescaling", {"scale": 0.00392156862745098}, [(28, 28, 1)], ((28, 28, 1),), 0, 0),
    ("Normalization", {}, [(10, 3)], ((10, 3),), 7, 0),
    ("Normalization", {"mean": 0.5, "variance": 0.25}, [(10, 3)], ((10, 3),), 0, 0),
    ("CategoryEncoding", {"num_tokens": 5, "output_mode": "one_hot"}, [(1,)], ((5,),), 0, 0),
    ("CategoryEncoding", {"num_tokens": 5}, [(3,)], ((5,),), 0, 0),
    ("Resizing", {"height": 224, "width": 224}, [(None, None, 3)], ((224, 224, 3),), 0, 0),
    ("CenterCrop", {"height": 2, "width": 3}, [(4, 5, 3)], ((2, 3, 3),), 0, 0),
    ("RandomFlip", {"mode": "horizontal"}, [(32, 32, 3)], ((32, 32, 3),), 0, 0),
    ("RandomRotation", {"factor": 0.1}, [(32, 32, 3)], ((32, 32, 3),), 0, 0),
    # merging
    ("Add", {}, [(32, 32, 64), (32, 32, 64)], ((32, 32, 64),), 0, 0),
    ("Add", {}, [(4, 1, 3), (5, 3)], ((4, 5, 3),), 0, 0),
    ("Multiply", {}, [(None, 3), (4, 3)], ((None, 3),), 0, 0),
    ("Average", {}, [(3,), (3,), (3,)], ((3,),), 0, 0),
    ("Subtract", {}, [(8,), (8,)], ((8,),), 0, 0),
    ("Concatenate", {}, [(4, 3), (4, 5)], ((4, 8),), 0, 0),
    ("Concatenate", {"axis": 1}, [(4, 3), (None, 3), (2, 3)], ((None, 3),), 0, 0),
    ("Concatenate", {"axis": 1}, [(4, 3), (2, 3)], ((6, 3),), 0, 0),
    ("Dot", {"axes": 1}, [(5,), (5,)], ((1,),), 0, 0),
    ("Dot", {"axes": [2, 2]}, [(3, 4), (6, 4)], ((3, 6),), 0, 0),
    # recurrent
    ("SimpleRNN", {"units": 8}, [(None, 4)], ((8,),), 104, 104),
    ("LSTM", {"units": 64, "return_sequences": True}, [(10, 32)], ((10, 64),), 24832, 24832),
    ("LSTM", {"units": 4, "return_state": True}, [(None, 3)], ((4,), (4,), (4,)), 128, 128),
    ("GRU", {"units": 4}, [(7, 3)], ((4,),), 108, 108),
    ("GRU", {"units": 4, "reset_after": False}, [(7, 3)], ((4,),), 96, 96),
    ("GRU", {"units": 4, "return_state": True, "return_sequences": True}, [(7, 3)],
     ((7, 4), (4,)), 108, 108),
    ("Bidirectional", {"layer": {"type": "LSTM", "units": 64, "return_sequences": True}},
     [(10, 32)], ((10, 128),), 49664, 49664),
    ("Bidirectional", {"layer": {"type": "GRU", "units": 4}, "merge_mode": "sum"}, [(7, 3)],
     ((4,),), 216, 216),
    ("Bidirectional", {"layer": {"type": "GRU", "units": 4}, "merge_mode": None}, [(7, 3)],
     ((4,), (4,)), 216, 216),
    ("Bidirectional", {"layer": {"type": "LSTM", "units": 2, "return_state": True}}, [(5, 3)],
     ((4,), (2,), (2,), (2,), (2,)), 96, 96),
    ("Bidirectional", {"layer": {"type": "SimpleRNN", "units": 2},
                       "backward_layer": {"type": "SimpleRNN", "units": 2,
                                          "go_backwards": True}},
     [(5, 3)], ((4,),), 24, 24),
    ("TimeDistributed", {"layer": {"type": "Dense", "units": 8}}, [(10, 16)], ((10, 8),),
     136, 136),
    ("TimeDistributed", {"layer": {"type": "Conv2D", "filters": 4, "kernel_size": 3}},
     [(5, 8, 8, 1)], ((5, 6, 6, 4),), 40, 40),
    ("TimeDistributed", {"layer": {"type": "BatchNormalization"}}, [(5, 3)], ((5, 3),), 12, 6),
    # attention
    ("MultiHeadAttention", {"num_heads": 8, "key_dim": 8}, [(10, 64), (20, 64)],
     ((10, 64),), 16640, 16640),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 4, "value_dim": 3, "output_shape": 5,
                            "use_bias": False}, [(6, 7), (9, 8), (9, 2)], ((6, 5),), 150, 150),
    ("Attention", {}, [(4, 3), (5, 6)], ((4, 6),), 0, 0),
    ("Attention", {"use_scale": True, "score_mode": "concat"}, [(4, 3), (5, 3)], ((4, 3),),
     2, 2),
    ("AdditiveAttention", {}, [(4, 3), (5, 3)], ((4, 3),), 3, 3),
]


@pytest.mark.parametrize(
    "layer_type,args,inputs,outputs,params,trainable",
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_known_cases(
    layer_type: str,
    args: dict[str, Any],
    inputs: list[tuple[Any, ...]],
    outputs: tuple[Any, ...],
    params: int,
    trainable: int,
) -> None:
    res = infer(layer_type, args, inputs)
    # MACs have their own table (tests/test_macs.py).
    assert res == LayerShapes(outputs=outputs, params=params, trainable_params=trainable, macs=res.macs)
    assert res.non_trainable_params == params - trainable


# (layer_type, args, inputs, substrings expected in the message)
ERROR_CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]], list[str]]] = [
    ("Add", {}, [(32, 32, 64), (10, 10, 64)],
     ["Add: input shapes (32, 32, 64) and (10, 10, 64) do not match", "Received:"]),
    ("Subtract", {}, [(3,), (3,), (3,)], ["exactly 2 input"]),
    ("Conv2D", {"filters": 8, "kernel_size": 5}, [(3, 3, 1)],
     ["zero or negative", "(3, 3, 1)", "kernel_size=(5, 5)"]),
    ("Conv2D", {"filters": 8, "kernel_size": 3}, [(10, 10)], ["rank 3", "found rank 2"]),
    ("Conv2D", {"filters": 8, "kernel_size": 3}, [(10, 10, None)], ["channel"]),
    ("Conv2D", {"filters": 8, "kernel_size": 3, "groups": 3}, [(10, 10, 4)], ["groups"]),
    ("Conv2D", {"filters": 8, "kernel_size": 3, "strides": 2, "dilation_rate": 2},
     [(10, 10, 4)], ["dilation_rate"]),
    ("Conv2DTranspose", {"filters": 1, "kernel_size": 3, "strides": 2, "output_padding": 2},
     [(4, 4, 1)], ["output_padding"]),
    ("MaxPooling2D", {"pool_size": 3}, [(2, 2, 1)], ["zero or negative", "(2, 2, 1)"]),
    ("MaxPooling2D", {}, [(8, 8)], ["rank 3"]),
    ("AveragePooling2D", {}, [(8, 8, 1)], ["pool_size"]),
    ("Reshape", {"target_shape": [5, 5]}, [(4, 4)],
     ["total size", "(4, 4)", "(5, 5)"]),
    ("Reshape", {"target_shape": [-1, 3]}, [(4, 4)], ["cannot be divided"]),
    ("Reshape", {"target_shape": [-1, -1]}, [(4, 4)], ["at most one"]),
    ("Concatenate", {}, [(4, 3), (5, 3)],
     ["matching shapes except for the concatenation axis", "(4, 3)", "(5, 3)"]),
    ("Concatenate", {}, [(4, 3), (3,)], ["same rank"]),
    ("Dot", {"axes": 1}, [(4,), (5,)], ["axis values 4", "5"]),
    ("Dense", {"units": 3}, [(None,)], ["None"]),
    ("Dense", {"units": 3}, [()], ["rank >= 1"]),
    ("LSTM", {"units": 3}, [(10,)], ["rank 2"]),
    ("BatchNormalization", {"axis": 3}, [(4, 4)], ["out of bounds"]),
    ("GroupNormalization", {}, [(8, 8, 16)], ["groups"]),
    ("Permute", {"dims": [1, 3]}, [(2, 3)], ["permutation"]),
    ("Cropping1D", {"cropping": 3}, [(6, 1)], ["smaller than the input length"]),
    ("Embedding", {"input_dim": 0, "output_dim": 3}, [(4,)], ["input_dim"]),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2}, [(4, 3), (5, 3), (6, 3)],
     ["value", "key"]),
    ("Bidirectional", {"layer": {"type": "LSTM", "units": 2, "go_backwards": True}},
     [(5, 3)], ["go_backwards"]),
    ("TimeDistributed", {"layer": {"type": "Dense", "units": 2}}, [(5,)], ["rank >= 2"]),
    ("Dropout", {"rate": 1.5}, [(3,)], ["rate"]),
]


@pytest.mark.parametrize(
    "layer_type,args,inputs,fragments",
    ERROR_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)],
)
def test_shape_errors(
    layer_type: str, args: dict[str, Any], inputs: list[tuple[Any, ...]], fragments: list[str]
) -> None:
    with pytest.raises(ShapeError) as excinfo:
        infer(layer_type, args, inputs)
    err = excinfo.value
    assert err.message == str(err)
    assert err.message.startswith(f"{layer_type}:")
    for fragment in fragments:
        assert fragment in err.message


def test_shape_error_has_hint() -> None:
    with pytest.raises(ShapeError) as excinfo:
        infer("Conv2D", {"filters": 8, "kernel_size": 5}, [(3, 3, 1)])
    assert excinfo.value.hint and "padding" in excinfo.value.hint
    plain = ShapeError("boom")
    assert plain.message == "boom" and plain.hint is None


@pytest.mark.parametrize(
    "layer_type,args,inputs",
    [
        ("Lambda", {"function": "x"}, [(3,)]),
        ("ConvLSTM2D", {"filters": 2, "kernel_size": 3}, [(3, 8, 8, 1)]),
        ("Dense", {"units": 3, "some_future_arg": 1}, [(3,)]),
        ("Dense", {"units": 3, "lora_rank": 4}, [(3,)]),
        ("Dense", {"units": 3, "dtype": "int8_from_float32"}, [(3,)]),
        ("LSTM", {"units": 3, "stateful": True}, [(5, 3)]),
        ("Bidirectional", {"layer": {"type": "Conv1D", "filters": 2, "kernel_size": 2}}, [(5, 3)]),
        ("TimeDistributed", {"layer": {"type": "MaxPooling2D"}}, [(5, 4, 3)]),
        ("TimeDistributed", {"layer": {"type": "LSTM", "units": 2, "return_state": True}},
         [(5, 4, 3)]),
        ("Dot", {"axes": 0}, [(3,), (3,)]),
        # arguments of an unexpected type never crash the linter
        ("ReLU", {"max_value": "big"}, [(3,)]),
    ],
)
def test_no_rule(layer_type: str, args: dict[str, Any], inputs: list[tuple[Any, ...]]) -> None:
    with pytest.raises(NoRule) as excinfo:
        infer(layer_type, args, inputs)
    assert excinfo.value.layer_type == layer_type
    assert not isinstance(excinfo.value, (KeyError, ShapeError))


def test_has_rule_and_supported_layers() -> None:
    layers = supported_layers()
    assert isinstance(layers, frozenset)
    required = {
        "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
        "Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D",
        "DepthwiseConv1D", "DepthwiseConv2D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
        "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D",
        "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling1D",
        "GlobalAveragePooling2D", "GlobalAveragePooling3D", "Flatten", "Reshape", "Permute",
        "RepeatVector", "Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional",
        "TimeDistributed", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
        "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
        "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
        "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Identity", "Add",
        "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
        "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
        "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "MultiHeadAttention",
        "Attention", "AdditiveAttention", "Rescaling", "Normalization", "CategoryEncoding",
        "EinsumDense",
    }
    assert required <= layers
    for name in required:
        assert has_rule(name)
    assert not has_rule("Lambda")
    assert not has_rule("NotALayer")


def test_aliases() -> None:
    assert infer("MaxPool2D", {}, [(4, 4, 1)]).outputs == ((2, 2, 1),)
    assert infer("Convolution1D", {"filters": 2, "kernel_size": 2}, [(4, 1)]).outputs == ((3, 2),)


def test_inputs_as_lists_and_nested_class_name_config() -> None:
    res = infer("Dense", {"units": 2}, [[None, 3]])  # type: ignore[list-item]
    assert res.outputs == ((None, 2),)
    res = infer(
        "TimeDistributed",
        {"layer": {"class_name": "Dense", "config": {"units": 2}}},
        [(4, 3)],
    )
    assert res.outputs == ((4, 2),) and res.params == 8


def test_nested_trainable_flags() -> None:
    res = infer(
        "Bidirectional",
        {"layer": {"type": "SimpleRNN", "units": 2, "trainable": False}},
        [(5, 3)],
    )
    assert (res.params, res.trainable_params) == (24, 0)
    res = infer("TimeDistributed", {"layer": {"type": "Dense", "units": 2}, "trainable": False},
                [(4, 3)])
    assert (res.params, res.trainable_params) == (8, 0)


def test_none_dims_propagate() -> None:
    assert infer("Conv1D", {"filters": 2, "kernel_size": 3}, [(None, 4)]).outputs == ((None, 2),)
    assert infer("Flatten", {}, [(None, 3)]).outputs == ((None,),)
    assert infer("LSTM", {"units": 2, "return_sequences": True}, [(None, 3)]).outputs == (
        (None, 2),
    )
    assert infer("Concatenate", {"axis": 1}, [(None, 3), (4, 3)]).outputs == ((None, 3),)
    # Keras quirk kept: a None merged with a concrete size gives None.
    assert infer("Add", {}, [(None, 3), (5, 3)]).outputs == ((None, 3),)


def test_import_is_light() -> None:
    code = (
        "import graphspec.analysis.shapes, sys; "
        "bad = sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('tensorflow', 'keras', 'numpy')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
