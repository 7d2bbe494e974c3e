"""The resolved graph -> keras.Model objects. The only stage that imports Keras.

Layers are built once per node and shared by every model over the graph (the
encoder and the autoencoder share weights, as in Keras's guide). A `model:`
node calls the model object itself, unless it asks for a `fresh` instance, in
which case the model's part of the graph is built again with new layers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphspec.spec import files, schema
from graphspec.spec.layers import CALLABLE_ARGS
from graphspec.diagnostics import Diagnostic, Diagnostics, Severity
from graphspec.analysis.graph import Graph, Node, Ref
from graphspec.spec.indexing import parse_key
from graphspec.spec.source import Source

from graphspec.build.backend import keras
from graphspec.build.declared import Declared
from graphspec.build.declared import check as check_declared


class _Failed(Exception):
    """A node could not be built; the diagnostic is already recorded."""


# Arguments whose YAML lists Keras wants as tuples.
_TUPLE_ARGS = {"kernel_size", "strides", "pool_size", "dilation_rate", "size", "target_shape", "dims",
               "output_padding", "input_shape", "padding", "cropping"}


def _to_keras_arg(key: str, value: Any) -> Any:
    if isinstance(value, list) and key in _TUPLE_ARGS:
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def _deserialize_named(kind: str, value: Any) -> Any:
    """`{type: HeNormal, seed: 1}` -> a Keras object; strings pass through to Keras."""
    if not isinstance(value, dict):
        return value
    args = {k: v for k, v in value.items() if k != "type"}
    module = {"initializer": keras.initializers, "regularizer": keras.regularizers,
              "constraint": keras.constraints}[kind]
    return getattr(module, value["type"])(**args)


def layer_kwargs(args: dict[str, Any], make_layer: Callable[[str, dict[str, Any], str | None], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key in {"layer", "backward_layer"} and isinstance(value, dict):
            sub = dict(value)
            out[key] = make_layer(sub.pop("type"), sub, None)
        elif key.endswith(("_initializer", "_regularizer", "_constraint")):
            out[key] = _deserialize_named(key.rsplit("_", 1)[1], value)
        else:
            out[key] = _to_keras_arg(key, value)
    return out


class Emitter:
    """Builds the models of one graph. One instance = one set of layer objects."""

    def __init__(self, graph: Graph, src: Source, plugins: dict[str, type], diags: Diagnostics,
                 roots: files.Roots | None = None) -> None:
        self.graph = graph
        self.roots = roots or files.roots_for(src.file)
        self.src = src
        self.plugins = plugins
        self.diags = diags
        self.tensors: dict[str, Any] = {}
        self.layers: dict[str, Any] = {}
        self.apps: dict[str, Any] = {}
        self.models: dict[str, Any] = {}
        self.failed: set[str] = set()
        # Layers and outputs of nodes built only inside `fresh` model instances (the first of each).
        self.instance_layers: dict[str, Any] = {}
        self.instance_tensors: dict[str, Any] = {}

    # -- errors ------------------------------------------------------------------
    def fail(self, node: Node, exc: BaseException, what: str) -> _Failed:
        message = str(exc).strip().splitlines()
        text = " ".join(line.strip() for line in message[:6]) or type(exc).__name__
        if len(text) > 600:
            text = text[:600] + " ..."
        shapes = self._input_shapes(node)
        notes = (f"input shapes: {shapes}",) if shapes else ()
        self.diags.add(Diagnostic("GS301", Severity.ERROR, f"{what} `{node.name}`: {text}",
                                  self.src.location(node.path, key=True), None, notes))
        return _Failed(node.name)

    def _input_shapes(self, node: Node) -> str:
        shapes = []
        for ref in node.inputs:
            t = self.tensors.get(ref.node)
            if t is not None and ref.layer is None:
                for x in t if isinstance(t, (list, tuple)) else [t]:
                    shapes.append(str(tuple(x.shape)))
        return ", ".join(shapes)

    # -- layers ---------------------------------------------------------------------
    def make_layer(self, type_name: str, args: dict[str, Any], name: str | None) -> Any:
        cls = self.plugins.get(type_name) or getattr(keras.layers, type_name)
        kwargs = layer_kwargs(args, self.make_layer)
        if type_name not in self.plugins:
            for key in files.FILE_ARGS.get(type_name, ()):
                if isinstance(kwargs.get(key), str):
                    # Read here, through the checks lint applies; Keras gets the terms, never the path.
                    kwargs[key] = files.read_vocabulary(kwargs[key], self.roots,
                                                        integers=type_name == "IntegerLookup")
        if name is not None:
            kwargs["name"] = name
        return cls(**kwargs)

    def resolve(self, ref: Ref) -> Any:
        if ref.node in self.failed:
            raise _Failed(ref.node)
        if ref.layer is None:
            value = self.tensors[ref.node]
            if ref.index is None:
                return value
            if isinstance(value, (list, tuple)) and ref.index < len(value):
                return value[ref.index]
            node = self.graph.nodes[ref.node]
            count = len(value) if isinstance(value, (list, tuple)) else 1
            self.diags.add(Diagnostic("GS207", Severity.ERROR,
                                      f"`{ref}`: node `{ref.node}` has {count} output{'s' if count != 1 else ''}",
                                      self.src.location(node.path, key=True),
                                      "outputs count from 0; a recurrent layer has several with `return_state: true`"))
            raise _Failed(ref.node)
        app = self.apps[ref.node]
        if ref.layer == "*":
            return [layer.output for layer in app.layers]
        try:
            return app.get_layer(ref.layer).output
        except ValueError:
            node = self.graph.nodes[ref.node]
            names = [layer.name for layer in app.layers]
            from graphspec.spec.catalog import did_you_mean

            self.diags.add(Diagnostic("GS207", Severity.ERROR, f"`{ref.node}` has no layer `{ref.layer}`",
                                      self.src.location(node.path, key=True), did_you_mean(ref.layer, names)))
            raise _Failed(ref.node) from None

    def call_inputs(self, node: Node) -> tuple[list[Any], dict[str, Any]]:
        values = [self.resolve(r) for r in node.inputs]
        if node.style == "dict":
            kwargs: dict[str, Any] = {}
            for key, val in zip(node.input_keys, values):
                if key in kwargs:
                    kwargs[key] = (kwargs[key] if isinstance(kwargs[key], list) else [kwargs[key]]) + [val]
                else:
                    kwargs[key] = val
            return [], kwargs
        if node.style == "list":
            return [values], {}
        return values, {}

    def build_node(self, node: Node) -> None:
        ns = node.spec
        if node.kind == "input":
            assert isinstance(ns, schema.InputSpec)
            self.tensors[node.name] = keras.Input(
                shape=tuple(ns.shape), dtype=ns.dtype, name=node.name, sparse=ns.sparse,
                batch_size=ns.batch_size)
            return
        assert isinstance(ns, schema.NodeSpec)
        args, kwargs = self.call_inputs(node)
        kwargs.update(ns.call)
        if node.kind == "type":
            assert ns.type is not None
            try:
                wrapped = node.wrapped_model
                if wrapped is not None:  # TimeDistributed over one of the spec's models (that model's object)
                    rest = {k: v for k, v in node.args.items() if k != "layer"}
                    layer = getattr(keras.layers, ns.type)(self.model(wrapped), name=node.name,
                                                           **layer_kwargs(rest, self.make_layer))
                else:
                    layer = self.make_layer(ns.type, node.args, node.name)
            except _Failed:
                raise
            except files.FileProblem as exc:
                paths = [p for p, _ in files.file_args(ns.type, node.args, node.path)]
                self.diags.add(Diagnostic("GS119", Severity.ERROR, exc.message,
                                          self.src.location(paths[0] if paths else node.path), exc.hint))
                raise _Failed(node.name) from None
            except Exception as exc:  # Keras raises ValueError/TypeError for bad arguments
                raise self.fail(node, exc, f"cannot create {ns.type}") from None
            self.layers[node.name] = layer
        elif node.kind == "share":
            assert node.owner is not None
            layer = self.layers.get(node.owner) or self.apps.get(node.owner)
            if layer is None:
                raise _Failed(node.name)
        elif node.kind == "op":
            assert ns.op is not None
            fn: Any = keras.ops
            for part in ns.op.split("."):  # `image.resize` is keras.ops.image.resize
                fn = getattr(fn, part)
            op_args = {k: _to_keras_arg(k, v) for k, v in node.args.items()}
            if ns.op == "einsum":
                args = [op_args.pop("subscripts"), *args]
            if ns.op == "get_item" and "key" in op_args:
                op_args["key"] = parse_key(op_args["key"])  # checked when the spec was read
            try:
                self.tensors[node.name] = fn(*args, **op_args, **kwargs)
            except Exception as exc:
                raise self.fail(node, exc, f"keras.ops.{ns.op} failed on") from None
            return
        elif node.kind == "application":
            assert ns.application is not None
            app = self._application(node, ns)
            self.apps[node.name] = app
            self.layers[node.name] = app
            if not node.inputs:
                self.tensors[node.name] = app.output
                return
            layer = app
        else:
            assert ns.model is not None
            layer = self.model_instance(ns.model, fresh=ns.fresh, instance_name=node.name)
            called = self.graph.models[ns.model].spec
            if called.inputs_as == "dict" and node.style == "dict":
                args, kwargs = [{k: v for k, v in kwargs.items() if k not in ns.call}], dict(ns.call)
        try:
            out = layer(*args, **kwargs)
        except Exception as exc:
            what = f"{type(layer).__name__} failed on"
            raise self.fail(node, exc, what) from None
        if isinstance(out, dict):
            out = [out[k] for k in sorted(out)]  # a model that returns a dict: its outputs by name, as Keras flattens them
        if (not hasattr(out, "_keras_history") and layer.weights
                and not any(hasattr(t, "_keras_history") for t in keras.tree.flatten(out))):
            self.diags.add(Diagnostic(
                "GS301", Severity.ERROR, f"`{node.name}` is applied only to constants (its inputs depend on no model "
                f"input): Keras computes it once, when the model is built, and its {layer.count_params():,} "
                "weights would not be part of the model", self.src.location(node.path, key=True),
                "compute its input from a model input, or give the layer its own weight (a plugin layer)"))
            raise _Failed(node.name)
        self.tensors[node.name] = out

    def _application(self, node: Node, ns: schema.NodeSpec) -> Any:
        fn = getattr(keras.applications, ns.application or "")
        kwargs = {k: _to_keras_arg(k, v) for k, v in node.args.items()}
        kwargs.setdefault("weights", None)
        try:
            # Under its own default name: some applications derive their layers' names, or
            # their configuration (EfficientNetV2), from it. The model then takes the node's.
            app = fn(**kwargs)
        except Exception as exc:
            raise self.fail(node, exc, f"cannot create {ns.application}") from None
        app.name = node.name
        return app

    # -- models -------------------------------------------------------------------------
    def build_all(self, names: list[str] | None = None) -> dict[str, Any]:
        self.build_nodes(self._needed(names))
        out = {}
        for model in self.graph.models.values():
            if names is not None and model.name not in names:
                continue
            if model.submodel and names is None:
                continue
            try:
                out[model.name] = self.model(model.name)
            except _Failed:
                pass
        return out

    def build_nodes(self, wanted: list[str]) -> None:
        """Build nodes in graph order, skipping those whose inputs failed."""
        for name in wanted:
            node = self.graph.nodes[name]
            if any(r.node in self.failed for r in node.inputs) or (node.owner in self.failed):
                self.failed.add(name)
                continue
            try:
                self.build_node(node)
            except _Failed:
                self.failed.add(name)

    def _needed(self, names: list[str] | None) -> list[str]:
        """Nodes needed for the named models: their members and everything those depend on."""
        # Without names: the public models. A submodel's nodes come in through the models that
        # call it; one only ever called `fresh` is built by its instances, not once more here.
        models = [m for m in self.graph.models.values()
                  if (m.name in names if names is not None else not m.submodel)]
        todo = [n for m in models for n in m.nodes]
        needed: set[str] = set()
        while todo:
            n = todo.pop()
            if n in needed:
                continue
            needed.add(n)
            todo.extend(self.graph.deps(n, fresh_internals=False))
        return [n for n in self.graph.order if n in needed]

    def model(self, name: str, keras_name: str | None = None) -> Any:
        if name in self.models:
            return self.models[name]
        m = self.graph.models[name]
        inputs: list[Any] = []
        for r in m.inputs:
            if r.node in self.failed:
                raise _Failed(r.node)
            app = self.apps.get(r.node)
            inputs.extend(app.inputs if app is not None and r.layer is None else [self.resolve(r)])
        outputs: list[Any] = []
        for r in m.outputs:
            value = self.resolve(r)
            outputs.extend(value if isinstance(value, list) else [value])
        node = self.graph.nodes[m.outputs[0].node] if m.outputs else None
        keras_in: Any = inputs[0] if len(inputs) == 1 else inputs
        keras_out: Any = outputs[0] if len(outputs) == 1 else outputs
        if m.spec.inputs_as == "dict":
            by_name = {r.node: t for r, t in zip(m.inputs, inputs)}
            written = [Ref.parse(r).node for r in ([m.spec.inputs] if isinstance(m.spec.inputs, str)
                                                   else m.spec.inputs or [])]
            keras_in = {k: by_name[k] for k in written + sorted(by_name) if k in by_name}  # in the order written
        if m.spec.outputs_as == "dict":
            by_key = {str(r): t for r, t in zip(m.outputs, outputs)}
            written = [m.spec.outputs] if isinstance(m.spec.outputs, str) else list(m.spec.outputs)
            keras_out = {k: by_key[k] for k in written + sorted(by_key) if k in by_key}  # in the order written
        try:
            km = keras.Model(inputs=keras_in, outputs=keras_out, name=keras_name or name)
        except Exception as exc:
            if node is None:
                raise
            raise self.fail(node, exc, f"cannot build model `{name}` ending at") from None
        self.models[name] = km
        return km

    def model_instance(self, name: str, *, fresh: bool, instance_name: str) -> Any:
        if not fresh:
            return self.model(name)
        # A new instance: the model's part of the graph (and the layers its nodes
        # share) built again, with new layer objects.
        sub = Emitter(self.graph, self.src, self.plugins, self.diags, self.roots)
        sub.build_nodes(sub._needed([name]))
        # The first instance's layers stand for nodes built nowhere else, for the plugin declaration check.
        for node, layer in {**sub.instance_layers, **sub.layers}.items():
            self.instance_layers.setdefault(node, layer)
        for node, tensor in {**sub.instance_tensors, **sub.tensors}.items():
            self.instance_tensors.setdefault(node, tensor)
        return sub.model(name, keras_name=instance_name)


def build_models(graph: Graph, src: Source, plugins: dict[str, type], names: list[str] | None = None,
                 declared: Mapping[str, Declared] | None = None, *, roots: files.Roots | None = None
                 ) -> tuple[dict[str, Any], Diagnostics]:
    """Build the public models (or those named); diagnostics for what failed, and for the
    plugin declarations (``declared``, by node) that disagree with what was built.

    Files the spec names are read from `roots` only (default: the spec's folder).
    """
    diags = Diagnostics()
    emitter = Emitter(graph, src, plugins, diags, roots)
    models = emitter.build_all(names)
    diags.extend(check_declared(declared or {}, {**emitter.instance_layers, **emitter.layers},
                                {**emitter.instance_tensors, **emitter.tensors}))
    wanted = [m for m in graph.models.values() if (m.name in names if names is not None else not m.submodel)]
    for m in wanted:
        if m.name not in models and not diags.has_errors:
            # Never silent: a model that did not build has a reason, even an unforeseen one.
            diags.add(Diagnostic("GS900", Severity.ERROR, f"model `{m.name}` could not be built",
                                 src.location(m.path, key=True), "this is a bug in graphspec: please report it"))
    return models, diags


def compile_model(model: Any, settings: schema.CompileSpec) -> None:
    """Apply compile settings (names were checked against the catalog)."""
    model.compile(
        optimizer=make_named(keras.optimizers, settings.optimizer),
        loss=_map(settings.loss, lambda v: make_named(keras.losses, v)),
        loss_weights=settings.loss_weights,
        metrics=_map(settings.metrics, lambda v: make_named(keras.metrics, v)),
        jit_compile=settings.jit_compile,
        steps_per_execution=settings.steps_per_execution,
    )


def _map(value: Any, fn: Callable[[Any], Any]) -> Any:
    if value is None:
        return None
    if isinstance(value, dict) and "type" not in value:
        return {k: _map(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map(v, fn) for v in value]
    return fn(value)


def make_named(module: Any, value: Any) -> Any:
    if isinstance(value, dict):
        args = {k: v for k, v in value.items() if k != "type"}
        for key, arg in args.items():
            table = CALLABLE_ARGS.get((value["type"], key))
            if table is not None:
                # Checked against the closed table by lint; resolved here, never imported or eval'd.
                if not isinstance(arg, str) or table.resolve(arg) is None:
                    raise ValueError(f"{value['type']}.{key} must name a {table.kind}; got {arg!r}")
                args[key] = getattr(keras.metrics, arg)
        if isinstance(args.get("learning_rate"), dict):
            lr = dict(args["learning_rate"])
            args["learning_rate"] = getattr(keras.optimizers.schedules, lr.pop("type"))(**lr)
        return getattr(module, value["type"])(**args)
    return value
