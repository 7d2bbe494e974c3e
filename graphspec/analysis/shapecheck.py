"""Static shapes and parameter counts for a whole graph, without TensorFlow.

Walks the graph in topological order, asking :mod:`graphspec.analysis.shapes` for each
layer's output shapes and parameters, and sums parameters per model (a shared
layer or a shared sub-model counts once). Also checks budgets and the
`expect:` facts a spec states about itself.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from graphspec.spec import schema
from graphspec.analysis import shapes
from graphspec.diagnostics import Diagnostic, Diagnostics, PathKey, Severity
from graphspec.analysis.graph import Graph, Model, Node
from graphspec.spec.source import Source

Shape = tuple[int | None, ...]

# Defaults for budgets a spec does not set; they stop absurd specs before Keras
# tries to allocate memory.
MAX_PARAMS = 10**10
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
    batched: bool = True  # False: a constant (an op with no tensor inputs, or ops on constants only)


@dataclasses.dataclass
class ModelInfo:
    name: str
    params: int | None
    trainable: int | None
    output_shapes: dict[str, Shape | None]
    unchecked: list[str]

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


class _Analyzer:
    def __init__(self, src: Source, graph: Graph, plugins: set[str]) -> None:
        self.src = src
        self.graph = graph
        self.plugins = plugins
        self.diags = Diagnostics()
        self.nodes: dict[str, NodeInfo] = {}
        self.models: dict[str, ModelInfo] = {}

    def diag(self, code: str, severity: Severity, message: str, path: PathKey, hint: str | None = None,
             notes: tuple[str, ...] = ()) -> None:
        self.diags.add(Diagnostic(code, severity, message, self.src.location(path, key=True), hint, notes))

    def input_shapes(self, node: Node) -> list[Shape] | None:
        """Shapes of the tensors the layer computes on (masks and states passed by name are not)."""
        out: list[Shape] = []
        known = True
        for i, ref in enumerate(node.inputs):
            info = self.nodes.get(ref.node)
            if info is None or info.outputs is None or ref.layer is not None:
                known = False
                continue
            if ref.output >= len(info.outputs):
                self.diag("GS207", Severity.ERROR, f"`{ref}`: node `{ref.node}` has {len(info.outputs)} "
                          f"output{'s' if len(info.outputs) != 1 else ''}", node.path,
                          "outputs count from 0; a recurrent layer has several with `return_state: true`")
                known = False
                continue
            if not (node.style == "dict" and node.input_keys[i] in _NOT_DATA):
                out.append(info.outputs[ref.output])
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
            return NodeInfo(node.name, "InputLayer", (shape,), 0, 0, node.name)
        assert isinstance(ns, schema.NodeSpec)
        ins = self.input_shapes(node)
        if node.kind == "model":
            assert ns.model is not None
            return self.model_call(node, ns.model, ins)
        if node.kind == "application":
            self.diag("GS302", Severity.WARNING,
                      f"`{node.name}`: application {ns.application} is not shape-checked statically",
                      node.path, "its shapes and parameters are known after `graphspec build`")
            return NodeInfo(node.name, ns.application or "", None, None, None, node.name)
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
        if ins is None:
            return NodeInfo(node.name, layer_type, None, None, None, owner_name)
        try:
            result = shapes.infer(layer_type, args, ins)
        except shapes.NoRule:
            what = "plugin layer" if layer_type in self.plugins else "layer"
            self.diag("GS302", Severity.WARNING, f"`{node.name}`: {what} {layer_type} is not shape-checked "
                      "statically", node.path, "shapes after it are checked when the model is built")
            return NodeInfo(node.name, layer_type, None, None, None, owner_name)
        except shapes.ShapeError as exc:
            shown = ", ".join(_fmt(s) for s in ins)
            message = exc.message.removeprefix(f"{layer_type}: ")
            self.diag("GS300", Severity.ERROR, f"`{node.name}` ({layer_type}): {message}", node.path,
                      exc.hint, (f"input shapes: {shown}",))
            return NodeInfo(node.name, layer_type, None, None, None, owner_name)
        for shape in result.outputs:
            if not self.budget(node, shape):
                return NodeInfo(node.name, layer_type, None, None, None, owner_name)
        params = result.params if node.kind == "type" else 0
        trainable = result.trainable_params if node.kind == "type" else 0
        return NodeInfo(node.name, layer_type, tuple(result.outputs), params, trainable, owner_name)

    def batched(self, node: Node) -> list[bool]:
        """For each data input of a node: whether it has a batch axis (constants do not)."""
        return [self.nodes[r.node].batched for i, r in enumerate(node.inputs) if r.node in self.nodes
                and not (node.style == "dict" and node.input_keys[i] in _NOT_DATA)]

    def op(self, node: Node, op: str, ins: list[Shape] | None) -> NodeInfo:
        if ins is None:
            return NodeInfo(node.name, op, None, 0, 0, node.name)
        batched = self.batched(node)
        try:
            result = shapes.infer(f"ops.{op}", node.args, ins, batched)
        except shapes.NoRule:
            self.diag("GS302", Severity.WARNING, f"`{node.name}`: op {op} is not shape-checked statically",
                      node.path, "shapes after it are checked when the model is built")
            return NodeInfo(node.name, op, None, 0, 0, node.name)
        except shapes.ShapeError as exc:
            shown = ", ".join(_fmt(s) for s in ins)
            self.diag("GS300", Severity.ERROR, f"`{node.name}` (op {op}): {exc.message}", node.path,
                      exc.hint, (f"input shapes: {shown}",))
            return NodeInfo(node.name, op, None, 0, 0, node.name)
        return NodeInfo(node.name, op, tuple(result.outputs), 0, 0, node.name, batched=any(batched))

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
        return NodeInfo(node.name, "Functional", known, info.params, info.trainable, node.name)

    def budget(self, node: Node, shape: Shape) -> bool:
        elements = math.prod(d for d in shape if d is not None) if shape else 1
        if elements > MAX_ELEMENTS:
            self.diag("GS500", Severity.ERROR,
                      f"`{node.name}` produces {elements:,} values per sample (shape {_fmt(shape)}); "
                      f"the limit is {MAX_ELEMENTS:,}", node.path)
            return False
        return True

    def model(self, model: Model) -> ModelInfo:
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
        outputs: dict[str, Shape | None] = {}
        for ref in model.outputs:
            info = self.nodes.get(ref.node)
            label = ref.layer or str(ref)
            known = info is not None and info.outputs is not None and ref.layer is None and ref.output < len(info.outputs)
            outputs[label] = info.outputs[ref.output] if known and info and info.outputs else None
        result = ModelInfo(model.name, params, trainable, outputs, unchecked)
        self.expectations(model, result)
        return result

    def expectations(self, model: Model, info: ModelInfo) -> None:
        exp = model.expect
        path = model.path + ("expect",) if self.graph.spec.models and model.spec.expect is not None else ("expect",)
        limit = exp.max_params if exp and exp.max_params is not None else MAX_PARAMS
        if info.params is not None and info.params > limit:
            # Name the largest layer; without a budget in the spec, point at it.
            sized = [(self.nodes[n].params or 0, n) for n in model.nodes if n in self.nodes]
            big_params, big = max(sized, default=(0, ""))
            notes = (f"the largest layer is `{big}` ({self.nodes[big].type}) with {big_params:,} parameters",) \
                if big else ()
            where = path if exp and exp.max_params is not None else (
                self.graph.nodes[big].path if big else model.path)
            self.diag("GS500", Severity.ERROR, f"model `{model.name}` has {info.params:,} parameters; the budget "
                      f"is {limit:,}", where, notes=notes)
        if exp is None:
            return
        if exp.max_weight_bytes is not None and info.weight_bytes is not None and info.weight_bytes > exp.max_weight_bytes:
            self.diag("GS500", Severity.ERROR, f"model `{model.name}` needs {info.weight_bytes:,} bytes of weights; "
                      f"the budget is {exp.max_weight_bytes:,}", path + ("max_weight_bytes",))
        for field, actual in (("params", info.params), ("trainable_params", info.trainable)):
            want = getattr(exp, field)
            if want is not None and actual is not None and want != actual:
                self.diag("GS501", Severity.ERROR, f"model `{model.name}` has {actual:,} {field.replace('_', ' ')}, "
                          f"the spec expects {want:,}", path + (field,))
        for out, want_shape in (exp.output_shapes or {}).items():
            if out not in info.output_shapes:
                self.diag("GS501", Severity.ERROR, f"model `{model.name}` has no output `{out}`",
                          path + ("output_shapes", out))
                continue
            got = info.output_shapes[out]
            if got is not None and tuple(got) != tuple(want_shape):
                self.diag("GS501", Severity.ERROR, f"output `{out}` of model `{model.name}` has shape {_fmt(got)}, "
                          f"the spec expects {_fmt(tuple(want_shape))}", path + ("output_shapes", out))


def _compatible(a: Shape, b: Shape) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _fmt(shape: Any) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def analyze(src: Source, graph: Graph, plugins: set[str]) -> tuple[Analysis, Diagnostics]:
    a = _Analyzer(src, graph, plugins)
    return a.run(), a.diags
