"""Matching a model's calls to spec nodes: a layer call's type and arguments, a keras.ops call's
function, arguments and tensor inputs, and how either call passes its inputs.

* a layer of `keras.layers` -> its type with only the arguments that differ from the layer's
  defaults (checked by rebuilding the layer);
* a custom layer -> its type when a plugin defines it (`--plugin`; the layers of
  `keras.applications` that live outside `keras.layers` come with graphspec's own plugin,
  :mod:`graphspec.build.app_layers`);
* an operation of `keras.ops` -> the function with the operation's settings as keyword arguments.

Tensors are written as references by a function the walk passes in (:mod:`graphspec.importer.walk`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from graphspec.spec import catalog
from graphspec.importer.values import Unexpressible, contains_tensor, diff_keys, is_tensor, norm, plain, strip_names

APP_LAYERS_PLUGIN = "graphspec.build.app_layers"
# Arguments whose uniform lists Keras accepts as one number (`kernel_size: 3`).
_COLLAPSIBLE = {"kernel_size", "strides", "pool_size", "dilation_rate", "size", "padding", "cropping", "axis"}
# Arguments of a wrapped layer that its wrapper sets (Bidirectional: from `return_sequences`).
_SET_BY_WRAPPERS = {"zero_output_for_mask"}
# Operation classes whose keras.ops function is not their snake_case name.
_OP_NAMES: dict[str, str] = {}

Ref = Callable[[Any, str], str]  # a tensor (and where it is used, for messages) -> its spec reference


def load_plugin_classes(plugins: list[str]) -> dict[str, tuple[type, str]]:
    """The layer classes the plugins define: class name -> (class, plugin). Loading a plugin also
    registers its layers with Keras (for loading .keras files)."""
    from graphspec.build import plugins as plugin_loader

    out: dict[str, tuple[type, str]] = {}
    for p in plugins:
        for name, cls in plugin_loader.load_all([p]).items():
            out.setdefault(name, (cls, p))
    return out


class CallMatcher:
    """Layer types, layer arguments and operation calls, as a spec writes them."""

    def __init__(self, keras: Any, plugin_classes: dict[str, tuple[type, str]]) -> None:
        self.keras = keras
        self.plugin_classes = plugin_classes  # class name -> (class, plugin)
        self._app_classes: dict[str, type] | None = None
        self.plugin_tables: dict[str, dict[str, Any]] = {}
        self.plugins_needed: list[str] = []
        self._defaults: dict[tuple[Any, str], dict[str, Any] | None] = {}

    # -- classes -----------------------------------------------------------------------
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
            raise Unexpressible(
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
        raise Unexpressible(
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
                    self._defaults[key] = norm(make().get_config())
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
            raise Unexpressible("GS701", f"{where}: {kind} {cname!r} is not one of Keras's built-in {kind}s",
                                "custom initializers, regularizers and constraints cannot be named in a spec")
        config = norm(value.get("config") or {})
        try:
            default = norm(getattr(module, cname)().get_config())
        except Exception:
            default = {}
        args = {k: plain(v, where) for k, v in config.items() if k not in default or default[k] != v}
        if not args:
            # A short name where Keras resolves it to the same object (it does not
            # for every class: `constant` fails in Keras 3.15).
            for short in (catalog.snake(cname), cname):
                if not table.resolve(short):
                    continue
                try:
                    if norm(module.get(short).get_config()) == config:
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
                raise Unexpressible("GS701", f"{where}: dtype policy {cname} cannot be written in a spec",
                                    "quantized and per-variable policies are not part of the format")
            if key.endswith(("_initializer", "_regularizer", "_constraint")):
                return self.named_object(key.rsplit("_", 1)[1], value, where)
            if key in {"layer", "backward_layer"}:
                sub = self.keras.layers.deserialize(value)
                type_name = self.layer_type(sub, where)
                args = self.layer_args(sub, type_name, f"{where} ({key})", nested=True)
                return {"type": type_name, **args}
            raise Unexpressible("GS701", f"{where}: argument `{key}` is a Keras object ({cname}) that a spec "
                                "cannot express")
        if key == "activation" or key.endswith("_activation"):
            if value is None or (isinstance(value, str) and catalog.ACTIVATIONS.resolve(value)):
                return value
            raise Unexpressible("GS701", f"{where}: activation {value!r} is not a Keras built-in activation")
        if isinstance(value, dict):
            raise Unexpressible("GS701", f"{where}: argument `{key}` is a mapping, which layer arguments "
                                "cannot be in a spec")
        return plain(value, where)

    def layer_args(self, layer: Any, type_name: str, where: str, *, nested: bool = False) -> dict[str, Any]:
        """The arguments that rebuild `layer`: its config less its defaults, checked by rebuilding it.

        A `nested` layer (the `layer` of a wrapper such as Bidirectional) is checked
        by rebuilding the wrapper: the wrapper sets some of its arguments itself.
        """
        cls = type(layer)
        config = norm(layer.get_config())
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
                    strip_names(defaults[key]) == strip_names(value)):
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
            diff = diff_keys(strip_names(config), strip_names(rebuilt))
            if not diff:
                problems = self.check_args(type_name, args, where)
                if problems:
                    raise Unexpressible("GS701", problems[0])
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
                raise Unexpressible("GS701", problems[0])
            return ordered(full)
        rebuilt = self.rebuild_config(type_name, full)
        diff = diff_keys(config, rebuilt) if isinstance(rebuilt, dict) else ["(it cannot be created)"]
        raise Unexpressible("GS704", f"{where}: {type_name} does not rebuild from its arguments (differs in "
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
            config = norm(layer.get_config())
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        config.pop("name", None)
        return config  # type: ignore[no-any-return]

    def rebuilds(self, type_name: str, args: dict[str, Any], config: dict[str, Any]) -> bool:
        rebuilt = self.rebuild_config(type_name, args)
        return isinstance(rebuilt, dict) and strip_names(rebuilt) == strip_names(config)

    def check_args(self, type_name: str, args: dict[str, Any], where: str) -> list[str]:
        from graphspec.spec import layers

        out = []
        for path, _, (_code, message, hint) in layers.check_args(type_name, args, ("nodes", "x"),
                                                                   plugins=self.plugin_tables):
            key = ".".join(str(p) for p in path[2:]) or "(layer)"
            out.append(f"{where}: argument `{key}`: {message}" + (f" ({hint})" if hint else ""))
        return out

    # -- how a call passes its inputs ------------------------------------------------------
    def layer_inputs(self, op: Any, node: Any, type_name: str | None, where: str, ref: Ref
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
            if is_tensor(v) or isinstance(v, (list, tuple, dict)):
                continue
            param = sig.parameters.get(k) if sig is not None else None
            if v is None or (param is not None and param.default is not inspect.Parameter.empty
                             and param.default is v):
                del kwargs[k]
        tensor_kwargs = {k: v for k, v in kwargs.items() if contains_tensor(v)}
        call = {k: plain(v, f"{where}, call argument `{k}`") for k, v in kwargs.items() if k not in tensor_kwargs}
        for k, v in call.items():
            if isinstance(v, (list, dict)):
                raise Unexpressible("GS703", f"{where}: call argument `{k}` is not a scalar; `call:` takes scalars")
        if not tensor_kwargs:
            if len(args) == 1 and is_tensor(args[0]):
                return "single", ref(args[0], where), call
            if (len(args) == 1 and isinstance(args[0], (list, tuple)) and args[0]
                    and all(is_tensor(t) for t in args[0])
                    and type_name not in catalog.POSITIONAL_INPUT_LAYERS):
                return "list", [ref(t, where) for t in args[0]], call
            if (len(args) > 1 and all(is_tensor(t) for t in args)
                    and type_name in catalog.POSITIONAL_INPUT_LAYERS and len(args) <= 3):
                return "list", [ref(t, where) for t in args], call
        # Otherwise: every argument by name.
        if sig is None:
            raise Unexpressible("GS703", f"{where}: cannot name the arguments of this call")
        try:
            bound = sig.bind(*args, **kwargs).arguments
        except TypeError as exc:
            raise Unexpressible("GS703", f"{where}: cannot name the arguments of this call ({exc})") from None
        named: dict[str, Any] = {}
        for k, v in bound.items():
            kind = sig.parameters[k].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise Unexpressible("GS703", f"{where}: the call passes `*{k}`; spec inputs name each argument")
            if is_tensor(v):
                named[k] = ref(v, where)
            elif isinstance(v, (list, tuple)) and v and all(is_tensor(t) for t in v):
                named[k] = [ref(t, where) for t in v]
            elif contains_tensor(v):
                raise Unexpressible("GS703", f"{where}: argument `{k}` nests tensors in a structure the format "
                                    "cannot write")
            else:
                value = plain(v, f"{where}, call argument `{k}`")
                if isinstance(value, (list, dict)):
                    raise Unexpressible("GS703", f"{where}: call argument `{k}` is not a scalar")
                call[k] = value
        if not named:
            raise Unexpressible("GS703", f"{where}: the call has no tensor inputs")
        return "dict", named, call

    def op_call(self, op: Any, node: Any, where: str, ref: Ref) -> tuple[str, dict[str, Any], str, Any]:
        """A keras.ops call: (function, keyword arguments, style, refs)."""
        keras = self.keras
        cls = type(op)
        cname = cls.__name__
        fname = _OP_NAMES.get(cname, catalog.snake(cname))
        fn = getattr(keras.ops, fname, None)
        what = f"{cls.__module__}.{cname}"
        if fn is None or fname not in catalog.OPS or not cls.__module__.startswith("keras.src.ops."):
            raise Unexpressible("GS702", f"{where} is an operation ({what}) that is not a keras.ops "
                                "function graphspec can name")
        sig = inspect.signature(fn)
        params = sig.parameters
        config = norm(op.get_config())
        config.pop("name", None)
        kw: dict[str, Any] = {}
        for k, v in config.items():
            if k not in params:
                raise Unexpressible("GS702", f"{where} ({what}) has a setting `{k}` that "
                                    f"keras.ops.{fname} does not take")
            kw[k] = plain(v, f"{where}, argument `{k}`")
        try:
            csig = inspect.signature(op.call)
            bound = csig.bind(*node.arguments.args, **node.arguments.kwargs).arguments
        except (TypeError, ValueError) as exc:
            raise Unexpressible("GS702", f"{where}: cannot name its arguments ({exc})") from None
        tensors: list[tuple[str, Any]] = []
        for k, v in bound.items():
            kind = csig.parameters[k].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                if not all(is_tensor(t) for t in v):
                    raise Unexpressible("GS702", f"{where} mixes tensors and constants in `*{k}`")
                tensors.extend(("*", t) for t in v)
                continue
            if kind is inspect.Parameter.VAR_KEYWORD:
                v = dict(v)
                for kk, vv in v.items():
                    if contains_tensor(vv):
                        raise Unexpressible("GS702", f"{where} passes a tensor as `{kk}`")
                    kw[kk] = plain(vv, f"{where}, argument `{kk}`")
                continue
            if is_tensor(v):
                tensors.append((k, v))
            elif isinstance(v, (list, tuple)) and v and all(is_tensor(t) for t in v) and not tensors \
                    and fname in catalog.SEQUENCE_OPS:
                tensors.append(("[]", list(v)))
            elif contains_tensor(v):
                raise Unexpressible("GS702", f"{where} ({fname}) takes tensors inside a structure "
                                    f"(`{k}`) that the format cannot write")
            else:
                if k in kw and norm(kw[k]) != norm(v):
                    raise Unexpressible("GS702", f"{where} sets `{k}` twice")
                kw[k] = plain(v, f"{where}, argument `{k}` of {fname}")
        for k in list(kw):
            if k not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                raise Unexpressible("GS702", f"{where}: keras.ops.{fname} takes no argument `{k}`")
            p = params.get(k)
            if p is not None and p.default is not inspect.Parameter.empty and norm(p.default) == kw[k] \
                    and type(p.default) is type(kw[k]):
                del kw[k]
        if not tensors:
            raise Unexpressible("GS702", f"{where} ({fname}) has no tensor inputs")
        if tensors[0][0] == "[]":
            if len(tensors) > 1:
                raise Unexpressible("GS702", f"{where} takes a list and more tensors")
            return fname, kw, "list", [ref(t, where) for t in tensors[0][1]]
        if tensors[0][0] == "*":
            refs = [ref(t, where) for _, t in tensors]
            return fname, kw, "positional", refs[0] if len(refs) == 1 else refs
        names = [k for k, _ in tensors]
        positional = [p.name for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if names == positional[:len(names)]:
            refs = [ref(t, where) for _, t in tensors]
            return fname, kw, "positional", refs[0] if len(refs) == 1 else refs
        for k in names:
            if k not in params:
                raise Unexpressible("GS702", f"{where}: keras.ops.{fname} takes no argument `{k}`")
        return fname, kw, "dict", {k: ref(t, where) for k, t in tensors}


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
