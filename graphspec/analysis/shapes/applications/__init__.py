"""Static shapes, parameters and multiply-accumulates of the 40 `keras.applications`, in pure Python.

Each family module ports the Keras 3.15 application code (``keras/src/applications/``)
onto :class:`~graphspec.analysis.shapes.applications._net.Net`, whose layers are inferred
by the same rules as a spec's own layers. So an `application:` node is checked like any
other: for any `input_shape`, `include_top`, `pooling`, `classes` and the family's own
arguments (`alpha`, `depth_multiplier`, `minimalistic`, `include_preprocessing`, ...), the
output shape, the parameters (trainable or not) and the layers `node.layer` and `node.*`
refer to. ``tests/test_applications.py`` compares every application with Keras.

The layers Keras names itself (``conv2d_3``) are named as in a fresh Keras session; a
model that created unnamed layers before may see other numbers. Images are
channels_last, Keras's default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from graphspec.analysis.shapes._registry import NoRule, Shape, ShapeError, fmt
from graphspec.analysis.shapes.applications import (  # noqa: F401  (each module registers its builders)
    efficientnets,
    inception,
    mobilenets,
    nasnet_convnext,
    resnets,
)
from graphspec.analysis.shapes.applications._net import BUILDERS, Net, parse_args


@dataclasses.dataclass(frozen=True)
class AppShapes:
    """What lint knows about one application: its output, weights, MACs and layers."""

    output: Shape
    params: int
    trainable_params: int
    macs: int | None
    layers: dict[str, tuple[Shape, ...]]  # model.layers by name: their output shapes
    layer_macs: dict[str, int | None]  # and their multiply-accumulates


def supported_applications() -> frozenset[str]:
    return frozenset(BUILDERS)


def infer_application(name: str, args: Mapping[str, Any], call_input: Shape | None = None) -> AppShapes:
    """``keras.applications.<name>(**args)``, optionally called on a tensor of shape ``call_input``.

    Raises :class:`NoRule` for an application or argument that is not modelled and
    :class:`ShapeError` where Keras would raise.
    """
    family = BUILDERS.get(name)
    if family is None:
        raise NoRule(name)
    a = parse_args(name, args, family.extra)
    net = Net(name)
    try:
        out = family.build(net, a)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, ArithmeticError) as exc:
        # Arguments of an unexpected type: never crash the linter.
        raise NoRule(name, f"could not evaluate it for these arguments: {type(exc).__name__}: {exc}") from exc
    own = net.shapes[0]
    if call_input is not None and tuple(call_input) != own:
        if len(call_input) != len(own) or any(a is not None and b is not None and a != b
                                              for a, b in zip(call_input, own)):
            raise ShapeError(f"{name}: its input has shape {fmt(own)}, it is called on a tensor of shape "
                             f"{fmt(call_input)}", hint="set the application's `input_shape` to the input's shape")
        merged = tuple(b if b is not None else a for a, b in zip(call_input, own))
        net = net.replay(merged)
    params, trainable, macs = net.totals()
    layers: dict[str, tuple[Shape, ...]] = {layer: (net.shapes[tid],) for layer, tid in net.listed.items()}
    return AppShapes(net.shapes[out.id], params, trainable, macs, layers, net.layer_macs())
