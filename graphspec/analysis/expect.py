"""The budgets and `expect:` facts a model states about itself, checked against what the
static analysis computed (:mod:`graphspec.analysis.shapecheck`).

Parameters and weight bytes against `max_params` / `max_weight_bytes` (and a default
parameter budget for every model), multiply-accumulates against `max_macs`, and the exact
`params`, `trainable_params`, `macs` and `output_shapes` a spec expects. A value that is not
known statically is not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from graphspec.analysis.graph import Model
from graphspec.diagnostics import PathKey, Severity

# Default for a model that states no budget: it stops absurd specs before Keras tries to
# allocate memory.
MAX_PARAMS = 10**10

Report = Callable[..., None]  # (code, severity, message, path, hint=None, notes=()) -> None


class _Node(Protocol):
    type: str
    params: int | None
    macs: int | None


class _Info(Protocol):
    name: str
    params: int | None
    trainable: int | None
    macs: int | None
    output_shapes: dict[str, tuple[int | None, ...] | None]

    @property
    def weight_bytes(self) -> int | None: ...


def check(model: Model, info: _Info, nodes: Mapping[str, _Node], path: PathKey, node_path: Callable[[str], PathKey],
          report: Report) -> None:
    """Report GS500 (a budget exceeded) and GS501 (an expectation that does not hold) for one model.

    ``path`` is where the model's `expect:` is (or would be); ``node_path`` locates a node.
    """
    exp = model.expect
    limit = exp.max_params if exp and exp.max_params is not None else MAX_PARAMS
    if info.params is not None and info.params > limit:
        # Name the largest layer; without a budget in the spec, point at it.
        big_params, big = _largest(model, nodes, "params")
        notes = (f"the largest layer is `{big}` ({nodes[big].type}) with {big_params:,} parameters",) if big else ()
        where = path if exp and exp.max_params is not None else (node_path(big) if big else model.path)
        report("GS500", Severity.ERROR, f"model `{model.name}` has {info.params:,} parameters; the budget "
               f"is {limit:,}", where, notes=notes)
    if exp is None:
        return
    if exp.max_weight_bytes is not None and info.weight_bytes is not None and info.weight_bytes > exp.max_weight_bytes:
        report("GS500", Severity.ERROR, f"model `{model.name}` needs {info.weight_bytes:,} bytes of weights; "
               f"the budget is {exp.max_weight_bytes:,}", path + ("max_weight_bytes",))
    if exp.max_macs is not None and info.macs is not None and info.macs > exp.max_macs:
        big_macs, big = _largest(model, nodes, "macs")
        notes = (f"the most is `{big}` ({nodes[big].type}) with {big_macs:,}",) if big else ()
        report("GS500", Severity.ERROR, f"model `{model.name}` takes {info.macs:,} multiply-accumulates per "
               f"sample; the budget is {exp.max_macs:,}", path + ("max_macs",), notes=notes)
    for field, actual, what in (("params", info.params, "parameters"),
                                ("trainable_params", info.trainable, "trainable parameters"),
                                ("macs", info.macs, "multiply-accumulates per sample")):
        want = getattr(exp, field)
        if want is not None and actual is not None and want != actual:
            report("GS501", Severity.ERROR, f"model `{model.name}` has {actual:,} {what}, the spec expects "
                   f"{want:,}", path + (field,))
    for out, want_shape in (exp.output_shapes or {}).items():
        if out not in info.output_shapes:
            report("GS501", Severity.ERROR, f"model `{model.name}` has no output `{out}`",
                   path + ("output_shapes", out))
            continue
        got = info.output_shapes[out]
        if got is not None and tuple(got) != tuple(want_shape):
            report("GS501", Severity.ERROR, f"output `{out}` of model `{model.name}` has shape {fmt(got)}, "
                   f"the spec expects {fmt(tuple(want_shape))}", path + ("output_shapes", out))


def _largest(model: Model, nodes: Mapping[str, _Node], attr: str) -> tuple[int, str]:
    sized = [(getattr(nodes[n], attr) or 0, n) for n in model.nodes if n in nodes]
    return max(sized, default=(0, ""))


def fmt(shape: Any) -> str:
    """A shape as Python writes a tuple: `(10,)`, `(None, 8)`."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
