"""Generate ``graphspec/spec/catalog_data.py`` from the installed Keras.

The catalog is the closed table every spec name resolves through (layer
types, activations, initializers, losses, ...). It is generated once from
Keras and committed, so validating a spec never imports Keras, and a spec can
only ever name what is listed here. ``tests/test_catalog.py`` checks that the
committed table still matches the installed Keras.

Run: ``.venv/bin/python tools/gen_catalog.py``
"""

from __future__ import annotations

import inspect
import os
import re
import pprint
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

# Layers a spec may never name: they run arbitrary code, load files, or wrap
# foreign frameworks. Everything else in keras.layers is allowed.
BLOCKED_LAYERS = {
    "Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer",
    "Layer", "InputSpec", "Wrapper", "Pipeline", "RNN", "StackedRNNCells",
    "GRUCell", "LSTMCell", "SimpleRNNCell", "InputLayer",
}
JSONABLE = (type(None), bool, int, float, str)


def _default(value: Any) -> tuple[bool, Any]:
    """Return (representable, value) for a signature default."""
    if isinstance(value, JSONABLE):
        if isinstance(value, float) and value != value:
            return False, None
        return True, value
    if isinstance(value, (tuple, list)) and all(isinstance(v, JSONABLE) for v in value):
        return True, list(value)
    return False, None


def _signature(fn: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    kwargs = False
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_KEYWORD:
            kwargs = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        entry: dict[str, Any] = {}
        if p.default is p.empty:
            entry["required"] = True
        else:
            ok, val = _default(p.default)
            entry["default"] = val if ok else repr(p.default)
            if not ok:
                entry["opaque_default"] = True
        params[p.name] = entry
    return {"params": params, "kwargs": kwargs}


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")[:300]


_ARG = re.compile(r"^(\*{0,2}[A-Za-z_]\w*)(?:\s*\([^)]*\))?:\s*(.*)$")
_SENTENCE_END = re.compile(r"(?<![.\s][a-z])(?<!e\.g)(?<!i\.e)(?<!\bie)(?<!etc)\.(?=\s+[A-Z`(\"'])")
ARG_DOC_CHARS = 200  # an argument's meaning in the catalog: its first sentence(s), at most this long


def _short(text: str) -> str:
    """The first sentence of `text` (two where the first is only a type: "Integer. Size of ..."), at most
    ARG_DOC_CHARS characters."""
    text = " ".join(text.split())
    end = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
        if end >= 40:
            break
    else:
        end = len(text)
    text = text[:end] if end else text
    if len(text) > ARG_DOC_CHARS:
        text = text[:ARG_DOC_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return text


def _arg_docs(obj: Any) -> dict[str, str]:
    """Each argument's meaning from a Google-style docstring's `Args:` section (Keras's layers)."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    out: dict[str, str] = {}
    inside, indent, name, parts = False, 0, "", []  # type: ignore[var-annotated]
    for line in [*lines, "END:"]:
        stripped = line.strip()
        if not inside:
            inside = stripped in ("Args:", "Arguments:")
            indent = -1
            continue
        if not stripped:
            continue
        here = len(line) - len(line.lstrip())
        if indent < 0:
            indent = here
        if here < indent or (here == indent and not _ARG.match(stripped)):
            break
        if here == indent:
            if name:
                out[name] = _short(" ".join(parts))
            m = _ARG.match(stripped)
            assert m is not None
            name, parts = m.group(1).lstrip("*"), [m.group(2)]
        else:
            parts.append(stripped)
    if name:
        out[name] = _short(" ".join(parts))
    return out


def _layer_arg_docs(cls: type, params: dict[str, Any]) -> dict[str, str]:
    """The meaning of each of `params` (and of the base layer's keywords), from the docstrings of `cls`
    and then of the classes it inherits from."""
    out: dict[str, str] = {}
    for klass in cls.__mro__:
        if klass is keras.layers.Layer or klass is object:
            break
        for arg, text in _arg_docs(klass).items():
            if arg in params and arg not in out and text:
                out[arg] = text
    return {arg: out[arg] for arg in params if arg in out}


def _call_signature(cls: type) -> dict[str, Any]:
    """The keyword arguments of a layer's `call`, after the tensor(s) it is called on.

    `call:` in a spec is checked against it: its names, and values of the default's type.
    """
    sig = _signature(cls.call)
    params = dict(sig["params"])
    first = next(iter(params), None)
    out: dict[str, Any] = {"params": params, "kwargs": sig["kwargs"]}
    if first is not None and params[first].get("required"):
        params.pop(first)  # the inputs, given by `inputs:`
        out["tensor"] = first  # its name, for an `inputs:` mapping (`sequences`, `query`, `inputs`)
    return out


def _layers() -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[type, str] = {}
    for name in sorted(dir(keras.layers)):
        cls = getattr(keras.layers, name)
        if not inspect.isclass(cls) or not issubclass(cls, keras.layers.Layer):
            continue
        if name in BLOCKED_LAYERS:
            continue
        sig = _signature(cls.__init__)
        sig["call"] = _call_signature(cls)
        sig["doc"] = _summary(cls)
        sig["arg_docs"] = _layer_arg_docs(cls, sig["params"])
        if cls in seen:
            sig["alias_of"] = seen[cls]
        else:
            seen[cls] = name
        sig["module"] = cls.__module__
        out[name] = sig
    return out


def _names(module: Any, predicate: Any) -> list[str]:
    return sorted(
        n for n in dir(module)
        if not n.startswith("_") and n not in {"get", "serialize", "deserialize"}
        and predicate(getattr(module, n))
    )


def _classes(module: Any, base: type, skip: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in _names(module, inspect.isclass):
        cls = getattr(module, n)
        if n in skip or not issubclass(cls, base) or cls is base:
            continue
        sig = _signature(cls.__init__)
        sig["doc"] = _summary(cls)
        out[n] = sig
    return out


def _functions(module: Any) -> list[str]:
    return _names(module, inspect.isfunction)


def _applications() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in _names(keras.applications, inspect.isfunction):
        if n[0].isupper():
            sig = _signature(getattr(keras.applications, n))
            sig["doc"] = _summary(getattr(keras.applications, n))
            out[n] = sig
    return out


# keras.ops functions that take Python callables or run control flow: a spec
# cannot pass a callable, and they have no place in a layer graph.
BLOCKED_OPS = {
    "cond", "custom_gradient", "fori_loop", "map", "scan", "associative_scan", "switch",
    "vectorized_map", "while_loop", "stop_gradient_fn", "convert_to_numpy", "convert_to_tensor",
    "vectorize", "jvp",
}


# Namespaces of keras.ops whose functions a spec names with the namespace: `image.resize`.
OP_NAMESPACES = ("image",)


def _ops() -> dict[str, Any]:
    out: dict[str, Any] = {}
    modules = [("", keras.ops)] + [(f"{ns}.", getattr(keras.ops, ns)) for ns in OP_NAMESPACES]
    for prefix, module in modules:
        for n in _names(module, inspect.isfunction):
            if n in BLOCKED_OPS:
                continue
            try:
                sig = _signature(getattr(module, n))
            except (TypeError, ValueError):
                continue
            sig["doc"] = _summary(getattr(module, n))
            sig["class"] = _op_class(module, n)
            out[prefix + n] = sig
    return out


def _op_class(module: Any, name: str, depth: int = 0) -> str | None:
    """The Operation class a keras.ops function creates on symbolic tensors (it names the op's node in a
    functional model: `Add` -> `add`, `add_1`), read from its source; an alias (`abs` returns
    `absolute(x)`) is followed once. None where the source does not say."""
    import re

    try:
        src = inspect.getsource(getattr(module, name))
    except (OSError, TypeError):
        return None
    found = re.search(r"return\s+([A-Z]\w*)\(", src)
    if found:
        return found.group(1)
    alias = re.search(r"return\s+([a-z_]\w*)\(", src)
    if alias and depth == 0 and inspect.isfunction(getattr(module, alias.group(1), None)):
        return _op_class(module, alias.group(1), depth + 1)
    return None


def _shared_arg_docs(layers: dict[str, Any]) -> dict[str, str]:
    """The meaning of each argument name that several layers describe in the same words (`use_bias`,
    `kernel_initializer`, ...), kept once: a layer's own `arg_docs` then hold only what differs from it
    (and an alias, `Convolution2D`, none: its `alias_of` has them). Readers look the layer's up first."""
    import collections

    texts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for entry in layers.values():
        if "alias_of" not in entry:
            for arg, text in entry["arg_docs"].items():
                texts[arg][text] += 1
    shared = {arg: c.most_common(1)[0][0] for arg, c in sorted(texts.items()) if c.most_common(1)[0][1] >= 2}
    for entry in layers.values():
        own = {} if "alias_of" in entry else {
            a: t for a, t in entry["arg_docs"].items() if shared.get(a) != t}
        entry["arg_docs"] = own
    # the keywords every layer takes (`trainable`, `dtype`, `name`), from `keras.layers.Layer`'s docstring
    for arg, text in _arg_docs(keras.layers.Layer).items():
        shared.setdefault(arg, text)
    return shared


def build() -> dict[str, Any]:
    layers = _layers()
    return {
        "keras_version": keras.__version__,
        "layers": layers,
        "layer_arg_docs": _shared_arg_docs(layers),
        "activations": _functions(keras.activations),
        "initializers": _classes(keras.initializers, keras.initializers.Initializer, {"STFT", "STFTInitializer"}),
        "initializer_aliases": [n for n in _functions(keras.initializers) if n != "stft"],
        "regularizers": _classes(keras.regularizers, keras.regularizers.Regularizer, set()),
        "regularizer_aliases": _functions(keras.regularizers),
        "constraints": _classes(keras.constraints, keras.constraints.Constraint, set()),
        "constraint_aliases": _functions(keras.constraints),
        "losses": _classes(keras.losses, keras.losses.Loss, {"CTC"}),
        "loss_aliases": _functions(keras.losses),
        "metrics": _classes(keras.metrics, keras.metrics.Metric, set()),
        "metric_aliases": _functions(keras.metrics),
        "optimizers": _classes(
            keras.optimizers, keras.optimizers.Optimizer,
            {"LossScaleOptimizer", "MultiOptimizer", "OptimizerMap"},
        ),
        "schedules": _classes(
            keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule, set()
        ),
        "applications": _applications(),
        "ops": _ops(),
    }


def render(data: dict[str, Any]) -> str:
    body = pprint.pformat(data, width=100, sort_dicts=False)
    return (
        '"""Generated by tools/gen_catalog.py from Keras. Do not edit by hand."""\n\n'
        "# fmt: off\n"
        "from typing import Any\n\n"
        f"CATALOG: dict[str, Any] = {body}\n"
    )


def main() -> int:
    target = Path(__file__).resolve().parents[1] / "graphspec" / "spec" / "catalog_data.py"
    text = render(build())
    if "--check" in sys.argv:
        return 0 if target.read_text() == text else 1
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
