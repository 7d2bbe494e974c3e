"""A layer's type and arguments as a spec writes them: its class from the closed catalog (or a
plugin), and the arguments of its configuration that differ from the layer's defaults, checked by
building the layer again from them.

* a layer of `keras.layers` -> its type with only the arguments that differ from its defaults;
  configuration entries that are not constructor arguments (a lookup layer's `vocabulary_size`)
  are left out when the layer rebuilds without them;
* a custom layer -> its type when a plugin defines it (`--plugin`; the layers of
  `keras.applications` that live outside `keras.layers` come with graphspec's own plugin,
  :mod:`graphspec.build.app_layers`);
* a wrapped layer (`Bidirectional`, `TimeDistributed`) -> written inline, from the layer object.

Defaults that Keras fills in when a layer is built (MultiHeadAttention's `attention_axes`,
LayerNormalization's `axis: [-1]`) are compared on a rebuilt layer called like the original
(a *probe*), so they are left out too.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from graphspec.importer.values import Unexpressible, diff_keys, norm, plain, strip_names
from graphspec.spec import catalog

APP_LAYERS_PLUGIN = "graphspec.build.app_layers"
# Arguments whose uniform lists Keras accepts as one number (`kernel_size: 3`).
_COLLAPSIBLE = {"kernel_size", "strides", "pool_size", "dilation_rate", "size", "padding", "cropping", "axis"}
# Arguments of a wrapped layer that its wrapper sets (Bidirectional: from `return_sequences`).
_SET_BY_WRAPPERS = {"zero_output_for_mask"}
# Configuration entries every layer has besides its constructor's own arguments.
_BASE_CONFIG = {"name", "trainable", "dtype", "autocast"}

Probe = Callable[[Any], None]  # calls a layer like the original call (on fresh symbolic tensors)


def load_plugin_classes(plugins: list[str]) -> dict[str, tuple[type, str]]:
    """The layer classes the plugins define: class name -> (class, plugin). Loading a plugin also
    registers its layers with Keras (for loading .keras files)."""
    from graphspec.build import plugins as plugin_loader

    out: dict[str, tuple[type, str]] = {}
    for p in plugins:
        for name, cls in plugin_loader.load_all([p]).items():
            out.setdefault(name, (cls, p))
    return out


class LayerArgs:
    """Layer types and arguments, as a spec writes them."""

    def __init__(self, keras: Any, plugin_classes: dict[str, tuple[type, str]]) -> None:
        self.keras = keras
        self.plugin_classes = plugin_classes  # class name -> (class, plugin)
        self._app_classes: dict[str, type] | None = None
        self.plugin_tables: dict[str, dict[str, Any]] = {}
        self.plugins_needed: list[str] = []
        self._defaults: dict[tuple[Any, str], dict[str, Any] | None] = {}
        self._rebuilt: dict[str, dict[str, Any] | str] = {}  # rebuild_config without a probe, by arguments

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
        if getattr(self.keras.layers, name, None) is cls and name == "RNN":
            cell = getattr(layer, "cell", None)
            raise Unexpressible(
                "GS701", f"{where} is an RNN over a cell ({type(cell).__name__}); the format has no `RNN` layer: "
                "a cell's step is Python code",
                "use LSTM, GRU or SimpleRNN, or make the whole recurrent layer a custom layer in a plugin (--plugin)")
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

    def defaults(self, cls: type[Any], required: dict[str, Any], probe: Probe | None = None,
                 probe_key: str = "") -> dict[str, Any] | None:
        """The config of `cls` built with only its required arguments (None if that fails); with a
        probe, after calling it like the original (defaults Keras fills in at build time)."""
        key = (cls, json.dumps(required, sort_keys=True, default=str) + probe_key)
        if key not in self._defaults:
            self._defaults[key] = None
            makers: tuple[Callable[[], Any], ...] = (lambda: cls(**required),
                                                     lambda: cls.from_config(dict(required)))
            for make in makers:
                try:
                    layer = make()
                except Exception:
                    continue
                if probe is not None:
                    try:
                        probe(layer)
                    except Exception:
                        pass
                try:
                    self._defaults[key] = norm(layer.get_config())
                except Exception:
                    continue
                break
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

    def wrapped(self, layer: Any, key: str, where: str) -> dict[str, Any]:
        """The layer a wrapper wraps (`layer`, `backward_layer`), written inline from the object."""
        sub = getattr(layer, "forward_layer", None) if key == "layer" else None
        sub = sub if sub is not None else getattr(layer, key, None)
        if sub is None:
            raise Unexpressible("GS701", f"{where}: the wrapped layer cannot be read from the wrapper")
        if isinstance(sub, self.keras.Model):
            raise Unexpressible(
                "GS703", f"{where}: {type(layer).__name__} wraps a model (`{sub.name}`); the format's "
                f"wrappers take a layer, not a model",
                "apply the model to each step without the wrapper (fold the time axis into the batch with "
                "Reshape, call the model, unfold it), or wrap each of the model's layers")
        type_name = self.layer_type(sub, where)
        return {"type": type_name, **self.layer_args(sub, type_name, f"{where} ({key})", nested=True)}

    def arg_value(self, layer: Any, key: str, value: Any, where: str) -> Any:
        if key in {"layer", "backward_layer"} and isinstance(value, dict) and "class_name" in value:
            return self.wrapped(layer, key, where)
        if isinstance(value, dict) and "class_name" in value:
            cname = value["class_name"]
            if key == "dtype":
                if cname == "DTypePolicy":
                    return value["config"]["name"]
                raise Unexpressible("GS701", f"{where}: dtype policy {cname} cannot be written in a spec",
                                    "quantized and per-variable policies are not part of the format")
            if key.endswith(("_initializer", "_regularizer", "_constraint")):
                return self.named_object(key.rsplit("_", 1)[1], value, where)
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

    def derived(self, type_name: str, config: dict[str, Any]) -> set[str]:
        """Configuration entries of a catalog layer that its constructor does not take by name (a
        lookup layer's `vocabulary_size`): Keras derives them; the spec leaves them out."""
        if type_name not in catalog.LAYERS:
            return set()
        params = set(catalog.LAYERS[type_name]["params"]) | _BASE_CONFIG
        return {k for k in config if k not in params}

    def layer_args(self, layer: Any, type_name: str, where: str, *, nested: bool = False,
                   probe: Probe | None = None, probe_key: str = "") -> dict[str, Any]:
        """The arguments that rebuild `layer`: its config less its defaults, checked by rebuilding it.

        A `nested` layer (the `layer` of a wrapper such as Bidirectional) is checked
        by rebuilding the wrapper: the wrapper sets some of its arguments itself.
        """
        cls = type(layer)
        config = norm(layer.get_config())
        config.pop("name", None)
        derived = self.derived(type_name, config)
        required = self.required(type_name, cls)
        req = {k: config[k] for k in required if k in config}
        defaults = self.defaults(cls, req)
        if probe is not None and defaults is not None and not any(
                _built_default(defaults.get(k), v) for k, v in config.items() if k not in required):
            probe = None  # no argument looks like a default Keras fills in when it builds the layer
        if probe is not None:
            defaults = self.defaults(cls, req, probe, probe_key)
        if defaults is None and type_name in catalog.LAYERS:
            # Some layers need an argument whose signature default is None (CategoryEncoding's
            # `num_tokens`): build the defaults with those too, and always write them.
            params = catalog.LAYERS[type_name]["params"]
            extra = [k for k, p in params.items() if "default" in p and p["default"] is None
                     and config.get(k) is not None and k not in required]
            required = required + extra
            req = {k: config[k] for k in required if k in config}
            defaults = self.defaults(cls, req, probe, probe_key)
        full: dict[str, Any] = {}
        short: dict[str, Any] = {}
        for key, value in config.items():
            if key in derived:
                continue
            converted = self.arg_value(layer, key, value, f"{where}, argument `{key}`")
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
            rebuilt = self.rebuild_config(type_name, args, probe)
            if not isinstance(rebuilt, dict):
                break
            diff = diff_keys(strip_names(config), strip_names(rebuilt))
            if not diff:
                return self.checked(type_name, ordered(args), where)
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
        rebuilt = self.rebuild_config(type_name, full, probe)
        if isinstance(rebuilt, dict) and strip_names(rebuilt) == strip_names(config):
            return self.checked(type_name, ordered(full), where)
        raise self.not_rebuilt(layer, type_name, config, rebuilt, derived, where)

    def checked(self, type_name: str, args: dict[str, Any], where: str) -> dict[str, Any]:
        problems = self.check_args(type_name, args, where)
        if problems:
            raise Unexpressible("GS701", problems[0])
        return args

    def not_rebuilt(self, layer: Any, type_name: str, config: dict[str, Any], rebuilt: dict[str, Any] | str,
                    derived: set[str], where: str) -> Unexpressible:
        """Why a layer does not rebuild from its configuration, naming the cause."""
        if not isinstance(rebuilt, dict):
            return Unexpressible("GS701", f"{where}: {type_name} cannot be created from its configuration "
                                 f"({rebuilt})")
        diff = diff_keys(strip_names(config), strip_names(rebuilt))
        lost = [k for k in diff if k in derived]
        if lost and config.get("vocabulary") is None and "vocabulary_size" in lost:
            return Unexpressible(
                "GS701", f"{where}: {type_name} learned its vocabulary with adapt() ({config['vocabulary_size']} "
                "entries), and Keras does not keep a learned vocabulary in the layer's configuration",
                f"create the layer with the vocabulary: {type_name}(vocabulary=layer.get_vocabulary(), ...)")
        shown = ", ".join(f"{k} ({json.dumps(config.get(k), default=str)[:40]} -> "
                          f"{json.dumps(rebuilt.get(k), default=str)[:40]})" for k in diff[:4])
        return Unexpressible("GS701", f"{where}: {type_name} built again from its configuration differs in "
                             f"{shown}", "Keras cannot recreate this layer from its get_config(); neither "
                             "can a spec")

    def rebuild_config(self, type_name: str, args: dict[str, Any], probe: Probe | None = None
                       ) -> dict[str, Any] | str:
        """The config of a layer made from `args` (built by `probe` first, if given), or why it cannot be made.

        Without a probe the config depends on the arguments alone, and a large model repeats the same layer
        many times (InceptionResNetV2: 784 calls here): it is made once per distinct (type, arguments). The
        result is shared: callers only read it."""
        if probe is not None:
            return self._rebuild_config(type_name, args, probe)
        key = f"{type_name}:{args!r}"  # repr tells a tuple from a list, which JSON would not
        if key not in self._rebuilt:
            self._rebuilt[key] = self._rebuild_config(type_name, args, probe)
        return self._rebuilt[key]

    def _rebuild_config(self, type_name: str, args: dict[str, Any], probe: Probe | None) -> dict[str, Any] | str:
        from graphspec.build.emit import layer_kwargs

        def make(t: str, a: dict[str, Any], name: str | None) -> Any:
            kw = layer_kwargs(a, make)
            if name is not None:
                kw["name"] = name
            return self.layer_class(t)(**kw)

        try:
            layer = make(type_name, args, None)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        if probe is not None:
            try:
                probe(layer)
            except Exception:
                pass  # compared unbuilt
        try:
            config = norm(layer.get_config())
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        config.pop("name", None)
        return config  # type: ignore[no-any-return]

    def check_args(self, type_name: str, args: dict[str, Any], where: str) -> list[str]:
        from graphspec.spec import layers

        out = []
        for path, _, (_code, message, hint) in layers.check_args(type_name, args, ("nodes", "x"),
                                                                   plugins=self.plugin_tables):
            key = ".".join(str(p) for p in path[2:]) or "(layer)"
            out.append(f"{where}: argument `{key}`: {message}" + (f" ({hint})" if hint else ""))
        return out


def _built_default(default: Any, value: Any) -> bool:
    """Whether `value` may be what Keras makes of `default` when it builds a layer: a list where the
    default is None or a single value (MultiHeadAttention's `attention_axes`: None -> [1];
    LayerNormalization's `axis`: -1 -> [-1])."""
    return isinstance(value, list) and not isinstance(default, list)


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
