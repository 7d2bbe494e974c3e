"""Rendering `graphspec diff` results: text, JSON, Markdown (a pull-request comment), GitHub annotations.

Every function here is pure: it takes a :class:`DiffReport` (what
:mod:`graphspec.experiments.diff` found) and returns a string or a JSON-ready dict.
The JSON document is stable and documented in docs/variants.md::

    {"equal": false, "a": "a.yaml", "b": "b.yaml",
     "changes": [{"kind": "changed", "path": "nodes.dense_1.units", "from": 64, "to": 128,
                  "a": "a.yaml:9:20", "b": "b.yaml:9:20"}, ...],
     "models": {"mnist_model": {"params": [55050, 109386], "trainable_params": [55050, 109386],
                                "output_shapes": {"predictions": [[10], [10]]}}},
     "errors": []}
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from graphspec.diagnostics import Diagnostic, Location
from graphspec.render.escape import gh_data, gh_log, gh_prop, md_code, md_text, printable

KINDS = ("added", "removed", "renamed", "changed")
MAX_VALUE = 80  # characters of a value in text and Markdown (JSON has it whole)
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")

Shape = list[int | None] | None


@dataclasses.dataclass(frozen=True)
class Change:
    """One difference, by path: `nodes.NAME` (a node), `nodes.NAME.ARG`, `nodes.NAME.inputs` (its edges),
    `inputs.NAME...`, `models.NAME...`, `compile...`, `data...`, `train...`. A rename has the old and new
    node names as `before` / `after`."""

    kind: str
    path: str
    before: Any
    after: Any
    a: Location | None = None
    b: Location | None = None
    cause: str | None = None  # `vars.NAME`: the variable change this one follows from (listed before it)

    def as_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "path": self.path, "from": self.before, "to": self.after,
               "a": str(self.a) if self.a is not None else None, "b": str(self.b) if self.b is not None else None}
        if self.cause is not None:
            out["cause"] = self.cause
        return out


@dataclasses.dataclass(frozen=True)
class ModelDelta:
    """One model's static facts before (A) and after (B); None where a side lacks the model or the fact."""

    name: str
    params: tuple[int | None, int | None]
    trainable_params: tuple[int | None, int | None]
    output_shapes: dict[str, tuple[Shape, Shape]]
    present: tuple[bool, bool] = (True, True)
    macs: tuple[int | None, int | None] = (None, None)

    @property
    def equal(self) -> bool:
        return (self.present[0] == self.present[1] and self.params[0] == self.params[1]
                and self.trainable_params[0] == self.trainable_params[1] and self.macs[0] == self.macs[1]
                and all(x == y for x, y in self.output_shapes.values()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "params": list(self.params),
            "trainable_params": list(self.trainable_params),
            "macs": list(self.macs),
            "output_shapes": {k: [x, y] for k, (x, y) in self.output_shapes.items()},
        }


@dataclasses.dataclass
class DiffReport:
    """Everything `graphspec diff A B` found."""

    a: str
    b: str
    changes: list[Change]
    models: list[ModelDelta]
    # Errors of either spec found after its graph resolved (a shape mismatch, a broken `expect:`):
    # the diff is still computed, and they are shown beside it.
    errors: list[Diagnostic] = dataclasses.field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.changes and all(m.equal for m in self.models)


# -- values ----------------------------------------------------------------------


def flow(value: Any) -> str:
    """A value as YAML flow text: `{type: Dense, units: 64}`, `[a, b]`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value not in ("null", "true", "false"):
            return value
        if value.isprintable():  # YAML's single quotes: backslashes are literal, as in the spec
            return "'" + value.replace("'", "''") + "'"
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return json.dumps(str(value))


def short(value: Any) -> str:
    text = flow(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."


def shape_text(shape: Shape) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def count_text(pair: tuple[int | None, int | None]) -> str:
    """`55,050 -> 109,386 (+54,336)`, `55,050` when equal, `? -> 10` when unknown."""
    a, b = pair
    fa = "?" if a is None else f"{a:,}"
    fb = "?" if b is None else f"{b:,}"
    if a == b:
        return fb
    delta = f" ({b - a:+,})" if a is not None and b is not None else ""
    return f"{fa} -> {fb}{delta}"


def _shapes_text(model: ModelDelta) -> list[str]:
    out = []
    for name, (x, y) in model.output_shapes.items():
        out.append(f"{name} {shape_text(y)}" if x == y else f"{name} {shape_text(x)} -> {shape_text(y)}")
    return out


def _describe(change: Change) -> str:
    if change.kind == "added":
        return short(change.after)
    if change.kind == "removed":
        return short(change.before)
    return f"{short(change.before)} -> {short(change.after)}"


# -- text ------------------------------------------------------------------------


def _model_head(m: ModelDelta) -> str:
    if not m.present[0]:
        return f"model {m.name} (only in B)"
    if not m.present[1]:
        return f"model {m.name} (only in A)"
    return f"model {m.name}"


def text(report: DiffReport) -> str:
    """A summary per model, then one line per change with where it is in A and B."""
    n = len(report.changes)
    head = (f"{report.a} and {report.b} are equivalent" if report.equal
            else f"{report.a} -> {report.b}: {n} change{'' if n == 1 else 's'}")
    lines = [head]
    for m in report.models:
        lines.append(_model_head(m))
        lines.append(f"  params            {count_text(m.params)}")
        lines.append(f"  trainable params  {count_text(m.trainable_params)}")
        lines.append(f"  MACs              {count_text(m.macs)}")
        for shape in _shapes_text(m):
            lines.append(f"  output            {shape}")
    width = max((len(c.kind) for c in report.changes), default=0)
    effects: dict[str, list[Change]] = {}
    for c in report.changes:
        if c.cause is not None:
            effects.setdefault(c.cause, []).append(c)

    def line(c: Change, indent: str = "") -> str:
        where = [str(loc) for loc in (c.a, c.b) if loc is not None]
        at = f"  ({' -> '.join(where)})" if where else ""
        return f"{indent}{c.kind:<{width}}  {c.path}: {_describe(c)}{at}"

    for c in report.changes:  # a variable's change first, then what it changed, indented under it
        if c.cause is None:
            lines.append(line(c))
            lines.extend(line(e, "  ") for e in effects.get(c.path, ()))
    return "\n".join(printable(ln) for ln in lines) + "\n"


# -- JSON ------------------------------------------------------------------------


def json_doc(report: DiffReport) -> dict[str, Any]:
    return {
        "equal": report.equal,
        "a": report.a,
        "b": report.b,
        "changes": [c.as_dict() for c in report.changes],
        "models": {m.name: m.as_dict() for m in report.models},
        "errors": [d.as_dict() for d in report.errors],
    }


def json_text(report: DiffReport) -> str:
    return json.dumps(json_doc(report), indent=2) + "\n"


# -- Markdown ----------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text of graphspec's own making (counts, shapes) in a table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A name or value from a spec as a code span in a table cell (see :func:`md_code`)."""
    return md_code(text, in_table=True)


def markdown(report: DiffReport) -> str:
    """A pull-request comment: a summary table of the models, then a table of the changes."""
    title = f"### graphspec diff: {md_code(report.a)} → {md_code(report.b)}"
    lines = [title, ""]
    if report.equal:
        lines += ["The two specs are equivalent: same nodes, edges, arguments and settings.", ""]
    if report.errors:
        n = len(report.errors)
        lines += [f"**{n} error{'' if n == 1 else 's'}** in the specs:", ""]
        lines += [f"- {md_code(str(d.location))}: {d.code} {md_text(d.message)}" for d in report.errors] + [""]
    if report.models:
        lines += ["| model | params | trainable params | MACs | outputs |", "|---|---:|---:|---:|---|"]
        for m in report.models:
            name = _code(m.name) + ("" if all(m.present) else (" (new)" if not m.present[0] else " (removed)"))
            shapes = "<br>".join(md_text(s) for s in _shapes_text(m)) or "–"
            lines.append(f"| {name} | {_cell(count_text(m.params))} | {_cell(count_text(m.trainable_params))} "
                         f"| {_cell(count_text(m.macs))} | {shapes} |")
        lines.append("")
    if report.changes:
        lines += [f"{len(report.changes)} change{'' if len(report.changes) == 1 else 's'}:", "",
                  "| | path | before | after | where |", "|---|---|---|---|---|"]
        for c in report.changes:
            before = "" if c.kind == "added" else _code(short(c.before))
            after = "" if c.kind == "removed" else _code(short(c.after))
            loc = c.b if c.b is not None else c.a
            lines.append(f"| {c.kind} | {_code(c.path)} | {before} | {after} | {_code(str(loc)) if loc else ''} |")
        lines.append("")
    return "\n".join(lines)


# -- GitHub workflow commands ----------------------------------------------------------


def github_line(change: Change, b_file: str, path: Callable[[str], str] = str) -> str:
    """`::notice file=b.yaml,line=9,col=20,title=graphspec diff::changed nodes.dense_1.units: 64 -> 128`.

    `path` turns a file name into what the runner resolves (relative to the repository root)."""
    loc = change.b
    props = [f"file={gh_prop(path(loc.file if loc is not None and loc.line else b_file))}"]
    if loc is not None and loc.line:
        props.append(f"line={loc.line}")
        if loc.col:
            props.append(f"col={loc.col}")
    props.append(f"title={gh_prop('graphspec diff: ' + change.kind)}")
    message = f"{change.kind} {change.path}: {_describe(change)}"
    if change.a is not None:
        message += f"\nwas at {path(change.a.file)}" + str(change.a).removeprefix(change.a.file)
    return f"::notice {','.join(props)}::{gh_data(message)}"


def github(report: DiffReport, b_file: str | None = None, path: Callable[[str], str] = str) -> str:
    """One annotation per change on B's lines (a removed node: on B's file); the model summary as log lines,
    escaped so that no file or model name can make one a workflow command."""
    lines = [github_line(c, b_file or report.b, path) for c in report.changes]
    for m in report.models:
        lines.append(gh_log(f"{_model_head(m)}: params {count_text(m.params)}, trainable "
                            f"{count_text(m.trainable_params)}, MACs {count_text(m.macs)}"
                            + "".join(f", output {s}" for s in _shapes_text(m))))
    lines.append(gh_log(f"{path(report.a)} and {path(report.b)} are equivalent" if report.equal
                        else f"{len(report.changes)} change{'' if len(report.changes) == 1 else 's'}"))
    return "\n".join(lines) + "\n"


def render(report: DiffReport, fmt: str, *, b_file: str | None = None, path: Callable[[str], str] = str) -> str:
    """The report in one of FORMATS; `path` maps file names for the github format (repository-root paths)."""
    if fmt == "json":
        return json_text(report)
    if fmt == "markdown":
        return markdown(report)
    if fmt == "github":
        return github(report, b_file, path)
    return text(report)


FORMATS: Sequence[str] = ("text", "json", "markdown", "github")

__all__ = ["Change", "DiffReport", "FORMATS", "ModelDelta", "flow", "github", "json_doc", "json_text",
           "markdown", "render", "text"]
