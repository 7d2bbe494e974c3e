"""Matching a model's calls to spec nodes: a layer call's type and arguments, a keras.ops call's
function, arguments and tensor inputs, and how either call passes its inputs.

* a layer call -> how it passes its tensors (one, a list, or by name) and its other call
  arguments (`call:`); its type and arguments come from :mod:`graphspec.importer.layer_args`;
* an operation of `keras.ops` -> the function with the operation's settings as keyword arguments
  (`keras.ops.image` functions as `image.resize`; indexing `x[:, 0]` as `get_item` with a `key`).

Tensors are written as references by a function the walk passes in (:mod:`graphspec.importer.walk`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from graphspec.importer.layer_args import LayerArgs, Probe
from graphspec.importer.values import Unexpressible, contains_tensor, is_tensor, norm, plain
from graphspec.spec import catalog
from graphspec.spec.indexing import key_text

# Operation classes whose keras.ops function is not their snake_case name.
_OP_NAMES: dict[str, str] = {}
# Modules of operation classes -> the namespace their functions have in a spec (`image.resize`).
_OP_NAMESPACES = {"keras.src.ops.image": "image"}

Ref = Callable[[Any, str], str]  # a tensor (and where it is used, for messages) -> its spec reference


class CallMatcher(LayerArgs):
    """Layer types, layer arguments and operation calls, as a spec writes them."""

    def probe(self, node: Any) -> tuple[Probe, str]:
        """A function that calls a layer as `node` called the original (on fresh symbolic tensors of
        the same shapes), and a key that tells such calls apart."""
        keras = self.keras
        shapes: list[str] = []

        def fresh(v: Any) -> Any:
            if is_tensor(v):
                shapes.append(f"{tuple(v.shape)}{v.dtype}")
                return keras.KerasTensor(v.shape, dtype=v.dtype, sparse=bool(getattr(v, "sparse", False)))
            if isinstance(v, (list, tuple)):
                return type(v)(fresh(x) for x in v)
            if isinstance(v, dict):
                return {k: fresh(x) for k, x in v.items()}
            return v

        args = [fresh(a) for a in node.arguments.args]
        kwargs = {k: fresh(v) for k, v in node.arguments.kwargs.items()}

        def call(layer: Any) -> None:
            layer(*args, **kwargs)

        return call, ";".join(shapes)

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
            if _all_none(v) and v is not None:
                del kwargs[k]  # `mask={"a": None, "b": None}`: what Keras passes a model that takes a dict
                continue
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
        if (not tensor_kwargs and isinstance(op, self.keras.Model) and len(args) == 1 and isinstance(args[0], dict)
                and args[0] and all(is_tensor(t) for t in args[0].values())):
            return "dict", {str(k): ref(t, where) for k, t in args[0].items()}, call  # a model that takes a dict
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
        namespace = _OP_NAMESPACES.get(cls.__module__)
        fn = getattr(getattr(keras.ops, namespace) if namespace else keras.ops, fname, None)
        fname = f"{namespace}.{fname}" if namespace else fname
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
            if fname == "get_item" and k == "key" and not is_tensor(v):
                kw[k] = self.index_key(v, where)
            elif is_tensor(v):
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
        if len(tensors) == 1 and tensors[0][0] not in ("[]", "*"):
            kw = self.op_defaults(fn, kw, tensors[0][1], config, params)
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

    def op_defaults(self, fn: Any, kw: dict[str, Any], tensor: Any, config: dict[str, Any],
                    params: Any) -> dict[str, Any]:
        """Leave out settings the operation gets anyway (extract_patches' `strides` is its `size`): each
        one whose removal gives an operation with the same configuration, called on a fresh tensor."""
        required = {k for k, p in params.items() if p.default is inspect.Parameter.empty}

        def config_of(args: dict[str, Any]) -> Any:
            try:
                out = fn(self.keras.KerasTensor(tensor.shape, dtype=tensor.dtype), **args)
                op = out._keras_history.operation
                got = norm(op.get_config())
            except Exception:
                return None
            got.pop("name", None)
            return got

        for k in list(kw):
            if k == "key":
                continue
            if k not in required:
                trial = {a: v for a, v in kw.items() if a != k}
                if config_of(trial) == config:
                    kw = trial
                    continue
            v = kw[k]
            if isinstance(v, list) and len(v) > 1 and all(x == v[0] and type(x) is int for x in v):
                trial = {**kw, k: v[0]}  # `size: [4, 4]` -> `size: 4`
                if config_of(trial) == config:
                    kw = trial
        return kw

    @staticmethod
    def index_key(key: Any, where: str) -> str:
        """`x[:, 0]`'s key as the text a spec writes: `"[:, 0]"`."""
        if contains_tensor(key):
            raise Unexpressible("GS702", f"{where} indexes with a tensor, which a key cannot write",
                                "gather with keras.ops.take(x, indices, axis=...) instead of x[indices]")
        try:
            return key_text(key)
        except ValueError as exc:
            raise Unexpressible("GS702", f"{where}: the index {key!r} cannot be written in a spec ({exc})",
                                "index with integers, slices of integers, `...` and `None`") from None


def _all_none(value: Any) -> bool:
    """Whether a call argument is None, or a structure holding only None."""
    if isinstance(value, (list, tuple)):
        return all(_all_none(v) for v in value)
    if isinstance(value, dict):
        return all(_all_none(v) for v in value.values())
    return value is None
