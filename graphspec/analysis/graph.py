"""Names resolved, edges checked, cycles found, models cut out of the graph.

The result, :class:`Graph`, is everything later stages need: each node with its
resolved input references, a topological order that also respects sub-model
calls, and each model with its inputs, outputs and the nodes it contains.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from graphspec.spec import catalog
from graphspec.spec import schema
from graphspec.spec.catalog import did_you_mean
from graphspec.diagnostics import Diagnostic, Diagnostics, PathKey, Severity
from graphspec.spec.source import Source

Kind = Literal["input", "type", "share", "model", "application", "op"]
Style = Literal["none", "single", "list", "positional", "dict"]


@dataclasses.dataclass(frozen=True)
class Ref:
    """A reference to a node's output: `node`, `node.N` (its N-th output, for layers
    with several, e.g. an LSTM with `return_state`), `node.layer` (an intermediate
    layer of an application) or `node.*` (all of them)."""

    node: str
    layer: str | None = None
    index: int | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        node, _, suffix = text.partition(".")
        if suffix.isdigit():
            return cls(node, None, int(suffix))
        return cls(node, suffix or None)

    @property
    def output(self) -> int:
        """Which output of the node (0 unless `node.N`)."""
        return self.index or 0

    def __str__(self) -> str:
        if self.index is not None:
            return f"{self.node}.{self.index}"
        return self.node if self.layer is None else f"{self.node}.{self.layer}"


@dataclasses.dataclass
class Node:
    name: str
    kind: Kind
    spec: schema.NodeSpec | schema.InputSpec
    path: PathKey
    style: Style = "none"
    inputs: list[Ref] = dataclasses.field(default_factory=list)
    input_keys: list[str] = dataclasses.field(default_factory=list)  # for style "dict"
    owner: str | None = None  # share: the node whose layer is called

    @property
    def layer_type(self) -> str | None:
        if isinstance(self.spec, schema.NodeSpec):
            if self.spec.type is not None:
                return self.spec.type
            if self.spec.application is not None:
                return self.spec.application
            if self.spec.op is not None:
                return self.spec.op
        return None

    @property
    def args(self) -> dict[str, Any]:
        return self.spec.args if isinstance(self.spec, schema.NodeSpec) else {}

    @property
    def wrapped_model(self) -> str | None:
        """The model a wrapper layer wraps (`{type: TimeDistributed, layer: {model: NAME}}`), else None."""
        return wrapped_model(self.spec) if isinstance(self.spec, schema.NodeSpec) else None


def wrapped_model(ns: schema.NodeSpec) -> str | None:
    """The model named by a node's `layer: {model: NAME}` (a wrapper over one of the spec's models), else None."""
    layer = (ns.model_extra or {}).get("layer") if ns.type is not None else None  # (no copy: once per use)
    if isinstance(layer, dict) and set(layer) == {"model"} and isinstance(layer["model"], str):
        return layer["model"]
    return None


@dataclasses.dataclass
class Model:
    name: str
    spec: schema.ModelSpec
    path: PathKey
    inputs: list[Ref]
    outputs: list[Ref]
    nodes: list[str]  # the nodes it contains, in topological order
    compile: schema.CompileSpec | None
    expect: schema.ExpectSpec | None

    @property
    def submodel(self) -> bool:
        return self.spec.submodel


@dataclasses.dataclass
class Graph:
    spec: schema.Spec
    nodes: dict[str, Node]
    order: list[str]
    models: dict[str, Model]

    def public_models(self) -> list[Model]:
        return [m for m in self.models.values() if not m.submodel]

    def deps(self, name: str, *, fresh_internals: bool = True) -> list[str]:
        """What must exist before `name` is built: its inputs, the layer it shares, and
        (for a `model:` node) the nodes that define the called model."""
        node = self.nodes[name]
        out = [r.node for r in node.inputs if r.node in self.nodes]
        if node.owner and node.owner in self.nodes:
            out.append(node.owner)
        ns = node.spec
        called = node.wrapped_model or (ns.model if isinstance(ns, schema.NodeSpec) and (
            fresh_internals or not ns.fresh) else None)
        if called is not None:
            mspec = (self.spec.models or {}).get(called)
            if mspec is not None:
                out.extend(r.node for r in map(Ref.parse, _refs(mspec.outputs) + _refs(mspec.inputs))
                           if r.node in self.nodes)
        return out

    def pick_model(self, requested: str | None, command: str, default: str | None = None) -> str:
        """The model a command acts on: `requested`, else `default`, else the only public model."""
        from graphspec.errors import UsageError

        public = [m.name for m in self.public_models()]
        name = requested or default
        if name is not None:
            if name not in self.models:
                hint = did_you_mean(name, list(self.models))
                raise UsageError(f"no model named {name!r}; the spec defines {', '.join(self.models)}"
                                 + (f" ({hint})" if hint else ""))
            return name
        if len(public) != 1:
            raise UsageError(f"the spec defines several models ({', '.join(public)}); choose one with "
                             f"`graphspec {command} --model NAME`")
        return public[0]

    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            for ref in node.inputs:
                if ref.node in out:
                    out[ref.node].append(node.name)
        return out


def _refs(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class _Resolver:
    def __init__(self, src: Source, spec: schema.Spec) -> None:
        self.src = src
        self.spec = spec
        self.diags = Diagnostics()
        self.nodes: dict[str, Node] = {}

    def error(self, code: str, message: str, path: PathKey, *, key: bool = False, hint: str | None = None,
              notes: tuple[str, ...] = ()) -> None:
        self.diags.add(Diagnostic(code, Severity.ERROR, message, self.src.location(path, key=key), hint, notes))

    def warn(self, code: str, message: str, path: PathKey, *, key: bool = False, hint: str | None = None) -> None:
        self.diags.add(Diagnostic(code, Severity.WARNING, message, self.src.location(path, key=key), hint))

    # -- nodes ---------------------------------------------------------------
    def collect(self) -> None:
        for name in self.spec.inputs:
            self.nodes[name] = Node(name, "input", self.spec.input_spec(name), ("inputs", name))
        previous: str | None = None
        input_names = list(self.spec.inputs)
        for name, ns in self.spec.nodes.items():
            path: PathKey = ("nodes", name)
            if name in self.nodes:
                self.error("GS201", f"`{name}` is both an input and a node", path, key=True,
                           hint="give the node another name")
                continue
            node = Node(name, ns.kind, ns, path)  # type: ignore[arg-type]
            self._edges(node, ns, previous, input_names)
            self.nodes[name] = node
            previous = name

    def _edges(self, node: Node, ns: schema.NodeSpec, previous: str | None, input_names: list[str]) -> None:
        raw = ns.inputs
        if raw is None and ns.op is not None and not catalog.op_takes_input(ns.op, ns.args):
            node.style = "positional"  # `{op: arange, start: 0, stop: 16}`: its arguments are all it takes
            return
        if raw is None:
            if previous is not None:
                refs = [previous]
            elif len(input_names) == 1:
                refs = [input_names[0]]
            elif not input_names and ns.application is not None:
                refs = []
            else:
                if input_names:
                    self.error("GS205", f"node `{node.name}` is the first node and the spec has several inputs "
                               f"({', '.join(input_names)}): say which with `inputs:`", node.path, key=True)
                else:
                    self.error("GS205", f"node `{node.name}` is the first node and the spec declares no inputs",
                               node.path, key=True, hint="declare them, e.g. `inputs: {x: {shape: [784]}}`")
                node.inputs = []
                return  # reported: no second error for the same missing input
            node.inputs = [Ref.parse(r) for r in refs]
        elif isinstance(raw, dict):
            node.style = "dict"
            for key, val in raw.items():
                for r in _refs(val):
                    node.inputs.append(Ref.parse(r))
                    node.input_keys.append(key)
            return
        else:
            node.inputs = [Ref.parse(r) for r in _refs(raw)]
        layer = ns.type
        if ns.share is not None:
            target = self.spec.nodes.get(ns.share)
            layer = target.type if target is not None else None
        n = len(node.inputs)
        if ns.op is not None:
            node.style = "list" if ns.op in catalog.SEQUENCE_OPS else "positional"
            if n == 0 and ns.op in catalog.OPS and catalog.op_takes_input(ns.op, ns.args):
                missing = [k for k, p in catalog.OPS[ns.op]["params"].items() if p.get("required") and k not in ns.args]
                self.error("GS206", f"op `{ns.op}` needs inputs", node.path, key=True,
                           hint=f"give {', '.join(f'`{k}`' for k in missing)} as inputs or arguments")
            return
        if n == 0:
            node.style = "none"
            if ns.application is None:
                self.error("GS206", f"node `{node.name}` has no inputs", node.path, key=True)
        elif layer in catalog.LIST_INPUT_LAYERS:
            node.style = "list"
            if n < 2:
                self.error("GS206", f"`{layer}` merges several tensors but node `{node.name}` has {n} input",
                           node.path + (("inputs",) if raw is not None else ()), key=raw is None,
                           hint="list them: `inputs: [a, b]`")
        elif layer in catalog.POSITIONAL_INPUT_LAYERS:
            node.style = "positional"
            if not 1 <= n <= 3:
                self.error("GS206", f"`{layer}` takes query, value and optionally key; got {n} inputs",
                           node.path + ("inputs",))
        elif n == 1 and (raw is None or isinstance(raw, str)):
            node.style = "single"
        else:
            # A list for any other layer is passed as one list argument (Keras's
            # convention for custom multi-input layers and sub-models).
            node.style = "list" if n > 1 or isinstance(raw, list) else "single"

    # -- references ------------------------------------------------------------
    def check_refs(self) -> None:
        for node in list(self.nodes.values()):
            if node.kind == "input":
                continue
            ns = node.spec
            assert isinstance(ns, schema.NodeSpec)
            for i, ref in enumerate(node.inputs):
                target = self.nodes.get(ref.node)
                if target is None or (ref.layer is not None and target.kind != "application"):
                    self._check_ref(ref, self._input_path(node, i))  # the path only for the report
            if ns.share is not None:
                target = self.nodes.get(ns.share)
                if target is None:
                    self.error("GS200", f"`share: {ns.share}` names no node", node.path + ("share",),
                               hint=did_you_mean(ns.share, list(self.spec.nodes)))
                elif target.kind not in {"type", "application", "share"}:
                    self.error("GS200", f"`share: {ns.share}` must name a layer node, not a {target.kind} node",
                               node.path + ("share",))
                else:
                    node.owner = target.owner if target.kind == "share" else target.name
                    if node.owner is None:
                        self.error("GS200", f"`share: {ns.share}` names a node that shares no layer",
                                   node.path + ("share",))
            if ns.model is not None and ns.model not in (self.spec.models or {}):
                self.error("GS200", f"`model: {ns.model}` names no model in `models`", node.path + ("model",),
                           hint=did_you_mean(ns.model, list(self.spec.models or {})))
            wrapped = node.wrapped_model
            if wrapped is not None and wrapped not in (self.spec.models or {}):
                self.error("GS200", f"`layer: {{model: {wrapped}}}` names no model in `models`",
                           node.path + ("layer", "model"), hint=did_you_mean(wrapped, list(self.spec.models or {})))

    def _input_path(self, node: Node, i: int) -> PathKey:
        ns = node.spec
        assert isinstance(ns, schema.NodeSpec)
        raw = ns.inputs
        if raw is None:
            return node.path
        if isinstance(raw, str):
            return node.path + ("inputs",)
        if isinstance(raw, list):
            return node.path + ("inputs", i)
        key = node.input_keys[i]
        val = raw[key]
        if isinstance(val, str):
            return node.path + ("inputs", key)
        before = node.input_keys[:i].count(key)
        return node.path + ("inputs", key, before)

    def _check_ref(self, ref: Ref, path: PathKey) -> bool:
        target = self.nodes.get(ref.node)
        if target is None:
            self.error("GS200", f"`{ref}` is not defined", path,
                       hint=did_you_mean(ref.node, list(self.nodes)))
            return False
        if ref.layer is not None and target.kind != "application":
            self.error("GS207", f"`{ref}`: only application nodes expose intermediate layers", path,
                       hint=f"refer to the node that computes it directly, e.g. `{ref.layer}`")
            return False
        return True

    # -- order ----------------------------------------------------------------
    def toposort(self) -> list[str]:
        deps = Graph(self.spec, self.nodes, [], {}).deps  # one view of the nodes for every lookup
        listed = self._listed_in_order(deps)
        if listed is not None:
            return listed
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = in progress, 2 = done
        reported: set[frozenset[str]] = set()

        for root in self.nodes:
            if state.get(root):
                continue
            stack: list[tuple[str, list[str]]] = [(root, list(reversed(deps(root))))]
            trail = [root]
            state[root] = 1
            while stack:
                name, pending = stack[-1]
                if pending:
                    dep = pending.pop()
                    s = state.get(dep)
                    if s == 1:
                        # trail runs against the data flow (each name needs the next): reverse it.
                        cycle = list(reversed(trail[trail.index(dep):] + [dep]))
                        key = frozenset(cycle)
                        if key not in reported:
                            reported.add(key)
                            chain = " -> ".join(cycle)
                            self.error("GS202", f"cycle: {chain}", self.nodes[dep].path, key=True,
                                       notes=tuple(f"`{b}` takes its input from `{a}`"
                                                   for a, b in zip(cycle[:-1], cycle[1:])))
                    elif not s:
                        state[dep] = 1
                        stack.append((dep, list(reversed(deps(dep)))))
                        trail.append(dep)
                    continue
                stack.pop()
                trail.pop()
                state[name] = 2
                order.append(name)
        return order

    def _listed_in_order(self, deps: Any) -> list[str] | None:
        """The nodes as listed, when each comes after everything it needs (as in most specs): the
        order the search below would find, without searching. None otherwise."""
        seen: set[str] = set()
        for name in self.nodes:
            for dep in deps(name):
                if dep not in seen:
                    return None
            seen.add(name)
        return list(self.nodes)

    # -- models ----------------------------------------------------------------
    def model_specs(self) -> dict[str, tuple[schema.ModelSpec, PathKey]]:
        if self.spec.models:
            return {k: (v, ("models", k)) for k, v in self.spec.models.items()}
        consumed = {r.node for n in self.nodes.values() for r in n.inputs}
        consumed |= {n.owner for n in self.nodes.values() if n.owner}
        sinks = [n for n in self.spec.nodes if n not in consumed and n in self.nodes]
        if not sinks:
            sinks = list(self.spec.nodes)[-1:]
        mspec = schema.ModelSpec(outputs=sinks, compile=None, expect=self.spec.expect)
        return {self.spec.name: (mspec, ("nodes",))}

    def resolve_model(self, name: str, mspec: schema.ModelSpec, path: PathKey, order_index: dict[str, int]) -> Model:
        outputs = [Ref.parse(r) for r in _refs(mspec.outputs)]
        declared = [Ref.parse(r) for r in _refs(mspec.inputs)] if mspec.inputs is not None else None
        ok = True
        for i, ref in enumerate(outputs):
            p = path + ("outputs",) + ((i,) if isinstance(mspec.outputs, list) else ())
            ok &= self._check_ref(ref, p)
        for i, ref in enumerate(declared or []):
            p = path + ("inputs",) + ((i,) if isinstance(mspec.inputs, list) else ())
            if self._check_ref(ref, p):
                target = self.nodes[ref.node]
                if target.kind not in {"input", "application"} or (target.kind == "application" and target.inputs):
                    self.error("GS208", f"model input `{ref}` must be an input or a stand-alone application "
                               f"node, not a {target.kind} node", p)
                    ok = False
            else:
                ok = False
        if not outputs:
            self.error("GS208", f"model `{name}` has no outputs", path, key=True)
        # Walk back from the outputs to the sources.
        members: set[str] = set()
        sources: list[str] = []
        stack = [r.node for r in outputs if r.node in self.nodes]
        while stack:
            n = stack.pop()
            if n in members:
                continue
            members.add(n)
            node = self.nodes[n]
            if node.kind == "input" or (node.kind == "application" and not node.inputs):
                sources.append(n)
                continue
            stack.extend(r.node for r in node.inputs if r.node in self.nodes)
        if declared is None:
            inputs = [Ref(n) for n in self.spec.inputs if n in sources] + \
                     [Ref(n) for n in self.spec.nodes if n in sources]
        else:
            inputs = declared
            names = {r.node for r in declared}
            for s in sources:
                if s not in names and ok:
                    outs = ", ".join(str(r) for r in outputs)
                    self.error("GS203", f"model `{name}`: its outputs ({outs}) need `{s}`, which is not among its "
                               f"inputs", path + ("inputs",), hint=f"add `{s}` to the model's inputs")
            for r in declared:
                if r.node not in sources and ok:
                    self.warn("GS204", f"model `{name}`: input `{r}` is not used by its outputs",
                              path + ("inputs",))
        nodes = [n for n in order_index if n in members]  # in graph order (order_index lists every node)
        inputs, outputs = self.keyed(name, mspec, path, inputs, outputs)
        return Model(name, mspec, path, inputs, outputs, nodes, mspec.compile, mspec.expect)

    def keyed(self, name: str, mspec: schema.ModelSpec, path: PathKey, inputs: list[Ref], outputs: list[Ref]
              ) -> tuple[list[Ref], list[Ref]]:
        """A model that takes or returns a dict: its inputs or outputs in Keras's order (by name)."""
        if mspec.inputs_as == "dict":
            for ref in inputs:
                target = self.nodes.get(ref.node)
                if target is None:
                    continue  # reported
                if ref.layer is not None or ref.index is not None or target.kind != "input":
                    self.error("GS208", f"model `{name}` takes a dict of inputs, so each of its inputs must be a "
                               f"spec input (named by its key); `{ref}` is not", path + ("inputs_as",))
                    return inputs, outputs
            inputs = sorted(inputs, key=lambda r: r.node)
        if mspec.outputs_as == "dict":
            keys = [str(r) for r in outputs]
            if len(set(keys)) != len(keys):
                self.error("GS208", f"model `{name}` returns a dict of outputs, so each output must be listed once",
                           path + ("outputs",))
            elif any(r.layer == "*" for r in outputs):
                self.error("GS208", f"model `{name}` returns a dict of outputs: `node.*` has no names for them",
                           path + ("outputs",))
            outputs = sorted(outputs, key=str)
        return inputs, outputs

    def check_calls(self, models: dict[str, Model]) -> None:
        """A model may not call itself, directly or through another model."""
        for m in models.values():
            for n in m.nodes:
                ns = self.nodes[n].spec
                if isinstance(ns, schema.NodeSpec) and m.name in (ns.model, self.nodes[n].wrapped_model):
                    self.error("GS202", f"cycle: model `{m.name}` calls itself through node `{n}`",
                               self.nodes[n].path + ("model",))

    def unused(self, models: dict[str, Model]) -> None:
        used: set[str] = set()
        for m in models.values():
            used.update(m.nodes)
            used.update(r.node for r in m.inputs)  # an unused declared input is reported per model
        for node in self.nodes.values():
            if node.name not in used and node.owner is None:
                consumers_use_layer = any(o.owner == node.name and o.name in used for o in self.nodes.values())
                if consumers_use_layer:
                    continue
                self.warn("GS204", f"`{node.name}` is not used by any model", node.path, key=True,
                          hint="remove it, or add it to a model's outputs")


def resolve(src: Source, spec: schema.Spec) -> tuple[Graph | None, Diagnostics]:
    """Resolve references and order the graph; None if it has errors."""
    r = _Resolver(src, spec)
    r.collect()
    r.check_refs()
    order = r.toposort()
    if r.diags.has_errors:
        return None, r.diags
    index = {n: i for i, n in enumerate(order)}
    models: dict[str, Model] = {}
    for name, (mspec, path) in r.model_specs().items():
        models[name] = r.resolve_model(name, mspec, path, index)
    r.check_calls(models)
    if spec.expect is not None and spec.models:
        public = [m for m in models.values() if not m.submodel]
        if len(public) != 1:
            r.error("GS208", "top-level `expect` needs a spec with one model; put `expect` on each model",
                    ("expect",), key=True)
        else:
            public[0].expect = public[0].expect or spec.expect
    if not any(not m.submodel for m in models.values()):
        r.error("GS208", "every model is a `submodel`: nothing to build", ("models",), key=True)
    r.unused(models)
    if r.diags.has_errors:
        return None, r.diags
    return Graph(spec, r.nodes, order, models), r.diags


# -- what a model is compiled and trained with ------------------------------------------------------
def effective_compile(graph: Graph, model: Model) -> tuple[schema.CompileSpec | None, PathKey]:
    """A model's compile settings: its own, else the top-level ones meant for it."""
    if model.compile is not None:
        return model.compile, model.path + ("compile",)
    top = graph.spec.compile
    if top is not None and (top.model is None or top.model == model.name):
        return top, ("compile",)
    return None, ()


def output_names(model: Model) -> list[str] | None:
    """Keras output names, or None where they are only known after building (`node.*`)."""
    names: list[str] = []
    for ref in model.outputs:
        if ref.layer == "*" or ref.index is not None:
            return None  # Keras names these when it builds them
        names.append(ref.layer or ref.node)
    return names
