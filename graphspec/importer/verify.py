"""The round-trip check of an import: build the written spec back and compare the rebuilt model with
the original (parameter counts, layer types, and the graph: every operation's class and
configuration and every call's arguments). A mismatch refuses the import.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError
from graphspec.importer.values import diag, diff_keys, is_tensor, norm, strip_names


def layer_types(model: Any) -> list[str]:
    """Layer class names in order, input layers left out (a Sequential lists none); a
    Sequential counts as a functional model (spec models are functional)."""
    return ["Functional" if type(layer).__name__ == "Sequential" else type(layer).__name__
            for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _trainable_count(model: Any) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


class _Comparison:
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
        for side in ("inputs", "outputs"):
            sa, sb = getattr(fa, f"_{side}_struct", None), getattr(fb, f"_{side}_struct", None)
            ka = sorted(sa) if isinstance(sa, dict) else None
            kb = sorted(sb) if isinstance(sb, dict) else None
            if ka != kb:
                self.problem(f"`{a.name}` takes or returns {side} keyed {ka}, rebuilt {kb}")
                return
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
        ca = strip_names(norm(a.get_config()))
        cb = strip_names(norm(b.get_config()))
        if ca != cb:
            self.problem(f"`{a.name}` ({ta}): configuration differs in {', '.join(diff_keys(ca, cb))}")

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
            if is_tensor(v):
                tensors.append(v)
                return "<tensor>"
            if isinstance(v, (list, tuple)):
                return [canon(x) for x in v]
            if isinstance(v, dict):
                return {k: canon(v[k]) for k in sorted(v, key=str)}  # tensors in the order of the keys
            return norm(v)

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
    m = _Comparison(keras)
    m.model(original, rebuilt)
    problems.extend(m.problems)
    return problems


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
        raise SpecError([diag("GS704", f"the imported spec does not build back: {detail}", source,
                              "this is a graphspec bug; please report it with the model")]) from None
    problems = compare(model, rebuilt)
    if problems:
        raise SpecError([Diagnostic("GS704", Severity.ERROR,
                                    f"the imported spec does not rebuild the same model: {problems[0]}",
                                    Location(source), "nothing was written; please report it with the model",
                                    tuple(problems[1:]))])
    return rebuilt
