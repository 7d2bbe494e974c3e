"""A functional Keras model -> a readable spec (`graphspec import`).

The importer walks the model's functional graph (its operations and the nodes
that record each call) and writes one spec node per call:

* a layer of `keras.layers` -> `{type: Conv2D, filters: 64, ...}` with only the
  arguments that differ from the layer's defaults;
* a second call of the same layer object -> `{share: first_node}`;
* a nested functional or Sequential model -> a `models:` entry (marked
  `submodel`) over its own nodes, and `{model: name}` for each call of it;
* a `keras.ops` call between layers (an Operation such as
  `keras.src.ops.numpy.Add`) -> `{op: add, ...}` with the operation's arguments
  as keyword arguments and its tensor arguments as `inputs`;
* a custom layer -> `{type: ClassName, ...}` when a plugin defines it
  (`--plugin`; the layers of `keras.applications` that live outside
  `keras.layers` come with graphspec's own plugin, :mod:`graphspec.build.app_layers`).

Anything else (Lambda layers, custom layers no plugin defines, subclassed
models, slices, ...) stops the
import with a diagnostic that names it. The spec written is then checked and
built, and the rebuilt model compared with the original: parameter counts,
layer types, and the graph itself (every operation's class and configuration
and every call's arguments). A mismatch refuses the import, so a spec that
differs silently is never written.

The walk names every input, node and model; :mod:`graphspec.importer.match` writes each call,
:mod:`graphspec.importer.assemble` puts the spec together (:mod:`graphspec.importer.repeats`
finds its blocks, :mod:`graphspec.importer.write` writes the YAML) and
:mod:`graphspec.importer.verify` checks the result.
"""

from __future__ import annotations

import dataclasses
import heapq
import re
from typing import Any

from graphspec.importer.contract import check_contract
from graphspec.importer.match import CallMatcher
from graphspec.importer.values import Unexpressible
from graphspec.spec import catalog


@dataclasses.dataclass
class _Call:
    """One call of an operation inside a model: a future spec node."""

    op: Any
    index: int  # node index in op._inbound_nodes
    node: Any

    @property
    def key(self) -> tuple[int, int]:
        return (id(self.op), self.index)


class Importer:
    """One import: the names given so far, and the spec's inputs, nodes and models as they are written."""

    def __init__(self, keras: Any, source: str, plugin_classes: dict[str, tuple[type, str]]) -> None:
        self.keras = keras
        self.source = source
        self.match = CallMatcher(keras, plugin_classes)
        self.inputs: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.node_inputs: dict[str, tuple[str, Any]] = {}  # name -> (style, refs)
        self.models: dict[str, dict[str, Any]] = {}
        self.taken: set[str] = set()
        self.model_names: set[str] = set()
        self.renames: dict[str, str] = {}
        self.compile_data: dict[str, Any] | None = None  # a saved model's compile settings, as a spec writes them
        self.compile_note: str | None = None  # why they were not written
        self.op_names: dict[int, str] = {}  # id(op) -> claimed spec name
        self.tensors: dict[tuple[int, int], str] = {}  # (id(op), node index) -> spec node/input
        self.n_outputs: dict[str, int] = {}
        self.layer_def: dict[int, str] = {}  # id(layer) -> node that defines it
        self.calls: dict[int, int] = {}  # id(op) -> calls emitted so far
        self.done_models: dict[int, str] = {}
        self._alive: list[Any] = []
        from keras.src.models.functional import Functional
        from keras.src.ops.function import make_node_key

        self.Functional = Functional
        self.make_node_key = make_node_key

    # -- names ------------------------------------------------------------------------
    def claim(self, wanted: str, qualified: str, *, prefix: str | None = None, models: bool = False) -> str:
        """A free spec name for `wanted` (sanitized, made unique); renames are recorded."""
        taken = self.model_names if models else self.taken
        base = re.sub(r"[^A-Za-z0-9_\-]", "_", wanted) or "_"
        if not re.match(r"[A-Za-z_]", base):
            base = "_" + base
        base = base[:120]
        candidates = [base]
        if prefix:
            candidates.append(f"{prefix}_{base}"[:120])
        name = next((c for c in candidates if c not in taken), None)
        k = 2
        while name is None:
            if f"{base}_{k}" not in taken:
                name = f"{base}_{k}"
            k += 1
        taken.add(name)
        if name != wanted:
            self.renames[qualified] = name
        return name

    def op_name(self, op: Any, qualified: str, prefix: str | None) -> str:
        if id(op) not in self.op_names:
            self.op_names[id(op)] = self.claim(op.name, qualified, prefix=prefix)
        return self.op_names[id(op)]

    # -- classes -----------------------------------------------------------------------
    def describe(self, op: Any) -> str:
        if self.is_model(op):
            return f"model `{op.name}`"
        if isinstance(op, self.keras.layers.Layer):
            return f"layer `{op.name}`"
        return f"op `{op.name}`"

    def is_model(self, op: Any) -> bool:
        return isinstance(op, self.keras.Model)

    def functional(self, model: Any, where: str) -> Any:
        """The Functional graph of a model (a Sequential's inner one); unexpressible otherwise."""
        keras = self.keras
        if type(model) is keras.Sequential:
            f = getattr(model, "_functional", None)
            if f is None:
                raise Unexpressible("GS703", f"{where}: Sequential model `{model.name}` is not built (it has no "
                                    "input shape)", "give it a `keras.Input` or call `model.build(shape)` first")
            return f
        if type(model) is self.Functional:
            return model
        kind = type(model).__name__
        raise Unexpressible(
            "GS703", f"{where} is a subclassed model ({kind}), not a functional one: its `call` is "
            "Python code that a spec cannot express",
            "rebuild it with the functional API (keras.Input ... keras.Model(inputs, outputs)) or Sequential")

    # -- the graph --------------------------------------------------------------------------
    def model(self, model: Any, *, top: bool, where: str) -> str:
        """Emit a model's inputs and nodes; return its name in `models`."""
        if id(model) in self.done_models:
            return self.done_models[id(model)]
        f = self.functional(model, where)
        self._alive.append(model)
        prefix = None if top else model.name
        mname = self.claim(model.name, f"model {model.name}", models=True)
        self.done_models[id(model)] = mname
        for t in f.inputs:
            op = t._keras_history.operation
            if not isinstance(op, self.keras.layers.InputLayer):
                raise Unexpressible("GS703", f"{where}: input `{getattr(op, 'name', op)}` of `{model.name}` is not "
                                    "a keras.Input")
        calls = self.calls_of(f)
        in_keys, out_keys = self.keyed(f, prefix, where)
        # Name everything of this model first, so that its own names win over nested models'.
        for t in f.inputs:
            op = t._keras_history.operation
            self.op_name(op, f"{model.name}/{op.name}", prefix)
        for c in calls:
            if id(c.op) not in self.layer_def and not self.calls.get(id(c.op)):
                self.op_name(c.op, f"{model.name}/{c.op.name}", prefix)
        for t in f.inputs:
            op, index, _ = t._keras_history
            name = self.op_names[id(op)]
            if name not in self.inputs:
                self.inputs[name] = self.input_spec(op, f"input `{op.name}`")
            self.tensors[(id(op), index)] = name
            self.n_outputs[name] = 1
        for c in self.order(calls):
            self.call(c, prefix, self.describe(c.op) + ("" if top else f" (in model `{model.name}`)"))
        entry: dict[str, Any] = {}
        ins = [self.tensors[(id(t._keras_history[0]), t._keras_history[1])] for t in f.inputs]
        ins = in_keys or ins  # a dict: in the model's own order of keys
        entry["inputs"] = ins[0] if len(ins) == 1 else ins
        outs = self.output_refs(f.outputs, f"the outputs of {where}")
        outs = out_keys or outs
        entry["outputs"] = outs[0] if len(outs) == 1 else outs
        if in_keys:
            entry["inputs_as"] = "dict"
        if out_keys:
            entry["outputs_as"] = "dict"
        if not top:
            entry["submodel"] = True
        self.models[mname] = entry
        return mname

    def keyed(self, f: Any, prefix: str | None, where: str) -> tuple[list[str], list[str]]:
        """A model that takes or returns a dict: its inputs and output nodes are named by its keys
        (claimed before any other name). Returns the keys in the model's order (empty: a list)."""
        out: list[list[str]] = []
        for side in ("inputs", "outputs"):
            struct = getattr(f, f"_{side}_struct", None)
            if not isinstance(struct, dict):
                if isinstance(struct, (list, tuple)) and any(isinstance(t, (list, tuple, dict)) for t in struct):
                    raise Unexpressible("GS703", f"{where}: its {side} are nested structures; a spec model takes "
                                        "and returns one tensor, a list or a dict")
                out.append([])
                continue
            keys: list[str] = []
            for key, t in struct.items():
                if not self.is_tensor(t):
                    raise Unexpressible("GS703", f"{where}: {side[:-1]} `{key}` is a nested structure; a dict "
                                        "of tensors is as deep as a spec model's inputs and outputs go")
                op, index, k = t._keras_history
                label = f"{side[:-1]} `{key}` of the dict"
                if side == "outputs" and (index != 0 or k != 0 or len(op._inbound_nodes[index].outputs) != 1
                                          or isinstance(op, self.keras.layers.InputLayer)):
                    raise Unexpressible("GS703", f"{where}: {label} is not the only output of a layer's first "
                                        f"call, so no spec node can be named `{key}` for it",
                                        "return the tensor through a layer of its own, e.g. an Identity layer")
                if id(op) in self.op_names and self.op_names[id(op)] != key:
                    raise Unexpressible("GS703", f"{where}: {label} is named `{self.op_names[id(op)]}` elsewhere")
                name = self.claim(str(key), f"{side[:-1]} {key}", prefix=None)
                if name != key:
                    raise Unexpressible("GS703", f"{where}: {label} is not a spec name (or is taken twice)",
                                        "keys are letters, digits, `_` and `-`, not starting with a digit")
                self.renames.pop(f"{side[:-1]} {key}", None)
                if op.name != key:
                    self.renames[f"{op.name}"] = key
                self.op_names[id(op)] = name
                keys.append(name)
            out.append(keys)
        return out[0], out[1]

    @staticmethod
    def is_tensor(value: Any) -> bool:
        return hasattr(value, "_keras_history")

    def calls_of(self, f: Any) -> list[_Call]:
        out = []
        for op in f.operations:
            if isinstance(op, self.keras.layers.InputLayer):
                continue
            for i, node in enumerate(op._inbound_nodes):
                if self.make_node_key(op, i) in f._nodes:
                    out.append(_Call(op, i, node))
        return out

    def order(self, calls: list[_Call]) -> list[_Call]:
        """Keras's order, except that a chain goes on with the node that consumes the one just written."""
        index = {c.key: i for i, c in enumerate(calls)}
        pending: dict[tuple[int, int], int] = {}
        consumers: dict[tuple[int, int], list[tuple[int, int]]] = {k: [] for k in index}
        for c in calls:
            deps = {(id(t._keras_history[0]), t._keras_history[1]) for t in c.node.arguments.keras_tensors}
            deps = {d for d in deps if d in index}
            pending[c.key] = len(deps)
            for d in deps:
                consumers[d].append(c.key)
        ready = [(index[k], k) for k, n in pending.items() if n == 0]
        heapq.heapify(ready)
        done: set[tuple[int, int]] = set()
        out: list[_Call] = []
        last: tuple[int, int] | None = None
        while len(out) < len(calls):
            pick = None
            if last is not None:
                nxt = sorted((index[k], k) for k in consumers[last] if pending[k] == 0 and k not in done)
                if nxt:
                    pick = nxt[0][1]
            while pick is None:
                if not ready:
                    raise Unexpressible("GS703", "the model's graph has a cycle")
                _, k = heapq.heappop(ready)
                if k not in done:
                    pick = k
            done.add(pick)
            out.append(calls[index[pick]])
            for k in consumers[pick]:
                pending[k] -= 1
                if pending[k] == 0:
                    heapq.heappush(ready, (index[k], k))
            last = pick
        return out

    def input_spec(self, layer: Any, where: str) -> dict[str, Any]:
        shape = list(layer.batch_shape)
        spec: dict[str, Any] = {"shape": [None if d is None else int(d) for d in shape[1:]]}
        if any(d is not None and d < 1 for d in spec["shape"]):
            raise Unexpressible("GS703", f"{where}: shape {tuple(shape)} has a zero dimension")
        dtype = str(layer.dtype)
        if dtype != "float32":
            from typing import get_args

            from graphspec.spec.schema import DType

            if dtype not in get_args(DType):
                raise Unexpressible("GS703", f"{where}: input dtype {dtype} is not one a spec can name")
            spec["dtype"] = dtype
        if getattr(layer, "sparse", False):
            spec["sparse"] = True
        if getattr(layer, "ragged", False):
            raise Unexpressible("GS703", f"{where}: ragged inputs are not part of the format")
        if getattr(layer, "optional", False):
            raise Unexpressible("GS703", f"{where}: optional inputs are not part of the format")
        if shape and shape[0] is not None:
            spec["batch_size"] = int(shape[0])
        return spec

    # -- references -------------------------------------------------------------------------
    def ref(self, tensor: Any, where: str) -> str:
        op, index, k = tensor._keras_history
        name = self.tensors.get((id(op), index))
        if name is None:
            raise Unexpressible("GS703", f"{where} uses a tensor from outside the model ({op.name})")
        if self.n_outputs.get(name, 1) > 1:
            return f"{name}.{k}"  # one output of a node that returns several
        return name

    def output_refs(self, tensors: list[Any], where: str) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tensors):
            op, index, _ = tensors[i]._keras_history
            name = self.tensors.get((id(op), index))
            n = self.n_outputs.get(name or "", 1)
            if name is not None and n > 1:
                ks = [t._keras_history[2] for t in tensors[i:i + n]]
                same = all((id(t._keras_history[0]), t._keras_history[1]) == (id(op), index) for t in tensors[i:i + n])
                if same and ks == list(range(n)):
                    out.append(name)  # all of the node's outputs, in order
                    i += n
                    continue
            out.append(self.ref(tensors[i], where))
            i += 1
        return out

    # -- one call -----------------------------------------------------------------------------
    def call(self, c: _Call, prefix: str | None, where: str) -> None:
        op = c.op
        n_call = self.calls.get(id(op), 0)
        self.calls[id(op)] = n_call + 1
        is_layer = isinstance(op, self.keras.layers.Layer)
        entry: dict[str, Any]
        if self.is_model(op):
            sub = self.model(op, top=False, where=f"model `{op.name}`")
            name = self.op_names[id(op)] if n_call == 0 else self.claim(f"{op.name}_{n_call + 1}", f"{op.name} call "
                                                                           f"{n_call + 1}", prefix=prefix)
            entry = {"model": sub}
            style, refs, call = self.match.layer_inputs(op, c.node, None, where, self.ref)
        elif is_layer:
            wrapped = getattr(op, "layer", None) if type(op) is self.keras.layers.TimeDistributed else None
            if id(op) in self.layer_def:
                owner = self.layer_def[id(op)]
                name = self.claim(f"{op.name}_{n_call + 1}", f"{op.name} call {n_call + 1}", prefix=prefix)
                entry = {"share": owner}
                type_name = self.nodes[owner]["type"]
            elif wrapped is not None and self.is_model(wrapped):  # TimeDistributed over a model: in `models:`
                name = self.op_name(op, op.name, prefix)
                type_name = "TimeDistributed"
                sub = self.model(wrapped, top=False, where=f"model `{wrapped.name}` (in {where})")
                entry = {"type": type_name, "layer": {"model": sub}}
                self.layer_def[id(op)] = name
            else:
                name = self.op_name(op, op.name, prefix)
                type_name = self.match.layer_type(op, where)
                probe, probe_key = self.match.probe(c.node)
                if type_name not in catalog.LAYERS:
                    check_contract(op, type_name, where, probe)
                entry = {"type": type_name, **self.match.layer_args(op, type_name, where, probe=probe,
                                                                    probe_key=probe_key)}
                self.layer_def[id(op)] = name
            style, refs, call = self.match.layer_inputs(op, c.node, type_name, where, self.ref)
        else:
            known = self.op_names.get(id(op)) if n_call == 0 else None
            name = known or self.claim(op.name, op.name, prefix=prefix)
            fn, args, style, refs = self.match.op_call(op, c.node, where, self.ref)
            entry = {"op": fn, **args}
            call = {}
        if call:
            entry["call"] = call
        self.nodes[name] = entry
        self.node_inputs[name] = (style, refs)
        self.tensors[c.key] = name
        self.n_outputs[name] = len(c.node.outputs)
