"""The `summary` table of a model, from the static analysis: the rows Keras's built model gives, without Keras.

Keras orders a functional model's operations by their depth from the outputs, ties broken by the order a
depth-first walk from the outputs first meets them (`keras/src/ops/function.py`, `map_graph`). This module
walks the spec's graph the same way, over the calls `graphspec build` makes: one operation per layer object
(a shared layer is one, however often it is called), one per non-fresh sub-model, one per `op:` node, named
as Keras names it (`add`, `add_1`, ... in build order).

Where the static analysis cannot give a row exactly (an unknown shape or parameter count, an application's
inner layers, a constant op, a fixed batch size), :func:`static_summary` returns the reason instead, and the
caller builds the model with Keras.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from graphspec.analysis.graph import Graph, Node, Ref
from graphspec.analysis.shapecheck import Analysis, Shape
from graphspec.spec import catalog, schema


@dataclasses.dataclass(frozen=True)
class Row:
    """One operation of a model, as `render.text.model_rows` reads it off a built Keras model."""

    name: str
    type: str
    output_shape: Any  # [None, 4] | [[None, 4], [None, 8]] | None
    params: int
    inputs: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    name: str
    rows: list[Row]
    params: int
    trainable_params: int

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params


class Unsupported(Exception):
    """The static analysis cannot give this table exactly: build the model instead."""


@dataclasses.dataclass
class _Call:
    """One call `graphspec build` makes: a spec node, the operation it runs in, the calls it reads."""

    node: str
    op: str  # the operation's key
    parents: list[str]  # spec nodes whose outputs it takes, in Keras's flattened argument order


def _snake(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class _Summarizer:
    def __init__(self, graph: Graph, analysis: Analysis, built: list[str]) -> None:
        self.graph, self.analysis = graph, analysis
        self.calls: dict[str, _Call] = {}
        self.op_names: dict[str, str] = {}
        self.op_types: dict[str, str] = {}
        uids: dict[str, int] = defaultdict(int)
        for name in built:  # in build order: Keras numbers `op:` nodes as they are created
            call = self._call(graph.nodes[name], uids)
            self.calls[name] = call

    def _call(self, node: Node, uids: dict[str, int]) -> _Call:
        ns = node.spec
        if any(r.layer is not None for r in node.inputs):
            raise Unsupported(f"`{node.name}` reads an application's inner layer")
        parents = [r.node for r in node.inputs]
        if node.style == "dict":  # Keras flattens keyword arguments sorted by key
            parents = [n for _, n in sorted(zip(node.input_keys, parents), key=lambda kv: kv[0])]
        if node.kind == "input":
            assert isinstance(ns, schema.InputSpec)
            if ns.batch_size is not None:
                raise Unsupported(f"input `{node.name}` has a fixed batch size")
            key, name, kind = f"input:{node.name}", node.name, "InputLayer"
        elif node.kind == "type":
            assert isinstance(ns, schema.NodeSpec)
            key, name, kind = node.name, node.name, ns.type or ""
        elif node.kind == "share":
            owner = self.graph.nodes[node.owner or ""]
            key, name, kind = owner.name, owner.name, self.op_types.get(owner.name, owner.layer_type or "")
        elif node.kind == "model":
            assert isinstance(ns, schema.NodeSpec) and ns.model is not None
            if ns.fresh:
                inner = self.graph.models[ns.model].nodes
                if any(self.graph.nodes[n].kind in ("op", "model", "application") for n in inner):
                    raise Unsupported(f"`{node.name}` is a fresh instance of a model with ops or sub-models")
                key, name = node.name, node.name
            else:
                key, name = f"model:{ns.model}", ns.model
            kind = "Functional"
        elif node.kind == "application":
            if not node.inputs:
                raise Unsupported(f"a model over application `{node.name}` is made of its inner layers")
            key, name, kind = node.name, node.name, "Functional"
        else:
            assert isinstance(ns, schema.NodeSpec) and ns.op is not None
            info = self.analysis.nodes.get(node.name)
            cls = (catalog.OPS.get(ns.op) or {}).get("class")
            if cls is None or info is None or not info.batched:
                raise Unsupported(f"op `{node.name}` ({ns.op}) is not a graph operation Keras names statically")
            prefix = _snake(cls)
            name = f"{prefix}_{uids[prefix]}" if prefix in uids else prefix  # keras.src.utils.naming.uniquify
            uids[prefix] += 1
            key, kind = f"op:{node.name}", cls
        self.op_names.setdefault(key, name)
        self.op_types.setdefault(key, kind)
        return _Call(node.name, key, parents)

    # -- Keras's ordering (keras/src/ops/function.py: _build_map, map_graph) ------------------------------
    def order(self, model: str) -> list[str]:
        m = self.graph.models[model]
        inputs = {r.node for r in m.inputs}
        for r in m.inputs:
            if self.graph.nodes[r.node].kind != "input":
                raise Unsupported(f"model `{model}` takes the output of `{r.node}` as an input")
        finished: set[str] = set()
        in_progress: set[str] = set()
        ordered: list[str] = []  # calls from inputs to outputs
        indices: dict[str, int] = {}

        def visit(root: str) -> None:  # depth first, parents in order; a stack, not recursion (deep chains)
            stack: list[tuple[str, Iterator[str]]] = []

            def enter(call_name: str) -> None:
                if call_name in finished:
                    return
                if call_name in in_progress:
                    raise Unsupported(f"a cycle through `{call_name}`")
                call = self.calls[call_name]
                indices.setdefault(call.op, len(indices))
                in_progress.add(call_name)
                parents = call.parents if self.graph.nodes[call_name].kind != "input" else []
                stack.append((call_name, iter(parents)))

            enter(root)
            while stack:
                call_name, parents = stack[-1]
                parent = next(parents, None)
                if parent is not None:
                    enter(parent)
                    continue
                stack.pop()
                in_progress.discard(call_name)
                finished.add(call_name)
                ordered.append(call_name)

        for ref in self._flat_outputs(m.spec, m.outputs):
            visit(ref.node)
        in_graph = set(ordered)
        node_depth: dict[str, int] = {}
        op_depth: dict[str, int] = {}
        for call_name in reversed(ordered):
            depth = node_depth.setdefault(call_name, 0)
            op = self.calls[call_name].op
            depth = max(depth, op_depth.get(op, 0))
            op_depth[op] = depth
            node_depth[call_name] = depth
            for parent in self.calls[call_name].parents:
                if parent in in_graph:
                    node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
        for name in inputs:  # inputs the outputs do not use still belong to the model
            op = self.calls[name].op
            if op not in op_depth:
                op_depth[op], indices[op] = 0, -1
        by_depth: dict[int, list[str]] = defaultdict(list)
        for op, depth in op_depth.items():
            by_depth[depth].append(op)
        return [op for depth in sorted(by_depth, reverse=True)
                for op in sorted(by_depth[depth], key=lambda o: indices[o])]

    @staticmethod
    def _flat_outputs(mspec: schema.ModelSpec, outputs: list[Ref]) -> list[Ref]:
        if mspec.outputs_as == "dict":  # a dict of outputs is flattened in key order
            return [r for _, r in sorted(((str(r), r) for r in outputs), key=lambda kv: kv[0])]
        return outputs

    # -- the rows ----------------------------------------------------------------------------------------
    def shape(self, call_name: str) -> Any:
        info = self.analysis.nodes.get(call_name)
        if info is None or info.outputs is None:
            raise Unsupported(f"the output shape of `{call_name}` is not known statically")
        shapes = [[None, *s] for s in info.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def row(self, op: str) -> Row:
        calls = [c for c in self.calls.values() if c.op == op]
        first = calls[0]
        node = self.graph.nodes[first.node]
        if op.startswith("model:"):
            sub = self.graph.models[op.removeprefix("model:")]
            info = self.analysis.models.get(sub.name)
            if info is None or info.params is None:
                raise Unsupported(f"the parameters of model `{sub.name}` are not known statically")
            params = info.params
            shapes = list(info.output_shapes.values())
            if sub.spec.outputs_as == "dict":
                output: Any = None  # Keras gives a dict, which the table does not show
            elif any(s is None for s in shapes):
                raise Unsupported(f"the output shapes of model `{sub.name}` are not known statically")
            else:
                listed = [[None, *s] for s in shapes if s is not None]
                output = listed[0] if len(listed) == 1 else listed
        else:
            owner = self.analysis.nodes.get(node.owner or node.name) if node.kind == "share" else \
                self.analysis.nodes.get(node.name)
            if owner is None or owner.params is None:
                raise Unsupported(f"the parameters of `{first.node}` are not known statically")
            params = 0 if node.kind in ("input", "op") else owner.params
            output = self.shape(first.node)
        inputs: list[str] = []
        for call in calls:
            for parent in call.parents:
                name = self.op_names[self.calls[parent].op]
                if name not in inputs:
                    inputs.append(name)
        return Row(self.op_names[op], self.op_types[op], output, params, inputs)


def _built(graph: Graph, models: list[str] | None) -> list[str]:
    """The nodes `graphspec build` creates for these models (all, for None), in build order."""
    chosen = [m for m in graph.models.values() if models is None or m.name in models]
    todo = [n for m in chosen for n in m.nodes]
    needed: set[str] = set()
    while todo:
        n = todo.pop()
        if n not in needed:
            needed.add(n)
            todo.extend(graph.deps(n, fresh_internals=False))
    return [n for n in graph.order if n in needed]


def static_summary(graph: Graph, analysis: Analysis, models: list[str] | None) -> list[ModelSummary]:
    """The summary of the named models (every public model, for None), in the order `build` returns them.

    Raises :class:`Unsupported` where only a built model can say.
    """
    summarizer = _Summarizer(graph, analysis, _built(graph, models))
    names = [m.name for m in graph.models.values()
             if (models is None and not m.submodel) or (models is not None and m.name in models)]
    out = []
    for name in names:
        info = analysis.models.get(name)
        if info is None or info.params is None or info.trainable is None:
            raise Unsupported(f"the parameters of model `{name}` are not known statically")
        rows = [summarizer.row(op) for op in summarizer.order(name)]
        out.append(ModelSummary(name, rows, info.params, info.trainable))
    return out


__all__ = ["ModelSummary", "Row", "Shape", "Unsupported", "static_summary"]
