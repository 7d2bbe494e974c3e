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
"""

from __future__ import annotations

import dataclasses
import heapq
import inspect
import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from graphspec.spec import catalog
from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError, UsageError

APP_LAYERS_PLUGIN = "graphspec.build.app_layers"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PLAIN_STR = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-./]*$")
_YAML_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}
# Arguments whose uniform lists Keras accepts as one number (`kernel_size: 3`).
_COLLAPSIBLE = {"kernel_size", "strides", "pool_size", "dilation_rate", "size", "padding", "cropping", "axis"}
# Arguments of a wrapped layer that its wrapper sets (Bidirectional: from `return_sequences`).
_SET_BY_WRAPPERS = {"zero_output_for_mask"}
# Operation classes whose keras.ops function is not their snake_case name.
_OP_NAMES: dict[str, str] = {}


class _Unexpressible(Exception):
    """Something the format cannot express; becomes a diagnostic."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@dataclasses.dataclass
class Imported:
    """The result of an import: the spec as data and as YAML text."""

    name: str
    data: dict[str, Any]
    text: str
    plugins: list[str]
    renames: dict[str, str]
    params: int
    nodes: int
    verified: bool
    rebuilt: Any = None  # the model built back from the spec (when verified)


@dataclasses.dataclass
class _Call:
    """One call of an operation inside a model: a future spec node."""

    op: Any
    index: int  # node index in op._inbound_nodes
    node: Any

    @property
    def key(self) -> tuple[int, int]:
        return (id(self.op), self.index)


def _snake(name: str) -> str:
    return catalog._snake(name)


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "_keras_history") and hasattr(value, "shape") and hasattr(value, "dtype")


def _plain(value: Any, where: str) -> Any:
    """Config values -> YAML-able data (tuples -> lists, NumPy -> Python); else unexpressible."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unexpressible("GS701", f"{where}: {value} cannot be written in a spec (not a finite number)")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, where) for k, v in value.items()}
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # NumPy scalars and arrays
        return _plain(value.tolist(), where)
    if isinstance(value, slice):
        raise _Unexpressible("GS702", f"{where}: a slice ({value}) cannot be written in a spec",
                             "index with keras.ops.slice/take, or with a layer such as Cropping or Reshape")
    raise _Unexpressible("GS701", f"{where}: a {type(value).__name__} value cannot be written in a spec")


def _norm(value: Any) -> Any:
    """For comparisons: tuples as lists, NumPy as Python, recursively."""
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()
    return value


def _strip_names(value: Any, top: bool = True) -> Any:
    """A config without the names of layers (top level, and nested layer configs: those with
    `trainable`); other `name` keys (a dtype policy's) are part of the configuration."""
    if isinstance(value, dict):
        drop = {"build_config"} | ({"name"} if top or "trainable" in value else set())
        return {k: _strip_names(v, False) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_strip_names(v, False) for v in value]
    return value


def _diff_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


class _Importer:
    def __init__(self, keras: Any, source: str, plugin_classes: dict[str, tuple[type, str]]) -> None:
        self.keras = keras
        self.source = source
        self.plugin_classes = plugin_classes  # class name -> (class, plugin)
        self._app_classes: dict[str, type] | None = None
        self.plugin_tables: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.node_inputs: dict[str, tuple[str, Any]] = {}  # name -> (style, refs)
        self.models: dict[str, dict[str, Any]] = {}
        self.taken: set[str] = set()
        self.model_names: set[str] = set()
        self.renames: dict[str, str] = {}
        self.op_names: dict[int, str] = {}  # id(op) -> claimed spec name
        self.tensors: dict[tuple[int, int], str] = {}  # (id(op), node index) -> spec node/input
        self.n_outputs: dict[str, int] = {}
        self.layer_def: dict[int, str] = {}  # id(layer) -> node that defines it
        self.calls: dict[int, int] = {}  # id(op) -> calls emitted so far
        self.done_models: dict[int, str] = {}
        self.plugins_needed: list[str] = []
        self._defaults: dict[tuple[Any, str], dict[str, Any] | None] = {}
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
                raise _Unexpressible("GS703", f"{where}: Sequential model `{model.name}` is not built (it has no "
                                     "input shape)", "give it a `keras.Input` or call `model.build(shape)` first")
            return f
        if type(model) is self.Functional:
            return model
        kind = type(model).__name__
        raise _Unexpressible(
            "GS703", f"{where} is a subclassed model ({kind}), not a functional one: its `call` is "
            "Python code that a spec cannot express",
            "rebuild it with the functional API (keras.Input ... keras.Model(inputs, outputs)) or Sequential")

    def app_classes(self) -> dict[str, type]:
        if self._app_classes is None:
            from graphspec.build import plugins as plugin_loader

            self._app_classes = plugin_loader.load_all([APP_LAYERS_PLUGIN])
        return self._app_classes

    def need_plugin(self, plugin: str) -> None:
        if plugin not in self.plugins_needed:
            self.plugins_needed.append(plugin)
            from graphspec.spec import plugins as plugins_mod

            self.plugin_tables.update(plugins_mod.scan(plugin))

    def layer_type(self, layer: Any, where: str) -> str:
        cls = type(layer)
        name = cls.__name__
        if name in catalog.DANGEROUS_LAYERS:
            what = "a Lambda layer: it wraps a Python function" if name == "Lambda" else f"a {name} layer"
            raise _Unexpressible(
                "GS701", f"{where} is {what}, which a spec cannot express (graphspec never runs "
                "or loads code named by a spec)",
                "rewrite it with layers or keras.ops calls, or make it a custom layer in a plugin (--plugin)")
        if getattr(self.keras.layers, name, None) is cls and name in catalog.LAYERS:
            return name
        if name in self.plugin_classes:
            self.need_plugin(self.plugin_classes[name][1])
            return name
        if cls.__module__.startswith("keras.src.applications.") and name in self.app_classes():
            self.need_plugin(APP_LAYERS_PLUGIN)
            return name
        raise _Unexpressible(
            "GS701", f"{where} is a custom layer ({cls.__module__}.{name}) that no plugin defines",
            "pass the module or .py file that defines it with --plugin")

    def layer_class(self, type_name: str) -> type:
        if type_name in self.plugin_classes:
            return self.plugin_classes[type_name][0]
        if type_name in catalog.LAYERS and hasattr(self.keras.layers, type_name):
            return getattr(self.keras.layers, type_name)  # type: ignore[no-any-return]
        return self.app_classes()[type_name]

    # -- layer arguments ------------------------------------------------------------------
    def required(self, type_name: str, cls: type[Any]) -> list[str]:
        if type_name in catalog.LAYERS:
            return [k for k, p in catalog.LAYERS[type_name]["params"].items() if p.get("required")]
        sig = inspect.signature(cls.__init__)
        return [p.name for p in list(sig.parameters.values())[1:]
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def param_order(self, type_name: str, cls: type[Any], config_keys: list[str]) -> list[str]:
        """The layer's own arguments in signature order, then base arguments (trainable, dtype, ...)."""
        if type_name in catalog.LAYERS:
            own = list(catalog.LAYERS[type_name]["params"])
        else:
            own = [p for p in list(inspect.signature(cls.__init__).parameters)[1:]
                   if p not in {"args", "kwargs"}]
        return own + [k for k in config_keys if k not in own]

    def defaults(self, cls: type[Any], required: dict[str, Any]) -> dict[str, Any] | None:
        """The config of `cls` built with only its required arguments (None if that fails)."""
        key = (cls, json.dumps(required, sort_keys=True, default=str))
        if key not in self._defaults:
            self._defaults[key] = None
            makers: tuple[Callable[[], Any], ...] = (lambda: cls(**required),
                                                     lambda: cls.from_config(dict(required)))
            for make in makers:
                try:
                    self._defaults[key] = _norm(make().get_config())
                    break
                except Exception:
                    continue
        return self._defaults[key]

    def named_object(self, kind: str, value: dict[str, Any], where: str) -> Any:
        """A serialized initializer/regularizer/constraint -> `he_normal` or `{type: X, arg: ...}`."""
        table = {"initializer": catalog.INITIALIZERS, "regularizer": catalog.REGULARIZERS,
                 "constraint": catalog.CONSTRAINTS}[kind]
        module = {"initializer": self.keras.initializers, "regularizer": self.keras.regularizers,
                  "constraint": self.keras.constraints}[kind]
        cname = value.get("class_name")
        if not isinstance(cname, str) or cname not in table.classes or not hasattr(module, cname):
            raise _Unexpressible("GS701", f"{where}: {kind} {cname!r} is not one of Keras's built-in {kind}s",
                                 "custom initializers, regularizers and constraints cannot be named in a spec")
        config = _norm(value.get("config") or {})
        try:
            default = _norm(getattr(module, cname)().get_config())
        except Exception:
            default = {}
        args = {k: _plain(v, where) for k, v in config.items() if k not in default or default[k] != v}
        if not args:
            # A short name where Keras resolves it to the same object (it does not
            # for every class: `constant` fails in Keras 3.15).
            for short in (_snake(cname), cname):
                if not table.resolve(short):
                    continue
                try:
                    if _norm(module.get(short).get_config()) == config:
                        return short
                except Exception:
                    pass
        return {"type": cname, **args}

    def arg_value(self, layer_name: str, key: str, value: Any, where: str) -> Any:
        if isinstance(value, dict) and "class_name" in value:
            cname = value["class_name"]
            if key == "dtype":
                if cname == "DTypePolicy":
                    return value["config"]["name"]
                raise _Unexpressible("GS701", f"{where}: dtype policy {cname} cannot be written in a spec",
                                     "quantized and per-variable policies are not part of the format")
            if key.endswith(("_initializer", "_regularizer", "_constraint")):
                return self.named_object(key.rsplit("_", 1)[1], value, where)
            if key in {"layer", "backward_layer"}:
                sub = self.keras.layers.deserialize(value)
                type_name = self.layer_type(sub, where)
                args = self.layer_args(sub, type_name, f"{where} ({key})", nested=True)
                return {"type": type_name, **args}
            raise _Unexpressible("GS701", f"{where}: argument `{key}` is a Keras object ({cname}) that a spec "
                                 "cannot express")
        if key == "activation" or key.endswith("_activation"):
            if value is None or (isinstance(value, str) and catalog.ACTIVATIONS.resolve(value)):
                return value
            raise _Unexpressible("GS701", f"{where}: activation {value!r} is not a Keras built-in activation")
        if isinstance(value, dict):
            raise _Unexpressible("GS701", f"{where}: argument `{key}` is a mapping, which layer arguments "
                                 "cannot be in a spec")
        return _plain(value, where)

    def layer_args(self, layer: Any, type_name: str, where: str, *, nested: bool = False) -> dict[str, Any]:
        """The arguments that rebuild `layer`: its config less its defaults, checked by rebuilding it.

        A `nested` layer (the `layer` of a wrapper such as Bidirectional) is checked
        by rebuilding the wrapper: the wrapper sets some of its arguments itself.
        """
        cls = type(layer)
        config = _norm(layer.get_config())
        config.pop("name", None)
        required = self.required(type_name, cls)
        req = {k: config[k] for k in required if k in config}
        defaults = self.defaults(cls, req)
        full: dict[str, Any] = {}
        short: dict[str, Any] = {}
        for key, value in config.items():
            converted = self.arg_value(layer.name, key, value, f"{where}, argument `{key}`")
            full[key] = converted
            if key not in required and defaults is not None and key in defaults and (
                    _strip_names(defaults[key]) == _strip_names(value)):
                continue
            short[key] = _collapse(key, converted)
        order = self.param_order(type_name, cls, list(config))

        def ordered(args: dict[str, Any]) -> dict[str, Any]:
            return {k: args[k] for k in sorted(args, key=order.index)}

        if nested:
            return ordered({k: v for k, v in short.items() if k not in _SET_BY_WRAPPERS})
        # Defaults can depend on other arguments (MaxPooling2D's `strides` is its
        # `pool_size`): put back what the rebuilt layer gets wrong, and try again.
        args = dict(short)
        for _ in range(len(full) + 1):
            rebuilt = self.rebuild_config(type_name, args)
            if not isinstance(rebuilt, dict):
                break
            diff = _diff_keys(_strip_names(config), _strip_names(rebuilt))
            if not diff:
                problems = self.check_args(type_name, args, where)
                if problems:
                    raise _Unexpressible("GS701", problems[0])
                return ordered(args)
            changed = False
            for k in diff:
                if k in full and k not in args:
                    args[k] = _collapse(k, full[k])
                    changed = True
                elif k in full and args[k] != full[k]:
                    args[k] = full[k]
                    changed = True
            if not changed:
                break
        if self.rebuilds(type_name, full, config):
            problems = self.check_args(type_name, full, where)
            if problems:
                raise _Unexpressible("GS701", problems[0])
            return ordered(full)
        rebuilt = self.rebuild_config(type_name, full)
        diff = _diff_keys(config, rebuilt) if isinstance(rebuilt, dict) else ["(it cannot be created)"]
        raise _Unexpressible("GS704", f"{where}: {type_name} does not rebuild from its arguments (differs in "
                             f"{', '.join(diff)})")

    def rebuild_config(self, type_name: str, args: dict[str, Any]) -> dict[str, Any] | str:
        from graphspec.build.emit import layer_kwargs

        def make(t: str, a: dict[str, Any], name: str | None) -> Any:
            kw = layer_kwargs(a, make)
            if name is not None:
                kw["name"] = name
            return self.layer_class(t)(**kw)

        try:
            layer = make(type_name, args, None)
            config = _norm(layer.get_config())
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        config.pop("name", None)
        return config  # type: ignore[no-any-return]

    def rebuilds(self, type_name: str, args: dict[str, Any], config: dict[str, Any]) -> bool:
        rebuilt = self.rebuild_config(type_name, args)
        return isinstance(rebuilt, dict) and _strip_names(rebuilt) == _strip_names(config)

    def check_args(self, type_name: str, args: dict[str, Any], where: str) -> list[str]:
        from graphspec.spec import layers

        out = []
        for path, _, (_code, message, hint) in layers.check_args(type_name, args, ("nodes", "x"),
                                                                   plugins=self.plugin_tables):
            key = ".".join(str(p) for p in path[2:]) or "(layer)"
            out.append(f"{where}: argument `{key}`: {message}" + (f" ({hint})" if hint else ""))
        return out

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
                raise _Unexpressible("GS703", f"{where}: input `{getattr(op, 'name', op)}` of `{model.name}` is not "
                                     "a keras.Input")
        calls = self.calls_of(f)
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
        entry["inputs"] = ins[0] if len(ins) == 1 else ins
        outs = self.output_refs(f.outputs, f"the outputs of {where}")
        entry["outputs"] = outs[0] if len(outs) == 1 else outs
        if isinstance(getattr(f, "_inputs_struct", None), dict) or isinstance(
                getattr(f, "_outputs_struct", None), dict):
            raise _Unexpressible("GS703", f"{where} takes or returns a dict of tensors; spec "
                                 "models take and return lists")
        if not top:
            entry["submodel"] = True
        self.models[mname] = entry
        return mname

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
                    raise _Unexpressible("GS703", "the model's graph has a cycle")
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
            raise _Unexpressible("GS703", f"{where}: shape {tuple(shape)} has a zero dimension")
        dtype = str(layer.dtype)
        if dtype != "float32":
            from typing import get_args

            from graphspec.spec.schema import DType

            if dtype not in get_args(DType):
                raise _Unexpressible("GS703", f"{where}: input dtype {dtype} is not one a spec can name")
            spec["dtype"] = dtype
        if getattr(layer, "sparse", False):
            spec["sparse"] = True
        if getattr(layer, "ragged", False):
            raise _Unexpressible("GS703", f"{where}: ragged inputs are not part of the format")
        if getattr(layer, "optional", False):
            raise _Unexpressible("GS703", f"{where}: optional inputs are not part of the format")
        if shape and shape[0] is not None:
            spec["batch_size"] = int(shape[0])
        return spec

    # -- references -------------------------------------------------------------------------
    def ref(self, tensor: Any, where: str) -> str:
        op, index, k = tensor._keras_history
        name = self.tensors.get((id(op), index))
        if name is None:
            raise _Unexpressible("GS703", f"{where} uses a tensor from outside the model ({op.name})")
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
            style, refs, call = self.layer_inputs(op, c.node, None, where)
        elif is_layer:
            if id(op) in self.layer_def:
                owner = self.layer_def[id(op)]
                name = self.claim(f"{op.name}_{n_call + 1}", f"{op.name} call {n_call + 1}", prefix=prefix)
                entry = {"share": owner}
                type_name = self.nodes[owner]["type"]
            else:
                name = self.op_name(op, op.name, prefix)
                type_name = self.layer_type(op, where)
                entry = {"type": type_name, **self.layer_args(op, type_name, where)}
                self.layer_def[id(op)] = name
            style, refs, call = self.layer_inputs(op, c.node, type_name, where)
        else:
            known = self.op_names.get(id(op)) if n_call == 0 else None
            name = known or self.claim(op.name, op.name, prefix=prefix)
            fn, args, style, refs = self.op_call(op, c.node, where)
            entry = {"op": fn, **args}
            call = {}
        if call:
            entry["call"] = call
        self.nodes[name] = entry
        self.node_inputs[name] = (style, refs)
        self.tensors[c.key] = name
        self.n_outputs[name] = len(c.node.outputs)

    def layer_inputs(self, op: Any, node: Any, type_name: str | None, where: str
                     ) -> tuple[str, Any, dict[str, Any]]:
        """How a layer or model call is written: (style, refs, `call` keyword arguments)."""
        args = list(node.arguments.args)
        kwargs = dict(node.arguments.kwargs)
        try:
            sig = inspect.signature(op.call)
        except (TypeError, ValueError):
            sig = None
        for k in list(kwargs):
            v = kwargs[k]
            if _is_tensor(v) or isinstance(v, (list, tuple, dict)):
                continue
            param = sig.parameters.get(k) if sig is not None else None
            if v is None or (param is not None and param.default is not inspect.Parameter.empty
                             and param.default is v):
                del kwargs[k]
        tensor_kwargs = {k: v for k, v in kwargs.items() if _contains_tensor(v)}
        call = {k: _plain(v, f"{where}, call argument `{k}`") for k, v in kwargs.items() if k not in tensor_kwargs}
        for k, v in call.items():
            if isinstance(v, (list, dict)):
                raise _Unexpressible("GS703", f"{where}: call argument `{k}` is not a scalar; `call:` takes scalars")
        if not tensor_kwargs:
            if len(args) == 1 and _is_tensor(args[0]):
                return "single", self.ref(args[0], where), call
            if (len(args) == 1 and isinstance(args[0], (list, tuple)) and args[0]
                    and all(_is_tensor(t) for t in args[0])
                    and type_name not in catalog.POSITIONAL_INPUT_LAYERS):
                return "list", [self.ref(t, where) for t in args[0]], call
            if (len(args) > 1 and all(_is_tensor(t) for t in args)
                    and type_name in catalog.POSITIONAL_INPUT_LAYERS and len(args) <= 3):
                return "list", [self.ref(t, where) for t in args], call
        # Otherwise: every argument by name.
        if sig is None:
            raise _Unexpressible("GS703", f"{where}: cannot name the arguments of this call")
        try:
            bound = sig.bind(*args, **kwargs).arguments
        except TypeError as exc:
            raise _Unexpressible("GS703", f"{where}: cannot name the arguments of this call ({exc})") from None
        named: dict[str, Any] = {}
        for k, v in bound.items():
            kind = sig.parameters[k].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise _Unexpressible("GS703", f"{where}: the call passes `*{k}`; spec inputs name each argument")
            if _is_tensor(v):
                named[k] = self.ref(v, where)
            elif isinstance(v, (list, tuple)) and v and all(_is_tensor(t) for t in v):
                named[k] = [self.ref(t, where) for t in v]
            elif _contains_tensor(v):
                raise _Unexpressible("GS703", f"{where}: argument `{k}` nests tensors in a structure the format "
                                     "cannot write")
            else:
                value = _plain(v, f"{where}, call argument `{k}`")
                if isinstance(value, (list, dict)):
                    raise _Unexpressible("GS703", f"{where}: call argument `{k}` is not a scalar")
                call[k] = value
        if not named:
            raise _Unexpressible("GS703", f"{where}: the call has no tensor inputs")
        return "dict", named, call

    def op_call(self, op: Any, node: Any, where: str) -> tuple[str, dict[str, Any], str, Any]:
        """A keras.ops call: (function, keyword arguments, style, refs)."""
        keras = self.keras
        cls = type(op)
        cname = cls.__name__
        fname = _OP_NAMES.get(cname, _snake(cname))
        fn = getattr(keras.ops, fname, None)
        what = f"{cls.__module__}.{cname}"
        if fn is None or fname not in catalog.OPS or not cls.__module__.startswith("keras.src.ops."):
            raise _Unexpressible("GS702", f"{where} is an operation ({what}) that is not a keras.ops "
                                 "function graphspec can name")
        sig = inspect.signature(fn)
        params = sig.parameters
        config = _norm(op.get_config())
        config.pop("name", None)
        kw: dict[str, Any] = {}
        for k, v in config.items():
            if k not in params:
                raise _Unexpressible("GS702", f"{where} ({what}) has a setting `{k}` that "
                                     f"keras.ops.{fname} does not take")
            kw[k] = _plain(v, f"{where}, argument `{k}`")
        try:
            csig = inspect.signature(op.call)
            bound = csig.bind(*node.arguments.args, **node.arguments.kwargs).arguments
        except (TypeError, ValueError) as exc:
            raise _Unexpressible("GS702", f"{where}: cannot name its arguments ({exc})") from None
        tensors: list[tuple[str, Any]] = []
        for k, v in bound.items():
            kind = csig.parameters[k].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                if not all(_is_tensor(t) for t in v):
                    raise _Unexpressible("GS702", f"{where} mixes tensors and constants in `*{k}`")
                tensors.extend(("*", t) for t in v)
                continue
            if kind is inspect.Parameter.VAR_KEYWORD:
                v = dict(v)
                for kk, vv in v.items():
                    if _contains_tensor(vv):
                        raise _Unexpressible("GS702", f"{where} passes a tensor as `{kk}`")
                    kw[kk] = _plain(vv, f"{where}, argument `{kk}`")
                continue
            if _is_tensor(v):
                tensors.append((k, v))
            elif isinstance(v, (list, tuple)) and v and all(_is_tensor(t) for t in v) and not tensors \
                    and fname in catalog.SEQUENCE_OPS:
                tensors.append(("[]", list(v)))
            elif _contains_tensor(v):
                raise _Unexpressible("GS702", f"{where} ({fname}) takes tensors inside a structure "
                                     f"(`{k}`) that the format cannot write")
            else:
                if k in kw and _norm(kw[k]) != _norm(v):
                    raise _Unexpressible("GS702", f"{where} sets `{k}` twice")
                kw[k] = _plain(v, f"{where}, argument `{k}` of {fname}")
        for k in list(kw):
            if k not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                raise _Unexpressible("GS702", f"{where}: keras.ops.{fname} takes no argument `{k}`")
            p = params.get(k)
            if p is not None and p.default is not inspect.Parameter.empty and _norm(p.default) == kw[k] \
                    and type(p.default) is type(kw[k]):
                del kw[k]
        if not tensors:
            raise _Unexpressible("GS702", f"{where} ({fname}) has no tensor inputs")
        if tensors[0][0] == "[]":
            if len(tensors) > 1:
                raise _Unexpressible("GS702", f"{where} takes a list and more tensors")
            return fname, kw, "list", [self.ref(t, where) for t in tensors[0][1]]
        if tensors[0][0] == "*":
            refs = [self.ref(t, where) for _, t in tensors]
            return fname, kw, "positional", refs[0] if len(refs) == 1 else refs
        names = [k for k, _ in tensors]
        positional = [p.name for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if names == positional[:len(names)]:
            refs = [self.ref(t, where) for _, t in tensors]
            return fname, kw, "positional", refs[0] if len(refs) == 1 else refs
        for k in names:
            if k not in params:
                raise _Unexpressible("GS702", f"{where}: keras.ops.{fname} takes no argument `{k}`")
        return fname, kw, "dict", {k: self.ref(t, where) for k, t in tensors}

    # -- output ------------------------------------------------------------------------------
    def spec_data(self, name: str) -> dict[str, Any]:
        nodes: dict[str, dict[str, Any]] = {}
        previous: str | None = None
        only_input = next(iter(self.inputs)) if len(self.inputs) == 1 else None
        for node_name, entry in self.nodes.items():
            style, refs = self.node_inputs[node_name]
            out = dict(entry)
            call = out.pop("call", None)
            implicit = previous if previous is not None else only_input
            if not (style == "single" or (style == "positional" and isinstance(refs, str))) or refs != implicit:
                out["inputs"] = refs
            if call:
                out["call"] = call
            nodes[node_name] = out
            previous = node_name
        return {"graphspec": 1, "name": name, "inputs": dict(self.inputs), "nodes": nodes, "models": self.models}


def _contains_tensor(value: Any) -> bool:
    if _is_tensor(value):
        return True
    if isinstance(value, (list, tuple)):
        return any(_contains_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_tensor(v) for v in value.values())
    return False


def _collapse(key: str, value: Any) -> Any:
    """`[3, 3]` -> `3`, `[[1, 1], [1, 1]]` -> `1`, `axis: [3]` -> `3` (checked by rebuilding the layer)."""
    if key not in _COLLAPSIBLE or not isinstance(value, list) or not value:
        return value
    if key == "axis":
        return value[0] if len(value) == 1 and isinstance(value[0], int) else value
    leaves: list[Any] = []
    for v in value:
        if isinstance(v, list):
            if len(v) != 2:
                return value
            leaves.extend(v)
        else:
            leaves.append(v)
    if all(isinstance(x, int) and not isinstance(x, bool) for x in leaves) and len(set(leaves)) == 1 and (
            all(isinstance(v, list) for v in value) or all(not isinstance(v, list) for v in value)):
        return leaves[0]
    return value


# -- YAML ---------------------------------------------------------------------------------------
def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e")
        return text
    if isinstance(value, str):
        if _PLAIN_STR.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value.replace("$", "$$"))  # `$` starts a variable in a spec; `$$` is a `$`
    raise TypeError(f"cannot write {type(value).__name__}")


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def to_yaml(data: dict[str, Any], header: Iterable[str] = ()) -> str:
    """Readable YAML: one flow-style line per input, node and model."""
    lines = [f"# {h}" if h else "#" for h in header]
    lines.append(f"graphspec: {data['graphspec']}")
    lines.append(f"name: {_scalar(data['name'])}")
    for section in ("inputs", "nodes", "models"):
        items = data.get(section)
        if not items:
            continue
        lines.append(f"{section}:")
        for key, value in items.items():
            lines.append(f"  {_scalar(key)}: {_flow(value)}")
    return "\n".join(lines) + "\n"


# -- verification ------------------------------------------------------------------------------
def layer_types(model: Any) -> list[str]:
    """Layer class names in order, input layers left out (a Sequential lists none); a
    Sequential counts as a functional model (spec models are functional)."""
    return ["Functional" if type(layer).__name__ == "Sequential" else type(layer).__name__
            for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _trainable_count(model: Any) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


class _Matcher:
    """Walks two models from their outputs and compares every operation and call."""

    def __init__(self, keras: Any) -> None:
        self.keras = keras
        self.ops: dict[int, Any] = {}
        self.seen: set[tuple[int, int]] = set()
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        if len(self.problems) < 5:
            self.problems.append(text)

    @staticmethod
    def functional(model: Any) -> Any:
        return getattr(model, "_functional", None) or model

    def model(self, a: Any, b: Any) -> None:
        fa, fb = self.functional(a), self.functional(b)
        if len(fa.inputs) != len(fb.inputs) or len(fa.outputs) != len(fb.outputs):
            self.problem(f"`{a.name}`: {len(fa.inputs)} inputs and {len(fa.outputs)} outputs, rebuilt "
                         f"{len(fb.inputs)} and {len(fb.outputs)}")
            return
        stack = list(zip(fa.inputs, fb.inputs)) + list(zip(fa.outputs, fb.outputs))
        while stack and len(self.problems) < 5:
            ta, tb = stack.pop()
            oa, ia, ka = ta._keras_history
            ob, ib, kb = tb._keras_history
            if ka != kb:
                self.problem(f"`{oa.name}`: output {ka} is used where the rebuilt model uses output {kb}")
                continue
            known = self.ops.get(id(oa))
            if known is None:
                self.ops[id(oa)] = ob
                self.operation(oa, ob)
            elif known is not ob:
                self.problem(f"`{oa.name}` is one object called several times, but not in the rebuilt model")
                continue
            if (id(oa), ia) in self.seen:
                continue
            self.seen.add((id(oa), ia))
            if isinstance(oa, self.keras.layers.InputLayer):
                continue
            sa, xa = self.arguments(oa, oa._inbound_nodes[ia])
            sb, xb = self.arguments(ob, ob._inbound_nodes[ib])
            if sa != sb or len(xa) != len(xb):
                self.problem(f"`{oa.name}` is called with {sa}, rebuilt with {sb}")
                continue
            stack.extend(zip(xa, xb))

    def operation(self, a: Any, b: Any) -> None:
        ta = "Functional" if type(a).__name__ == "Sequential" else type(a).__name__
        tb = "Functional" if type(b).__name__ == "Sequential" else type(b).__name__
        if ta != tb:
            self.problem(f"`{a.name}` is a {ta}, rebuilt as a {tb}")
            return
        if isinstance(a, self.keras.Model):
            self.model(a, b)
            return
        if isinstance(a, self.keras.layers.InputLayer):
            if tuple(a.batch_shape) != tuple(b.batch_shape) or str(a.dtype) != str(b.dtype):
                self.problem(f"input `{a.name}`: {a.batch_shape} {a.dtype}, rebuilt {b.batch_shape} {b.dtype}")
            return
        ca = _strip_names(_norm(a.get_config()))
        cb = _strip_names(_norm(b.get_config()))
        if ca != cb:
            self.problem(f"`{a.name}` ({ta}): configuration differs in {', '.join(_diff_keys(ca, cb))}")

    @staticmethod
    def arguments(op: Any, node: Any) -> tuple[Any, list[Any]]:
        args = list(node.arguments.args)
        kwargs = {k: v for k, v in node.arguments.kwargs.items() if v is not None}
        try:
            bound: dict[str, Any] = dict(inspect.signature(op.call).bind(*args, **kwargs).arguments)
        except (TypeError, ValueError):
            bound = {"*": args, **kwargs}
        tensors: list[Any] = []

        def canon(v: Any) -> Any:
            if _is_tensor(v):
                tensors.append(v)
                return "<tensor>"
            if isinstance(v, (list, tuple)):
                return [canon(x) for x in v]
            if isinstance(v, dict):
                return {k: canon(x) for k, x in v.items()}
            return _norm(v)

        return canon(bound), tensors


def compare(original: Any, rebuilt: Any) -> list[str]:
    """Differences between two models (empty: equivalent), at most a few."""
    from graphspec.build.backend import keras

    problems = []
    if original.count_params() != rebuilt.count_params():
        problems.append(f"{original.count_params():,} parameters, rebuilt {rebuilt.count_params():,}")
    if _trainable_count(original) != _trainable_count(rebuilt):
        problems.append(f"{_trainable_count(original):,} trainable parameters, rebuilt "
                        f"{_trainable_count(rebuilt):,}")
    ta, tb = layer_types(original), layer_types(rebuilt)
    if ta != tb:
        i = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
        problems.append(f"layer types differ at layer {i}: {ta[i:i + 3]} vs rebuilt {tb[i:i + 3]} "
                        f"({len(ta)} vs {len(tb)} layers)")
    m = _Matcher(keras)
    m.model(original, rebuilt)
    problems.extend(m.problems)
    return problems


# -- entry points -------------------------------------------------------------------------------
def _diag(code: str, message: str, source: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, Location(source), hint)


def _plugin_classes(plugins: list[str]) -> dict[str, tuple[type, str]]:
    from graphspec.build import plugins as plugin_loader

    out: dict[str, tuple[type, str]] = {}
    for p in plugins:
        for name, cls in plugin_loader.load_all([p]).items():
            out.setdefault(name, (cls, p))
    return out


def import_model(model: Any, *, source: str = "<model>", plugins: list[str] | None = None,
                 name: str | None = None, verify: bool = True) -> Imported:
    """A spec for a functional Keras model. Raises SpecError naming what the format cannot express."""
    from graphspec.build.backend import keras

    plugin_list = list(plugins or [])
    imp = _Importer(keras, source, _plugin_classes(plugin_list))
    try:
        if not isinstance(model, keras.Model):
            raise _Unexpressible("GS700", f"{source} is a {type(model).__name__}, not a keras.Model")
        mname = imp.model(model, top=True, where=f"model `{model.name}`")
        if name is not None and name != mname:
            if not _NAME.match(name):
                raise UsageError(f"--name {name!r}: a name is letters, digits, `_` and `-`, not starting with a digit")
            if name in imp.models:
                raise UsageError(f"--name {name!r}: a sub-model of the model already has that name")
            imp.models = {(name if k == mname else k): v for k, v in imp.models.items()}
            mname = name
        imp.models[mname]["expect"] = {"params": int(model.count_params())}
        # The top model last: sub-models before the model that calls them.
        imp.models = {k: v for k, v in imp.models.items() if k != mname} | {mname: imp.models[mname]}
    except _Unexpressible as exc:
        raise SpecError([_diag(exc.code, exc.message, source, exc.hint)]) from None
    spec_name = mname
    data = imp.spec_data(spec_name)
    header = [f"Imported from {source} by `graphspec import` (Keras {keras.__version__}).",
              f"{model.count_params():,} parameters, {len(imp.nodes)} nodes."]
    from graphspec.spec.plugins import BUILTIN

    user_plugins = [p for p in imp.plugins_needed if p not in BUILTIN]
    if user_plugins:
        header.append("Build it with: " + " ".join(f"--plugin {p}" for p in user_plugins))
    if imp.renames:
        header.append("Renamed (Keras name -> spec name):")
        header.extend(f"  {k} -> {v}" for k, v in sorted(imp.renames.items()))
    text = to_yaml(data, header)
    imported = Imported(spec_name, data, text, list(imp.plugins_needed), dict(imp.renames),
                        int(model.count_params()), len(imp.nodes), False)
    if verify:
        imported.rebuilt = verify_text(model, text, imp.plugins_needed, source, mname)
        imported.verified = True
    return imported


def build_text(text: str, plugins: list[str], model_name: str | None = None, file: str = "<imported>") -> Any:
    """Check and build a spec text (uncompiled); its one public model."""
    from graphspec import compiler

    checked = compiler.check(None, text=text, plugins=plugins)
    checked.file = file
    checked.raise_for_errors()
    built = compiler.build(checked, compile=False)
    if model_name is not None and model_name in built:
        return built[model_name]
    return next(iter(built.values()))


def verify_text(model: Any, text: str, plugins: list[str], source: str, model_name: str | None = None) -> Any:
    """Build the spec back and compare it with `model`; SpecError if they differ. Returns the rebuilt model."""
    try:
        rebuilt = build_text(text, plugins, model_name)
    except SpecError as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        detail = f"{first.code}: {first.message}" if first else str(exc)
        raise SpecError([_diag("GS704", f"the imported spec does not build back: {detail}", source,
                               "this is a graphspec bug; please report it with the model")]) from None
    problems = compare(model, rebuilt)
    if problems:
        raise SpecError([Diagnostic("GS704", Severity.ERROR,
                                    f"the imported spec does not rebuild the same model: {problems[0]}",
                                    Location(source), "nothing was written; please report it with the model",
                                    tuple(problems[1:]))])
    return rebuilt


def load_source(source: str, *, plugins: list[str] | None = None, args: dict[str, Any] | None = None) -> Any:
    """The model named by SOURCE: `keras.applications.NAME`, a `.keras` file or `module:function`."""
    from graphspec.build.backend import keras

    _plugin_classes(list(plugins or []))  # registers the plugins' layers for loading
    args = dict(args or {})
    if source.startswith(("keras.applications.", "applications.")):
        app = source.rsplit(".", 1)[1]
        if app not in catalog.APPLICATIONS or not hasattr(keras.applications, app):
            hint = catalog.did_you_mean(app, list(catalog.APPLICATIONS))
            raise UsageError(f"unknown application {app!r}" + (f" ({hint})" if hint else ""))
        args.setdefault("weights", None)
        try:
            return getattr(keras.applications, app)(**args)
        except Exception as exc:
            raise UsageError(f"keras.applications.{app}({_kwargs_text(args)}) failed: {exc}") from None
    if source.endswith((".keras", ".h5")):
        if args:
            raise UsageError("--arg applies to keras.applications and module:function sources only")
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"{source}: no such file")
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:
            text = str(exc)
            if "Lambda" in text or "lambda" in text:
                raise SpecError([_diag("GS701", "the model contains a Lambda layer (Python code), which a spec "
                                       "cannot express", source,
                                       "rewrite it with layers or keras.ops calls, or as a custom layer in a "
                                       "plugin (--plugin)")]) from None
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise SpecError([_diag("GS700", f"cannot load the model: {first}", source,
                                   "custom layers need the plugin that defines them (--plugin)")]) from None
    if ":" in source:
        module_name, _, fn_name = source.rpartition(":")
        module = _load_module(module_name)
        fn = getattr(module, fn_name, None)
        if not callable(fn):
            raise UsageError(f"{module_name} has no function {fn_name!r}")
        try:
            return fn(**args)
        except Exception as exc:
            raise UsageError(f"{source}({_kwargs_text(args)}) failed: {type(exc).__name__}: {exc}") from None
    raise UsageError(f"cannot tell what {source!r} is: give a .keras file, keras.applications.NAME or "
                     "module:function")


def _kwargs_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _load_module(name: str) -> Any:
    """A module named on the command line (a .py file or a module name)."""
    from graphspec.build import plugins as plugin_loader

    return plugin_loader.load(name)


def import_source(source: str, *, plugins: list[str] | None = None, args: dict[str, Any] | None = None,
                  name: str | None = None, verify: bool = True) -> Imported:
    """Load SOURCE and import it; see :func:`load_source` and :func:`import_model`."""
    model = load_source(source, plugins=plugins, args=args)
    return import_model(model, source=source, plugins=plugins, name=name, verify=verify)

