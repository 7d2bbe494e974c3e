"""Memory estimates against a budget: what lint warns about, and build and train refuse before allocating.

A model needs its weights (4 bytes a parameter), and briefly twice its largest weight
while Keras initialises it; training also needs gradients and optimizer slots (three
times the weights), one batch of activations (every node's output, batch_size samples)
and, for synthetic data, the arrays themselves. The budget is `expect: {memory_budget: ...}`, else
``$GRAPHSPEC_MEMORY_BUDGET``, else this machine's memory (the smaller of its RAM and
its cgroup's limit). ``$GRAPHSPEC_MEMORY_BUDGET`` is the operator's ceiling: a spec's budget may lower
it, never raise it (a spec from a pull request cannot lift the limit its CI runner sets). A 50,000 x 50,000 Dense (9.3 GiB) on an 8 GiB CI runner is a
warning from lint and a located error from `build`, not an OOM kill.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Any

from graphspec.analysis.graph import Graph, Model
from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.spec import schema
from graphspec.spec.schema_run import SyntheticSource
from graphspec.spec.source import Source

ENV = "GRAPHSPEC_MEMORY_BUDGET"
BYTES_PER_VALUE = 4  # float32
TRAINING_STATE = 3  # gradients and two optimizer slots (Adam), in weights' sizes
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@functools.lru_cache(maxsize=1)
def machine_memory() -> int | None:
    """This machine's memory: physical RAM, or the cgroup's limit when smaller (containers, CI runners).

    Read once per process: every check and every build asks (two file reads each time, on the path a compile
    is timed on), and neither changes under a running process."""
    found: list[int] = []
    try:
        found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for name in _CGROUP_FILES:
        try:
            text = Path(name).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            found.append(int(text))
    return min(found) if found else None


def operator_budget() -> int | None:
    """``$GRAPHSPEC_MEMORY_BUDGET`` in bytes; None when unset or unreadable."""
    raw = os.environ.get(ENV)
    if raw:
        try:
            return schema.byte_size(raw.strip())
        except ValueError:
            pass  # an unreadable setting is ignored rather than fatal; the machine's memory applies
    return None


def default_budget() -> tuple[int | None, str]:
    """(bytes, where it comes from) without a budget in the spec."""
    ceiling = operator_budget()
    if ceiling is not None:
        return ceiling, f"${ENV}"
    found = machine_memory()
    return found, "this machine's memory"


@dataclasses.dataclass
class Estimate:
    """Bytes a model needs at its peak, by part (None: not counted)."""

    weights: int
    init: int = 0  # Keras initialises a weight from temporaries of its size: twice the largest, briefly
    training_state: int | None = None  # gradients and optimizer slots
    activations: int | None = None  # one batch
    data: int | None = None  # synthetic arrays
    biggest: str | None = None  # the node with the most parameters

    @property
    def total(self) -> int:
        return (self.weights + self.init + (self.training_state or 0) + (self.activations or 0)
                + (self.data or 0))

    def parts(self) -> str:
        shown = [f"weights {human(self.weights)}"]
        if self.init:
            shown.append(f"initialising them {human(self.init)}")
        if self.training_state:
            shown.append(f"gradients and optimizer state {human(self.training_state)}")
        if self.activations:
            shown.append(f"one batch of activations {human(self.activations)}")
        if self.data:
            shown.append(f"synthetic data {human(self.data)}")
        return ", ".join(shown)


def _elements(shape: Any, fill: int) -> int:
    return math.prod(fill if d is None else int(d) for d in shape) if shape else 1


def estimate(graph: Graph, analysis: Any, model: Model, *, training: bool) -> Estimate | None:
    """What `model` needs (with `training` and a `data` section: also for training); None if not known statically."""
    info = analysis.models.get(model.name) if analysis is not None else None
    if info is None or info.weight_bytes is None:
        return None
    sized = [(analysis.nodes[n].params or 0, n) for n in model.nodes if n in analysis.nodes]
    big_params, biggest = max(sized, default=(0, None))
    out = Estimate(info.weight_bytes, init=2 * big_params * BYTES_PER_VALUE, biggest=biggest)
    data = graph.spec.data
    if not training or data is None:
        return out
    out.training_state = TRAINING_STATE * info.weight_bytes
    fill = data.source.sequence_length if isinstance(data.source, SyntheticSource) else 1
    per_sample = 0
    for name in model.nodes:
        node = analysis.nodes.get(name)
        if node is not None and node.outputs is not None:
            per_sample += sum(_elements(s, fill) for s in node.outputs)
    out.activations = per_sample * data.batch_size * BYTES_PER_VALUE
    if isinstance(data.source, SyntheticSource):
        io = 0
        for ref in [*model.inputs, *model.outputs]:
            node = analysis.nodes.get(ref.node)
            if node is not None and node.outputs is not None and ref.output < len(node.outputs):
                io += _elements(node.outputs[ref.output], fill)
        out.data = (data.source.samples + data.source.test_samples) * io * BYTES_PER_VALUE
    return out


def _budget(graph: Graph, model: Model) -> tuple[int | None, str, PathKey | None]:
    exp = model.expect
    if exp is not None and exp.memory_budget is not None:
        path = model.path + ("expect",) if graph.spec.models and model.spec.expect is not None else ("expect",)
        stated, ceiling = schema.byte_size(exp.memory_budget), operator_budget()
        if ceiling is not None and ceiling < stated:  # the operator's ceiling: a spec lowers it, never raises it
            return ceiling, f"${ENV}, which `expect.memory_budget` cannot raise", path + ("memory_budget",)
        return stated, "`expect.memory_budget`", path + ("memory_budget",)
    found, what = default_budget()
    return found, what, None


def check(src: Source, graph: Graph, analysis: Any, *, severity: Severity, training: bool,
          models: list[str] | None = None) -> list[Diagnostic]:
    """GS502 for each model (or those named) whose estimate is over its budget."""
    out: list[Diagnostic] = []
    wanted = [m for m in graph.models.values() if (m.name in models if models is not None else not m.submodel)]
    for model in wanted:
        est = estimate(graph, analysis, model, training=training)
        if est is None:
            continue
        budget, what, where = _budget(graph, model)
        if budget is None or est.total <= budget:
            continue
        if where is None:
            where = (graph.nodes[est.biggest].path if est.biggest and (est.weights + est.init) * 2 > est.total
                     else ("data", "source") if est.data and est.data * 2 > est.total
                     else ("data", "batch_size") if est.activations and est.activations * 2 > est.total
                     else model.path)
        verb = "needs" if severity is Severity.WARNING else "would need"
        refuse = "" if severity is Severity.WARNING else ": refused before allocating it"
        out.append(Diagnostic(
            "GS502", severity,
            f"model `{model.name}` {verb} about {human(est.total)} ({est.parts()}), more than the memory "
            f"budget of {human(budget)} ({what}){refuse}",
            src.location(where, key=True),
            "make it smaller, or state the memory it is meant for: `expect: {memory_budget: 64 GiB}`"))
    return out
