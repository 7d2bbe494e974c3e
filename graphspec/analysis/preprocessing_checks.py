"""Preprocessing before training: which nodes `adapt()` fills in, and the `data.augment` layers.

* :func:`adaptable_nodes` names the nodes of a model whose state comes from the training data
  (`Normalization` without `mean`/`variance`, a lookup without `vocabulary`, `Discretization`
  without `bin_boundaries`); the trainer adapts them, and with `train.adapt: false` lint warns
  (GS450) that they stay at their defaults.
* :func:`check_augment` checks `data.augment` like nodes: the layer type from the catalog (GS110,
  GS115), its arguments (GS111-GS113, through :func:`graphspec.spec.layers.check_args`), that it is
  an image preprocessing layer (GS451), and the static shapes through the layer rules of
  :mod:`graphspec.analysis.shapes` (GS300), ending at the model input's shape (GS451).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphspec.analysis import shapes
from graphspec.analysis.graph import Graph, Model
from graphspec.analysis.run_checks import input_names, trained_model_name
from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.spec import catalog, layers, schema
from graphspec.spec.catalog import did_you_mean
from graphspec.spec.source import Source

# Layer type -> the arguments that fix its state (any one of them: nothing to adapt).
ADAPTABLE: dict[str, tuple[str, ...]] = {
    "Normalization": ("mean", "variance"),
    "TextVectorization": ("vocabulary",),
    "StringLookup": ("vocabulary",),
    "IntegerLookup": ("vocabulary",),
    "Discretization": ("bin_boundaries",),
}
_IMAGE_MODULE = "keras.src.layers.preprocessing.image_preprocessing."
# Image layers that need labels or boxes along with the images: not an augmentation of the inputs alone.
_NOT_AUGMENTATION = {"MixUp", "CutMix", "MaxNumBoundingBoxes"}
_EXTRA_AUGMENTATION = {"Rescaling"}
_CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}


def adaptable_nodes(graph: Graph, model: Model) -> list[str]:
    """The nodes of `model` (in topological order) whose state `adapt()` computes from the training data."""
    out = []
    for name in model.nodes:
        node = graph.nodes.get(name)
        spec = node.spec if node is not None else None
        fixed = ADAPTABLE.get(spec.type or "") if isinstance(spec, schema.NodeSpec) else None
        if node is None or fixed is None:
            continue
        if not any(node.args.get(arg) is not None for arg in fixed):
            out.append(name)
    return out


def augment_types() -> list[str]:
    """The layer types `data.augment` takes: Keras's image preprocessing layers (and Rescaling)."""
    return sorted(name for name, entry in catalog.LAYERS.items()
                  if (str(entry.get("module", "")).startswith(_IMAGE_MODULE) and name not in _NOT_AUGMENTATION)
                  or name in _EXTRA_AUGMENTATION)


def check_preprocessing(src: Source, graph: Graph) -> Iterable[Diagnostic]:
    """Nodes left unadapted with `train.adapt: false`, and the `data.augment` layers."""
    name = trained_model_name(graph)
    model = graph.models.get(name) if name else None
    spec = graph.spec
    if model is None or spec.data is None:
        return
    if spec.train is not None and not spec.train.adapt:
        for node in adaptable_nodes(graph, model):
            what = graph.nodes[node].layer_type
            fixed = " and ".join(f"`{a}`" for a in ADAPTABLE[what or ""])
            yield Diagnostic("GS450", Severity.WARNING,
                             f"node `{node}` ({what}) is not adapted (`train.adapt: false`) and the spec does not "
                             f"set its {fixed}: it trains with its default state"
                             + (" (mean 0, variance 1)" if what == "Normalization" else ""),
                             src.location(graph.nodes[node].path, key=True),
                             f"set {fixed} on the node, or leave `train.adapt` on")
    yield from check_augment(src, graph, model)


def check_augment(src: Source, graph: Graph, model: Model) -> Iterable[Diagnostic]:
    """Each `data.augment` entry names a model input, and its layers exist, take their arguments and fit."""
    data = graph.spec.data
    assert data is not None
    ins = input_names(model)
    for input_name, chain in data.augment.items():
        where: PathKey = ("data", "augment", input_name)
        if input_name not in ins:
            yield Diagnostic("GS451", Severity.ERROR,
                             f"`data.augment` names `{input_name}`, which is not an input of model `{model.name}` "
                             f"(its inputs: {', '.join(ins)})", src.location(where, key=True),
                             did_you_mean(input_name, ins))
            continue
        problems = list(_check_layers(src, where, chain))
        yield from problems
        if not problems:
            yield from _check_shapes(src, graph, where, input_name, chain)


def _check_layers(src: Source, where: PathKey, chain: list[Any]) -> Iterable[Diagnostic]:
    allowed = set(augment_types())
    for i, item in enumerate(chain):
        path = where + (i,)
        problem = layers.check_layer_type(item.type)
        if problem is None and item.type not in allowed:
            problem = ("GS451", f"`{item.type}` is not an image preprocessing layer: `data.augment` takes "
                       "Keras's RandomFlip, RandomCrop, RandomRotation, ...", catalog.near(item.type, allowed))
        if problem is not None:
            code, message, hint = problem
            yield Diagnostic(code, Severity.ERROR, message, src.location(path + ("type",)), hint)
            continue
        for p, at_key, (code, message, hint) in layers.check_args(item.type, item.args, path):
            yield Diagnostic(code, Severity.ERROR, message, src.location(p, key=at_key), hint)


def input_shape(graph: Graph, input_name: str) -> tuple[int | None, ...] | None:
    """The shape (without the batch axis) the spec declares for input `input_name`."""
    spec_input = (graph.spec.inputs or {}).get(input_name)
    if spec_input is None:
        return None
    return tuple(spec_input if isinstance(spec_input, list) else spec_input.shape)


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def start_shape(graph: Graph, input_name: str) -> tuple[int | None, ...] | None:
    """A sample's shape before augmentation: the images source's `image_size` and `color_mode` where it
    sets them (a crop may make it larger than the model's input), else the model input's."""
    declared = input_shape(graph, input_name)
    assert graph.spec.data is not None
    source = graph.spec.data.source
    size = getattr(source, "image_size", None)
    if size is None or declared is None or len(declared) != 3:
        return declared
    mode = getattr(source, "color_mode", None)
    channels = _CHANNELS.get(mode, declared[-1]) if isinstance(mode, str) else declared[-1]
    return (int(size[0]), int(size[1]), channels)


def augmented_shape(chain: list[Any], shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """A sample's shape after the `data.augment` layers `chain` (the same where a layer is not modelled)."""
    for item in chain:
        try:
            shape = shapes.infer(item.type, item.args, [shape]).outputs[0]
        except (shapes.NoRule, shapes.ShapeError):
            return shape
    return shape


def _check_shapes(src: Source, graph: Graph, where: PathKey, input_name: str, chain: list[Any]) -> Iterable[Diagnostic]:
    shape = start_shape(graph, input_name)
    if shape is None:
        return
    first = shape
    want = input_shape(graph, input_name) or ()
    for i, item in enumerate(chain):
        path = where + (i,)
        if item.type != "Rescaling" and len(shape) != 3:
            yield Diagnostic("GS451", Severity.ERROR,
                             f"{item.type} augments images of shape (height, width, channels), but input "
                             f"`{input_name}` has samples of shape {_fmt(shape)}",
                             src.location(path, key=True))
            return
        try:
            shape = shapes.infer(item.type, item.args, [shape]).outputs[0]
        except shapes.NoRule:
            return  # not modelled: Keras checks it when the pipeline is built
        except shapes.ShapeError as exc:
            yield Diagnostic("GS300", Severity.ERROR, exc.message, src.location(path, key=True), exc.hint)
            return
    if len(shape) != len(want) or any(w is not None and s is not None and s != w for s, w in zip(shape, want)):
        via = f"{_fmt(first)} augmented to {_fmt(shape)}" if first != shape else _fmt(shape)
        yield Diagnostic("GS451", Severity.ERROR,
                         f"the augmented samples of input `{input_name}` have shape {via}, but the model's input "
                         f"`{input_name}` takes {_fmt(want)}", src.location(where, key=True),
                         f"crop or resize to {list(want[:2])} (e.g. `{{type: RandomCrop, height: {want[0]}, "
                         f"width: {want[1]}}}`), or set the input's shape" if len(want) == 3 else None)
