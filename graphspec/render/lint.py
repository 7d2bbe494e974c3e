"""Rendering `graphspec lint` results: text, JSON, GitHub annotations, SARIF 2.1.0.

Every function here is pure: it takes :class:`FileReport` objects (what lint
found in each file) and returns a string or a JSON-ready dict. The command in
:mod:`graphspec.cli.lint` computes, this module renders; tests render directly.
Nothing here imports Keras, TensorFlow or rich.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from graphspec.diagnostics import CODES, Diagnostic, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
CODES_DOC = "docs/codes.md"
TOOL_URI = "https://github.com/graphspec/graphspec"


@dataclasses.dataclass(frozen=True)
class ModelReport:
    """What lint computed statically about one model of a spec."""

    name: str
    params: int | None
    trainable_params: int | None
    weight_bytes: int | None
    output_shapes: dict[str, tuple[int | None, ...] | None]
    unchecked: tuple[str, ...] = ()  # nodes whose parameters are not known statically
    submodel: bool = False
    macs: int | None = None  # multiply-accumulates per sample (docs/lint.md)

    def as_dict(self) -> dict[str, Any]:
        non_trainable = (None if self.params is None or self.trainable_params is None
                         else self.params - self.trainable_params)
        return {
            "name": self.name,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": non_trainable,
            "weight_bytes": self.weight_bytes,
            "macs": self.macs,
            "output_shapes": {k: (list(v) if v is not None else None) for k, v in self.output_shapes.items()},
            "unchecked_nodes": list(self.unchecked),
            "submodel": self.submodel,
        }


@dataclasses.dataclass
class FileReport:
    """Lint's findings for one file."""

    file: str
    diagnostics: list[Diagnostic]
    models: list[ModelReport] = dataclasses.field(default_factory=list)
    source: str | None = None  # the text, for carets under faults
    bases: dict[str, str] = dataclasses.field(default_factory=dict)  # the text of files it `extends`, by name

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if not d.is_error)

    @property
    def internal_error(self) -> bool:
        return any(d.code == "GS900" for d in self.diagnostics)


# -- helpers -------------------------------------------------------------------


def warning_codes() -> frozenset[str]:
    """Codes whose diagnostics are warnings by default (their title says so)."""
    return frozenset(code for code, (title, _) in CODES.items() if title.endswith("(warning)"))


def strict(reports: Sequence[FileReport]) -> list[FileReport]:
    """`--strict`: the same reports with every warning made an error."""
    out = []
    for r in reports:
        diags = [d if d.is_error else dataclasses.replace(d, severity=Severity.ERROR) for d in r.diagnostics]
        out.append(dataclasses.replace(r, diagnostics=diags))
    return out


def totals(reports: Sequence[FileReport]) -> tuple[int, int, int]:
    """(errors, warnings, files)."""
    return (sum(r.errors for r in reports), sum(r.warnings for r in reports), len(reports))


def exit_code(reports: Sequence[FileReport]) -> int:
    """0 clean (warnings allowed), 1 errors found, 2 an internal error on some file."""
    if any(r.internal_error for r in reports):
        return 2
    return 1 if any(r.errors for r in reports) else 0


def human_bytes(n: int) -> str:
    """`215 KiB`, `5.3 MiB`, `512 B`."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        value /= 1024
        if value < 1024 or unit == "EiB":
            break
    if value >= 100:
        return f"{value:,.0f} {unit}"
    digits = 1 if value >= 10 else 2
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") + f" {unit}"


def _summary_text(reports: Sequence[FileReport]) -> str:
    from graphspec.render.text import count_line

    n_err, n_warn, n_files = totals(reports)
    return count_line(n_err, n_warn, n_files)


def model_line(file: str, model: ModelReport) -> str:
    """`specs/x.yaml: model mnist_model: 55,050 params (215 KiB of float32 weights)`."""
    kind = "submodel" if model.submodel else "model"
    head = f"{file}: {kind} {model.name}: "
    if model.params is None:
        unknown = ", ".join(f"`{n}`" for n in model.unchecked[:3]) + (", ..." if len(model.unchecked) > 3 else "")
        why = f" (no static shape or size for {unknown})" if unknown else ""
        return head + f"parameters not known statically{why}"
    text = head + f"{model.params:,} params"
    if model.weight_bytes is not None:
        text += f" ({human_bytes(model.weight_bytes)} of float32 weights)"
    if model.trainable_params is not None and model.trainable_params != model.params:
        text += f", {model.params - model.trainable_params:,} non-trainable"
    return text


# -- text ------------------------------------------------------------------------


def text(reports: Sequence[FileReport], *, color: bool = False, stats: bool = True) -> str:
    """Diagnostics with source line and caret, per-model statistics, and a summary line."""
    from graphspec.render.text import diagnostic_text

    blocks: list[str] = []
    for r in reports:
        for d in sorted(r.diagnostics, key=Diagnostic.sort_key):
            # A diagnostic may point into another file: a base it extends (its own lines), or a plugin's
            # declaration (no caret then).
            shown = r.source if d.location.file == r.file else r.bases.get(d.location.file)
            blocks.append(diagnostic_text(d, shown, color=color))
    lines = list(blocks)
    if stats:
        for r in reports:
            lines.extend(model_line(r.file, m) for m in r.models)
    lines.append(_summary_text(reports))
    return "\n".join(lines) + "\n"


# -- JSON ------------------------------------------------------------------------


def json_doc(reports: Sequence[FileReport], *, strict_mode: bool = False, version: str = "") -> dict[str, Any]:
    """One document with every diagnostic, the per-file model statistics and a summary."""
    n_err, n_warn, n_files = totals(reports)
    return {
        "tool": {"name": "graphspec", "version": version},
        "summary": {
            "files": n_files, "errors": n_err, "warnings": n_warn, "strict": strict_mode,
            "exit_code": exit_code(reports),
        },
        "files": [
            {"file": r.file, "errors": r.errors, "warnings": r.warnings, "models": [m.as_dict() for m in r.models]}
            for r in reports
        ],
        "diagnostics": [d.as_dict() for r in reports for d in sorted(r.diagnostics, key=Diagnostic.sort_key)],
    }


def json_text(reports: Sequence[FileReport], *, strict_mode: bool = False, version: str = "") -> str:
    return json.dumps(json_doc(reports, strict_mode=strict_mode, version=version), indent=2) + "\n"


# -- GitHub workflow commands ----------------------------------------------------


def _gh_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(value: str) -> str:
    return _gh_data(value).replace(":", "%3A").replace(",", "%2C")


def github_line(d: Diagnostic) -> str:
    """`::error file=specs/x.yaml,line=3,col=5,endLine=3,endColumn=9,title=GS112::message`."""
    loc = d.location
    props = [f"file={_gh_prop(loc.file)}"]
    if loc.line:
        props.append(f"line={loc.line}")
        if loc.col:
            props.append(f"col={loc.col}")
        if loc.end_line:
            props.append(f"endLine={loc.end_line}")
            if loc.end_col and loc.end_line == loc.line:
                props.append(f"endColumn={loc.end_col}")
    props.append(f"title={_gh_prop(f'graphspec {d.code}')}")
    message = f"{d.code}: {d.message}"
    for note in d.notes:
        message += f"\nnote: {note}"
    if d.hint:
        message += f"\nhint: {d.hint}"
    command = "error" if d.is_error else "warning"
    return f"::{command} {','.join(props)}::{_gh_data(message)}"


def github(reports: Sequence[FileReport], *, stats: bool = True) -> str:
    """Workflow annotations, one line per diagnostic; statistics and summary as plain log lines."""
    lines = [github_line(d) for r in reports for d in sorted(r.diagnostics, key=Diagnostic.sort_key)]
    if stats:
        for r in reports:
            lines.extend(model_line(r.file, m) for m in r.models)
    lines.append(_summary_text(reports))
    return "\n".join(lines) + "\n"


# -- SARIF 2.1.0 -----------------------------------------------------------------


def _uri(file: str) -> tuple[str, bool]:
    """(uri, relative?) for an artifactLocation."""
    p = PurePath(file)
    if p.is_absolute():
        from pathlib import Path

        return Path(file).as_uri(), False
    from urllib.parse import quote

    return quote(p.as_posix()), True


def sarif_doc(reports: Sequence[FileReport], *, version: str = "") -> dict[str, Any]:
    """A SARIF 2.1.0 log for GitHub code scanning: one run, every code as a rule."""
    warn = warning_codes()
    codes = list(CODES)
    index = {c: i for i, c in enumerate(codes)}
    rules = []
    for code, (title, example) in CODES.items():
        rule: dict[str, Any] = {
            "id": code,
            "name": code,
            "shortDescription": {"text": title},
            "fullDescription": {"text": f"{title}. Example: {example}" if example else title},
            "helpUri": f"{TOOL_URI}/blob/main/{CODES_DOC}#{code.lower()}",
            "defaultConfiguration": {"level": "warning" if code in warn else "error"},
        }
        rules.append(rule)
    results = []
    for r in reports:
        for d in sorted(r.diagnostics, key=Diagnostic.sort_key):
            uri, relative = _uri(d.location.file)
            artifact: dict[str, Any] = {"uri": uri}
            if relative:
                artifact["uriBaseId"] = "%SRCROOT%"
            physical: dict[str, Any] = {"artifactLocation": artifact}
            loc = d.location
            if loc.line:
                region: dict[str, Any] = {"startLine": loc.line, "startColumn": max(1, loc.col)}
                if loc.end_line >= loc.line:
                    region["endLine"] = loc.end_line
                    if loc.end_col and (loc.end_line > loc.line or loc.end_col > region["startColumn"]):
                        region["endColumn"] = loc.end_col
                physical["region"] = region
            message = d.message
            for note in d.notes:
                message += f"\nnote: {note}"
            if d.hint:
                message += f"\nhint: {d.hint}"
            result: dict[str, Any] = {
                "ruleId": d.code,
                "level": "error" if d.is_error else "warning",
                "message": {"text": message},
                "locations": [{"physicalLocation": physical}],
            }
            if d.code in index:
                result["ruleIndex"] = index[d.code]
            results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "graphspec",
            "version": version,
            "informationUri": TOOL_URI,
            "rules": rules,
        }},
        "results": results,
        "invocations": [{"executionSuccessful": not any(r.internal_error for r in reports)}],
        "properties": {
            "models": {r.file: [m.as_dict() for m in r.models] for r in reports if r.models},
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def sarif_text(reports: Sequence[FileReport], *, version: str = "") -> str:
    return json.dumps(sarif_doc(reports, version=version), indent=2) + "\n"
