"""Static shapes, parameter counts and multiply-accumulates for a whole graph, without TensorFlow.

Walks the graph in topological order, asking :mod:`graphspec.analysis.shapes` for each
layer's output shapes, parameters and multiply-accumulates (MACs), and sums them per model:
parameters once per layer object (a shared layer or a shared sub-model counts once), MACs
once per call. Applications are inferred by :mod:`graphspec.analysis.shapes.applications`,
plugin layers from the `graphspec_shapes` they declare. Then the model's budgets and
`expect:` facts are checked (:mod:`graphspec.analysis.expect`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from graphspec.analysis import expect
from graphspec.analysis import shapes
from graphspec.analysis.graph import Graph, Model, Node, Ref
from graphspec.diagnostics import Diagnostic, Diagnostics, Location, PathKey, Severity
from graphspec.spec import schema
from graphspec.spec.plugins import Declaration
from graphspec.spec.source import Source

Shape = tuple[int | None, ...]

MAX_PARAMS = expect.MAX_PARAMS
MAX_ELEMENTS = 2**31  # elements of one activation, per sample
BYTES_PER_PARAM = 4


# Call arguments that carry masks or states, not the tensors a layer's shape rule is about.
_NOT_DATA = {"mask", "initial_state", "attention_mask", "query_mask", "value_mask", "key_mask", "constants",
             "training"}


@dataclasses.dataclass
class NodeInfo:
    name: str
    type: str
    outputs: tuple[Shape, ...] | None  # None: unknown (no rule upstream)
    params: int | None
    trainable: int | None
    owner: str  # the node whose layer (weights) this node uses
    macs: int | None = None  # multiply-accumulates of this call, per sample
    layers: dict[str, tuple[Shape, ...]] | None = None  # an application's layers: name -> outputs
    layer_macs: dict[str, int | None] | None = None  # and their multiply-accumulates
    batched: bool = True  # False: a constant (an op with no tensor inputs, or ops on constants only)


@dataclasses.dataclass
class ModelInfo:
    name: str
    params: int | None
    trainable: int | None
    output_shapes: dict[str, Shape | None]
    unchecked: list[str]
    macs: int | None = None
    # Multiply-accumulates by the Keras layer they run in (a node, the owner of a shared
    # layer, a called model), summed over its calls; `op:` nodes are not layers.
    layer_macs: dict[str, int | None] = dataclasses.field(default_factory=dict)

    @property
    def non_trainable(self) -> int | None:
        if self.params is None or self.trainable is None:
            return None
        return self.params - self.trainable

    @property
    def weight_bytes(self) -> int | None:
        return None if self.params is None else self.params * BYTES_PER_PARAM


@dataclasses.dataclass
class Analysis:
    nodes: dict[str, NodeInfo]
    models: dict[str, ModelInfo]


def _frozen(value: Any) -> Any:
    """A hashable copy of plain data that tells `1`, `1.0` and `true` apart."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(_frozen(v) for v in value))
    return (type(value).__name__, value)


class _Analyzer:
    def __init__(self, src: Source, graph: Graph, plugins: set[str],
                 declared: Mapping[str, Declaration]) -> None:
        self.src = src
        self.graph = graph
        self.plugins = plugins
        self.declared = declared
        self.diags = Diagnostics()
        self.nodes: dict[str, NodeInfo] = {}
        self.models: dict[str, ModelInfo] = {}
        # shapes.infer is a pure function: a layer repeated with the same arguments on the same
        # shapes (a stack, a block with `repeat:`) is inferred once.
        self.inferred: dict[Any, shapes.LayerShapes] = {}

    def infer(self, layer_type: str, args: dict[str, Any], ins: list[Shape]) -> shapes.LayerShapes:
        key = (layer_type, _frozen(args), tuple(ins))
        found = self.inferred.get(key)
        if found is None:
            found = self.inferred[key] = shapes.infer(layer_type, args, ins)
        return found

    def diag(self, code: str, severity: Severity, message: str, path: PathKey, hint: str | None = None,
             notes: tuple[str, ...] = ()) -> None:
        self.diags.add(Diagnostic(code, severity, message, self.src.location(path, key=True), hint, notes))

    def ref_shape(self, ref: Ref) -> Shape | None:
        """The shape a reference names, or None if it is not known statically."""
        info = self.nodes.get(ref.node)
        if info is None:
            return None
        if ref.layer is not None:
            found = (info.layers or {}).get(ref.layer)
            return found[0] if found else None
        if info.outputs is None or ref.output >= len(info.outputs):
            return None
        return info.outputs[ref.output]

    def input_shapes(self, node: Node) -> list[Shape] | None:
        """Shapes of the tensors the layer computes on (masks and states passed by name are not)."""
        out: list[Shape] = []
        known = True
        for i, ref in enumerate(node.inputs):
            info = self.nodes.get(ref.node)
            if info is not None and info.outputs is not None and ref.layer is None and ref.output >= len(info.outputs):
                self.diag("GS207", Severity.ERROR, f"`{ref}`: node `{ref.node}` has {len(info.outputs)} "
                          f"output{'s' if len(info.outputs) != 1 else ''}", node.path,
                          "outputs count from 0; a recurrent layer has several with `return_state: true`")
                known = False
                continue
            shape = self.ref_shape(ref)
            if shape is None:
                known = False
                continue
            if not (node.style == "dict" and node.input_keys[i] in _NOT_DATA):
                out.append(shape)
        return out if known else None

    def run(self) -> Analysis:
        for name in self.graph.order:
            node = self.graph.nodes[name]
            self.nodes[name] = self.node(node)
        for model in self.graph.models.values():
            self.models[model.name] = self.model(model)
        return Analysis(self.nodes, self.models)

    def node(self, node: Node) -> NodeInfo:
        ns = node.spec
        if node.kind == "input":
            assert isinstance(ns, schema.InputSpec)
            shape = tuple(ns.shape)
            self.budget(node, shape)
            return NodeInfo(node.name, "InputLayer", (shape,), 0, 0, node.name, 0)
        assert isinstance(ns, schema.NodeSpec)
        ins = self.input_shapes(node)
        if node.kind == "model":
            assert ns.model is not None
            return self.model_call(node, ns.model, ins)
        if node.wrapped_model is not None:
            return self.wrapped_model_call(node, node.wrapped_model, ins)
        if node.kind == "application":
            return self.application(node, ns.application or "", ins)
        if node.kind == "op":
            return self.op(node, ns.op or "", ins)
        if ins is not None and node.inputs and not any(self.batched(node)):
            # A layer applied to constants only: Keras computes it once, when the model is built.
            self.diag("GS302", Severity.WARNING, f"`{node.name}` is applied only to constants (its inputs depend "
                      "on no model input): it is not shape-checked statically", node.path,
                      "Keras computes it once, when the model is built; a layer with weights there is an error")
            return NodeInfo(node.name, ns.type or ns.model or "", None, None, None, node.name, batched=False)
        if node.kind == "share":
            owner = self.graph.nodes[node.owner or ""]
            layer_type, args, owner_name = owner.layer_type or "", owner.args, owner.name
        else:
            layer_type, args, owner_name = ns.type or "", node.args, node.name
        unknown = NodeInfo(node.name, layer_type, None, None, None, owner_name)
        if ins is None:
            return unknown
        try:
            if layer_type in self.declared and not shapes.has_rule(layer_type):
                result = self.declared_layer(node, self.declared[layer_type], args, ins)
            else:
                result = self.infer(layer_type, args, ins)
        except shapes.NoRule as exc:
            what = "plugin layer" if layer_type in self.plugins else "layer"
            hint = ("declare its shapes in the plugin (`graphspec_shapes`, docs/lint.md)"
                    if layer_type in self.plugins else "shapes after it are checked when the model is built")
            reason = f" ({exc.reason})" if exc.reason and layer_type in self.declared else ""
            self.diag("GS302", Severity.WARNING, f"`{node.name}`: {what} {layer_type} is not shape-checked "
                      f"statically{reason}", node.path, hint)
            return unknown
        except shapes.ShapeError as exc:
            shown = ", ".join(_fmt(s) for s in ins)
            message = exc.message.removeprefix(f"{layer_type}: ")
            self.diag("GS300", Severity.ERROR, f"`{node.name}` ({layer_type}): {message}", node.path,
                      exc.hint, (f"input shapes: {shown}",))
            return unknown
        except _Reported:
            return unknown
        for shape in result.outputs:
            if not self.budget(node, shape):
                return unknown
        params = result.params if node.kind == "type" else 0
        trainable = result.trainable_params if node.kind == "type" else 0
        return NodeInfo(node.name, layer_type, tuple(result.outputs), params, trainable, owner_name, result.macs)

    def declared_layer(self, node: Node, decl: Declaration, args: dict[str, Any],
                       ins: list[Shape]) -> shapes.LayerShapes:
        """A plugin layer's own `graphspec_shapes`, evaluated without running the plugin."""
        from graphspec.analysis.shapes import declared

        try:
            return declared.evaluate(decl.layer, decl.exprs, {**decl.defaults, **args}, ins, decl.problem)
        except declared.DeclarationError as exc:
            line, col = decl.positions.get(exc.key or "", (decl.line, decl.col))
            where = Location(decl.file, line, col)
            shown = ", ".join(_fmt(s) for s in ins)
            self.diags.add(Diagnostic("GS303", Severity.ERROR, f"{decl.layer}.graphspec_shapes: {exc.message}",
                                      where, exc.hint, (f"used by node `{node.name}` of {self.src.file} "
                                                        f"with input shapes {shown}",)))
            raise _Reported() from None

    def application(self, node: Node, app: str, ins: list[Shape] | None) -> NodeInfo:
        from graphspec.analysis.shapes.applications import infer_application

        unknown = NodeInfo(node.name, app, None, None, None, node.name)
        if node.inputs and ins is not None and len(ins) != 1:
            self.diag("GS300", Severity.ERROR, f"`{node.name}` (application {app}) takes one input, got {len(ins)}",
                      node.path)
            return unknown
        call = ins[0] if node.inputs and ins is not None else None
        try:
            result = infer_application(app, node.args, call)
        except shapes.NoRule as exc:
            reason = f" ({exc.reason})" if exc.reason else ""
            self.diag("GS302", Severity.WARNING, f"`{node.name}`: application {app} is not shape-checked "
                      f"statically{reason}", node.path, "its shapes and parameters are known after `graphspec build`")
            return unknown
        except shapes.ShapeError as exc:
            notes = (f"input shape: {_fmt(call)}",) if call is not None else ()
            self.diag("GS300", Severity.ERROR, f"`{node.name}` ({app}): {exc.message.removeprefix(f'{app}: ')}",
                      node.path, exc.hint, notes)
            return unknown
        if node.inputs and ins is None:  # called on a tensor of unknown shape: only the weights are known
            return NodeInfo(node.name, app, None, result.params, result.trainable_params, node.name)
        # Every activation inside counts against the budget, the largest first.
        largest = max(result.layers.items(), key=lambda item: math.prod(d or 1 for d in item[1][0]))
        if not self.budget(node, largest[1][0], f" (its layer `{largest[0]}`)") or not self.budget(node, result.output):
            return unknown
        return NodeInfo(node.name, app, (result.output,), result.params, result.trainable_params, node.name,
                        result.macs, dict(result.layers), dict(result.layer_macs))

    def batched(self, node: Node) -> list[bool]:
        """For each data input of a node: whether it has a batch axis (constants do not)."""
        return [self.nodes[r.node].batched for i, r in enumerate(node.inputs) if r.node in self.nodes
                and not (node.style == "dict" and node.input_keys[i] in _NOT_DATA)]

    def op(self, node: Node, op: str, ins: list[Shape] | None) -> NodeInfo:
        # keras.ops calls have no weights and count no multiply-accumulates (docs/lint.md).
        if ins is None:
            return NodeInfo(node.name, op, None, 0, 0, node.name, 0)
        batched = self.batched(node)
        try:
            result = shapes.infer(f"ops.{op}", node.args, ins, batched)
        except shapes.NoRule:
            self.diag("GS302", Severity.WARNING, f"`{node.name}`: op {op} is not shape-checked statically",
                      node.path, "shapes after it are checked when the model is built")
            return NodeInfo(node.name, op, None, 0, 0, node.name, 0)
        except shapes.ShapeError as exc:
            shown = ", ".join(_fmt(s) for s in ins)
            self.diag("GS300", Severity.ERROR, f"`{node.name}` (op {op}): {exc.message}", node.path,
                      exc.hint, (f"input shapes: {shown}",))
            return NodeInfo(node.name, op, None, 0, 0, node.name, 0)
        return NodeInfo(node.name, op, tuple(result.outputs), 0, 0, node.name, 0, batched=any(batched))

    def model_call(self, node: Node, model_name: str, ins: list[Shape] | None) -> NodeInfo:
        model = self.graph.models[model_name]
        info = self.models.get(model_name) or self.model(model)
        self.models.setdefault(model_name, info)
        if ins is not None:
            expected = [self.nodes[r.node].outputs for r in model.inputs if r.node in self.nodes]
            if model.spec.inputs_as == "dict" and node.style == "dict":
                by_key = dict(zip(node.input_keys, ins))  # a model that takes a dict: by its keys
                ins = [by_key[r.node] for r in model.inputs if r.node in by_key]
            for got, want in zip(ins, expected):
                if want is None:
                    continue
                if not _compatible(got, want[0]):
                    self.diag("GS300", Severity.ERROR,
                              f"`{node.name}` calls model `{model_name}` with shape {_fmt(got)}, but it expects "
                              f"{_fmt(want[0])}", node.path)
                    return NodeInfo(node.name, "Functional", None, None, None, node.name)
        outs = tuple(info.output_shapes.values())
        known = None if ins is None or any(o is None for o in outs) else tuple(o for o in outs if o is not None)
        macs = info.macs if ins is not None else None
        return NodeInfo(node.name, "Functional", known, info.params, info.trainable, node.name, macs)

    def wrapped_model_call(self, node: Node, model_name: str, ins: list[Shape] | None) -> NodeInfo:
        """TimeDistributed over one of the spec's models: the model on each step (axis 1) of its input."""
        if ins is not None and (len(ins) != 1 or len(ins[0]) < 2):
            self.diag("GS300", Severity.ERROR, f"`{node.name}` (TimeDistributed): expected one input of rank >= 2 "
                      "(without the batch dimension: time steps + the model's input), found "
                      + ", ".join(_fmt(s) for s in ins), node.path)
            return NodeInfo(node.name, "TimeDistributed", None, None, None, node.name)
        inner = self.model_call(node, model_name, None if ins is None else [ins[0][1:]])
        outs = inner.outputs
        if outs is not None and len(outs) != 1:
            self.diag("GS300", Severity.ERROR, f"`{node.name}` (TimeDistributed): model `{model_name}` has "
                      f"{len(outs)} outputs; TimeDistributed takes a model with one", node.path)
            return NodeInfo(node.name, "TimeDistributed", None, inner.params, inner.trainable, node.name)
        steps = None if ins is None else ins[0][0]
        known = None if outs is None or ins is None else ((steps, *outs[0]),)
        macs = None if inner.macs is None or steps is None else inner.macs * steps  # the model once per step
        return NodeInfo(node.name, "TimeDistributed", known, inner.params, inner.trainable, node.name, macs)

    def budget(self, node: Node, shape: Shape, where: str = "") -> bool:
        elements = math.prod(d for d in shape if d is not None) if shape else 1
        if elements > MAX_ELEMENTS:
            self.diag("GS500", Severity.ERROR,
                      f"`{node.name}`{where} produces {elements:,} values per sample (shape {_fmt(shape)}); "
                      f"the limit is {MAX_ELEMENTS:,}", node.path)
            return False
        return True

    def model(self, model: Model) -> ModelInfo:
        params, trainable, unchecked = self.weights(model)
        macs: int | None = 0
        layer_macs: dict[str, int | None] = {}
        for name in model.nodes:
            info = self.nodes.get(name)
            if info is None:
                continue
            macs = _add(macs, info.macs)
            node = self.graph.nodes[name]
            layer = self.layer_name(node, info)
            if layer is not None:
                layer_macs[layer] = _add(layer_macs.get(layer, 0), info.macs)
            if node.kind == "application" and not node.inputs and info.layer_macs:
                # A model over a stand-alone application is built from the application's own layers.
                layer_macs.update(info.layer_macs)
        outputs: dict[str, Shape | None] = {}
        for ref in model.outputs:
            info = self.nodes.get(ref.node)
            if ref.layer == "*":
                if info is not None and info.layers is not None:
                    outputs.update({name: outs[0] for name, outs in info.layers.items()})
                else:
                    outputs["*"] = None
                continue
            outputs[ref.layer or str(ref)] = self.ref_shape(ref)
        result = ModelInfo(model.name, params, trainable, outputs, unchecked, macs, layer_macs)
        path = model.path + ("expect",) if self.graph.spec.models and model.spec.expect is not None else ("expect",)
        expect.check(model, result, self.nodes, path, lambda n: self.graph.nodes[n].path, self.diag)
        return result

    def weights(self, model: Model) -> tuple[int | None, int | None, list[str]]:
        """Parameters (all, trainable) of a model: each layer object once; the nodes not known."""
        counted: set[str] = set()
        params: int | None = 0
        trainable: int | None = 0
        unchecked: list[str] = []
        for name in model.nodes:
            info = self.nodes.get(name)
            if info is None:
                continue
            node = self.graph.nodes[name]
            ns = node.spec
            key = info.owner
            if isinstance(ns, schema.NodeSpec) and ns.model is not None:
                key = name if ns.fresh else f"model:{ns.model}"
            elif node.wrapped_model is not None:  # the wrapped model's weights, shared with its other calls
                key = f"model:{node.wrapped_model}"
            if key in counted:
                continue
            counted.add(key)
            owner_info = self.nodes.get(info.owner, info)
            p, t = (owner_info.params, owner_info.trainable) if node.kind == "share" else (info.params, info.trainable)
            if node.kind == "share" and owner_info.params is None and owner_info.outputs is None:
                p = t = None
            if p is None or t is None:
                unchecked.append(name)
                params = trainable = None
            elif params is not None and trainable is not None:
                params += p
                trainable += t
        return params, trainable, unchecked

    def layer_name(self, node: Node, info: NodeInfo) -> str | None:
        """The name of the Keras layer a node's call runs in (as `graphspec build` names it)."""
        ns = node.spec
        if node.kind == "op":
            return None
        if node.kind == "share":
            return info.owner
        if node.kind == "model" and isinstance(ns, schema.NodeSpec) and not ns.fresh:
            return ns.model
        return node.name


class _Reported(Exception):
    """A problem already reported as a diagnostic."""


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _compatible(a: Shape, b: Shape) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _fmt(shape: Any) -> str:
    return expect.fmt(shape)


def analyze(src: Source, graph: Graph, plugins: set[str],
            declared: Mapping[str, Declaration] | None = None) -> tuple[Analysis, Diagnostics]:
    a = _Analyzer(src, graph, plugins, declared or {})
    return a.run(), a.diags
