"""What a plugin layer declared for lint (`graphspec_shapes`) against the layer Keras built.

Lint trusts a plugin's declaration without running the plugin; `graphspec build` runs it,
so it checks every node whose static shapes came from a declaration: output shapes and
parameter counts must be what Keras built, else the declaration is wrong (GS304, at the
declaration, naming the node).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity

Shape = tuple[int | None, ...]


@dataclasses.dataclass(frozen=True)
class Declared:
    """What lint computed for one node from its layer's declaration."""

    layer: str
    where: Location  # the declaration in the plugin file
    outputs: tuple[Shape, ...]
    params: int
    trainable: int


def check(declared: Mapping[str, Declared], layers: Mapping[str, Any], tensors: Mapping[str, Any]) -> Iterable[Diagnostic]:
    """GS304 for each node (by name) whose built layer or output tensors differ from its declaration."""
    for node, want in declared.items():
        layer, out = layers.get(node), tensors.get(node)
        if layer is None or out is None:
            continue  # not built (a model that was not asked for, or a failure already reported)
        got_outputs = tuple(tuple(t.shape[1:]) for t in (out if isinstance(out, (list, tuple)) else [out]))
        got_params = int(layer.count_params())
        got_trainable = int(sum(int(_size(w.shape)) for w in layer.trainable_weights))
        problems = []
        if got_outputs != want.outputs:
            problems.append(f"output shapes {_shapes(want.outputs)}, Keras built {_shapes(got_outputs)}")
        if got_params != want.params:
            problems.append(f"{want.params:,} parameters, Keras built {got_params:,}")
        elif got_trainable != want.trainable:
            problems.append(f"{want.trainable:,} trainable parameters, Keras built {got_trainable:,}")
        if problems:
            yield Diagnostic("GS304", Severity.ERROR, f"{want.layer}.graphspec_shapes gives node `{node}` "
                             + "; ".join(problems), want.where,
                             "correct the declaration: lint reports what it says",
                             (f"node `{node}` of the spec being built",))


def _size(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _shapes(shapes: tuple[Shape, ...]) -> str:
    def one(s: Shape) -> str:
        return "(" + ", ".join("None" if d is None else str(d) for d in s) + ("," if len(s) == 1 else "") + ")"

    return ", ".join(one(s) for s in shapes)
