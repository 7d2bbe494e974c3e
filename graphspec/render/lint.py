"""Rendering `graphspec lint` results: text, JSON, GitHub annotations, SARIF 2.1.0.

Every function here is pure: it takes :class:`FileReport` objects (what lint
found in each file) and returns a string or a JSON-ready dict. The command in
:mod:`graphspec.cli.lint` computes, this module renders; tests render directly.
Nothing here imports Keras, TensorFlow or rich.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote

from graphspec.diagnostics import CODES, Diagnostic, Location, Severity, rule_name
from graphspec.errors import EXIT_INTERNAL
from graphspec.render.escape import gh_data, gh_log, gh_prop, printable

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
CODES_DOC = "docs/codes.md"
TOOL_URI = "https://github.com/graphspec/graphspec"
OVERRIDE_PREFIX = "--set #"  # the location of a diagnostic caused by a --set override (not a file)
Skipped = Sequence[Mapping[str, str]]  # {"path": ..., "reason": ...} for each path discovery skipped


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
    # Diagnostics past MAX_PER_FILE (see :func:`capped`): counted, not listed.
    omitted_errors: int = 0
    omitted_warnings: int = 0

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.is_error) + self.omitted_errors

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if not d.is_error) + self.omitted_warnings

    @property
    def omitted(self) -> int:
        return self.omitted_errors + self.omitted_warnings

    @property
    def internal_error(self) -> bool:
        return any(d.code == "GS900" for d in self.diagnostics)


# -- helpers -------------------------------------------------------------------
MAX_PER_FILE = 200  # diagnostics listed per file; the rest are counted in one line


def capped(diags: list[Diagnostic], limit: int = MAX_PER_FILE) -> tuple[list[Diagnostic], int, int]:
    """The first `limit` diagnostics (sorted), and how many errors and warnings were left out."""
    if len(diags) <= limit:
        return diags, 0, 0
    rest = diags[limit:]
    errors = sum(1 for d in rest if d.is_error)
    return diags[:limit], errors, len(rest) - errors


def omitted_line(r: FileReport) -> str:
    """`spec.yaml: and 89,769 more diagnostics (89,769 errors, 0 warnings) not shown: the first 200 are`."""
    n = r.omitted
    return (f"{r.file}: and {n:,} more diagnostic{'' if n == 1 else 's'} ({r.omitted_errors:,} "
            f"error{'' if r.omitted_errors == 1 else 's'}, {r.omitted_warnings:,} "
            f"warning{'' if r.omitted_warnings == 1 else 's'}) not shown: the first {MAX_PER_FILE} are")



def warning_codes() -> frozenset[str]:
    """Codes whose diagnostics are warnings by default (their title says so)."""
    return frozenset(code for code, (title, _) in CODES.items() if title.endswith("(warning)"))


def strict(reports: Sequence[FileReport]) -> list[FileReport]:
    """`--strict`: the same reports with every warning made an error."""
    out = []
    for r in reports:
        diags = [d if d.is_error else dataclasses.replace(d, severity=Severity.ERROR) for d in r.diagnostics]
        out.append(dataclasses.replace(r, diagnostics=diags, omitted_errors=r.omitted,
                                       omitted_warnings=0))
    return out


def totals(reports: Sequence[FileReport]) -> tuple[int, int, int]:
    """(errors, warnings, files)."""
    return (sum(r.errors for r in reports), sum(r.warnings for r in reports), len(reports))


def exit_code(reports: Sequence[FileReport]) -> int:
    """0 clean (warnings allowed), 1 errors found, 3 an internal error (GS900) on some file."""
    if any(r.internal_error for r in reports):
        return EXIT_INTERNAL
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


def _summary_text(reports: Sequence[FileReport], skipped_note: str = "") -> str:
    from graphspec.render.text import count_line

    n_err, n_warn, n_files = totals(reports)
    line = count_line(n_err, n_warn, n_files)
    return f"{line} ({skipped_note})" if skipped_note else line


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


def text(reports: Sequence[FileReport], *, color: bool = False, stats: bool = True, skipped_note: str = "") -> str:
    """Diagnostics with source line and caret, per-model statistics, and a summary line."""
    from graphspec.render.text import diagnostic_text

    blocks: list[str] = []
    for r in reports:
        lines_of = r.source.splitlines() if r.source is not None and r.diagnostics else None
        for d in sorted(r.diagnostics, key=Diagnostic.sort_key):
            # A diagnostic may point into another file: a base it extends (its own lines), or a plugin's
            # declaration (no caret then).
            if d.location.file == r.file:
                blocks.append(diagnostic_text(d, None, color=color, lines_of=lines_of))
            else:
                blocks.append(diagnostic_text(d, r.bases.get(d.location.file), color=color))
        if r.omitted:
            blocks.append(printable(omitted_line(r)))
    lines = list(blocks)
    if stats:
        for r in reports:
            lines.extend(printable(model_line(r.file, m)) for m in r.models)
    lines.append(printable(_summary_text(reports, skipped_note)))
    return "\n".join(lines) + "\n"


# -- JSON ------------------------------------------------------------------------


def json_doc(reports: Sequence[FileReport], *, strict_mode: bool = False, version: str = "",
             skipped: Skipped = ()) -> dict[str, Any]:
    """One document with every diagnostic, the per-file model statistics and a summary."""
    n_err, n_warn, n_files = totals(reports)
    return {
        "tool": {"name": "graphspec", "version": version},
        "summary": {
            "files": n_files, "errors": n_err, "warnings": n_warn, "strict": strict_mode,
            "exit_code": exit_code(reports), "skipped": len(skipped),
        },
        "skipped": [dict(s) for s in skipped],
        "files": [
            {"file": r.file, "errors": r.errors, "warnings": r.warnings, "omitted": r.omitted,
             "models": [m.as_dict() for m in r.models]}
            for r in reports
        ],
        "diagnostics": [d.as_dict() for r in reports for d in sorted(r.diagnostics, key=Diagnostic.sort_key)],
    }


def json_text(reports: Sequence[FileReport], *, strict_mode: bool = False, version: str = "",
              skipped: Skipped = ()) -> str:
    return json.dumps(json_doc(reports, strict_mode=strict_mode, version=version, skipped=skipped), indent=2) + "\n"


# -- GitHub workflow commands ----------------------------------------------------


def is_override(loc: Location) -> bool:
    """A diagnostic caused by a `--set` override is located at it, not in a file."""
    return loc.file.startswith(OVERRIDE_PREFIX)


def _full_message(d: Diagnostic, *, with_code: bool) -> str:
    message = f"{d.location.file}: {d.message}" if is_override(d.location) else d.message
    if with_code:
        message = f"{d.code}: {message}"
    for note in d.notes:
        message += f"\nnote: {note}"
    if d.hint:
        message += f"\nhint: {d.hint}"
    return message


def repo_path(file: str, root: str | None, cwd: str | None) -> str:
    """A file as the GitHub runner resolves `file=`: relative to the repository root (with `/`), when
    the root and the folder relative paths were given from are known and the file is inside; else as given."""
    if root is None or cwd is None or file.startswith("<"):
        return file
    full = os.path.normpath(os.path.join(cwd, file))
    rel = os.path.relpath(full, root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return file
    return PurePosixPath(*PurePath(rel).parts).as_posix()


def github_line(d: Diagnostic, *, root: str | None = None, cwd: str | None = None) -> str:
    """`::error file=specs/x.yaml,line=3,col=5,endLine=3,endColumn=9,title=GS112::message`.

    `file=` is relative to the repository `root` when it and `cwd` are known (the runner resolves it
    there, whatever the step's working folder). A diagnostic at a `--set` override has no file:
    GitHub shows it on the run, not on a line.
    """
    loc = d.location
    props = [] if is_override(loc) else [f"file={gh_prop(repo_path(loc.file, root, cwd))}"]
    if loc.line:
        props.append(f"line={loc.line}")
        if loc.col:
            props.append(f"col={loc.col}")
        if loc.end_line:
            props.append(f"endLine={loc.end_line}")
            if loc.end_col and loc.end_line == loc.line:
                props.append(f"endColumn={loc.end_col}")
    props.append(f"title={gh_prop(f'graphspec {d.code}')}")
    command = "error" if d.is_error else "warning"
    return f"::{command} {','.join(props)}::{gh_data(_full_message(d, with_code=True))}"


def github(reports: Sequence[FileReport], *, stats: bool = True, skipped_note: str = "", root: str | None = None,
           cwd: str | None = None) -> str:
    """Workflow annotations, one line per diagnostic; statistics and summary as plain log lines (escaped so
    that no file or model name can make one a workflow command)."""
    lines: list[str] = []
    for r in reports:
        lines.extend(github_line(d, root=root, cwd=cwd) for d in sorted(r.diagnostics, key=Diagnostic.sort_key))
        if r.omitted:
            lines.append(gh_log(omitted_line(r)))
    if stats:
        for r in reports:
            lines.extend(gh_log(model_line(repo_path(r.file, root, cwd), m)) for m in r.models)
    lines.append(gh_log(_summary_text(reports, skipped_note)))
    return "\n".join(lines) + "\n"


# -- SARIF 2.1.0 -----------------------------------------------------------------

SRCROOT = "%SRCROOT%"
STDIN_BASE = "STDIN"
FINGERPRINT = "graphspec/v1"  # partialFingerprints key: rule, file and message, stable across line moves
SUPPRESS_HELP = ("To accept it in one place, put `# graphspec: ignore[{code}]` on the line (or on the line of the "
                 "node); everywhere, add \"{code}\" to `ignore` under `[tool.graphspec.lint]` in pyproject.toml.")


def _artifact(file: str, root: str | None, cwd: str | None) -> dict[str, Any]:
    """An artifactLocation: relative to the repository root (`%SRCROOT%`), never with `..`; a
    `file://` URI for a file outside it; as given when no working folder is known (pure rendering)."""
    p = PurePath(file)
    if cwd is not None and not p.is_absolute() and not file.startswith("<"):
        file = os.path.normpath(os.path.join(cwd, file))
        p = PurePath(file)
    if p.is_absolute():
        if root is not None:
            rel = os.path.relpath(file, root)
            if not rel.startswith(".." + os.sep) and rel != ".." and not os.path.isabs(rel):
                return {"uri": quote(PurePosixPath(*PurePath(rel).parts).as_posix()), "uriBaseId": SRCROOT}
        return {"uri": Path(file).as_uri()}
    if file.startswith("<"):  # <stdin>: no file; the base STDIN says so (run.originalUriBaseIds)
        return {"uri": file.strip("<>") or "stdin", "uriBaseId": STDIN_BASE}
    return {"uri": quote(p.as_posix()), "uriBaseId": SRCROOT}


def _fingerprint(code: str, artifact: dict[str, Any], text: str, seen: dict[str, int]) -> str:
    """A stable identity for a result: its rule, file and message (not its line, which edits above move),
    and which of several alike it is; so a result keeps its alert across pushes without upload-sarif."""
    import hashlib

    key = "\0".join((code, artifact.get("uriBaseId", ""), artifact["uri"], text))
    seen[key] = seen.get(key, 0) + 1
    return f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}:{seen[key]}"


def _rule(code: str, title: str, example: str, level: str) -> dict[str, Any]:
    meaning = title.removesuffix("(warning)").strip()
    sentence = meaning[:1].upper() + meaning[1:]
    help_uri = f"{TOOL_URI}/blob/main/{CODES_DOC}#{code.lower()}"
    suppress = SUPPRESS_HELP.format(code=code)
    text = f"{sentence}." + (f" Example: {example}." if example else "") + f" {suppress} See {help_uri}"
    markdown = (f"**{code} `{rule_name(code)}`** ({level})\n\n{sentence}.\n\n"
                + (f"Example: {example}.\n\n" if example else "")
                + f"{suppress}\n\nAll codes: [{CODES_DOC}]({help_uri}).")
    return {
        "id": code,
        "name": rule_name(code),
        "shortDescription": {"text": meaning},
        "fullDescription": {"text": f"{meaning}. Example: {example}" if example else meaning},
        "help": {"text": text, "markdown": markdown},
        "helpUri": help_uri,
        "defaultConfiguration": {"level": level},
    }


def _region(loc: Location) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": max(1, loc.line), "startColumn": max(1, loc.col)}
    if loc.line and loc.end_line >= loc.line:
        region["endLine"] = loc.end_line
        if loc.end_col and (loc.end_line > loc.line or loc.end_col > region["startColumn"]):
            region["endColumn"] = loc.end_col
    return region


def sarif_doc(reports: Sequence[FileReport], *, version: str = "", root: str | None = None,
              cwd: str | None = None, skipped: Skipped = ()) -> dict[str, Any]:
    """A SARIF 2.1.0 log for GitHub code scanning: one run, every code as a rule.

    Paths are relative to `root` (the repository; `%SRCROOT%`) when `cwd`, the folder
    relative paths were given from, is known. A diagnostic at a `--set` override is
    put on the first line of the file it was linting, the override named in its message.
    """
    warn = warning_codes()
    index = {c: i for i, c in enumerate(CODES)}
    rules = [_rule(code, title, example, "warning" if code in warn else "error")
             for code, (title, example) in CODES.items()]
    results = []
    seen: dict[str, int] = {}
    for r in reports:
        for d in sorted(r.diagnostics, key=Diagnostic.sort_key):
            loc = d.location
            if is_override(loc) or not loc.line:
                loc = Location(r.file if is_override(loc) else loc.file, 1, 1)
            physical = {"artifactLocation": _artifact(loc.file, root, cwd), "region": _region(loc)}
            text = _full_message(d, with_code=False)
            result: dict[str, Any] = {
                "ruleId": d.code,
                "level": "error" if d.is_error else "warning",
                "message": {"text": text},
                "locations": [{"physicalLocation": physical}],
                "partialFingerprints": {FINGERPRINT: _fingerprint(d.code, physical["artifactLocation"], text, seen)},
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
        "columnKind": "unicodeCodePoints",
        "results": results,
        "invocations": [{"executionSuccessful": not any(r.internal_error for r in reports)}],
        "properties": {
            # keyed like the results' artifact URIs (repository-root paths where known)
            "models": {_artifact(r.file, root, cwd)["uri"]: [m.as_dict() for m in r.models]
                       for r in reports if r.models},
            "skipped": [dict(s) for s in skipped],
        },
    }
    bases: dict[str, Any] = {}
    if root is not None and cwd is not None:
        bases[SRCROOT] = {"uri": Path(root).as_uri().rstrip("/") + "/"}
    if any(r.file.startswith("<") or any(d.location.file.startswith("<") for d in r.diagnostics) for r in reports):
        bases[STDIN_BASE] = {"description": {"text": "standard input: the spec was read from stdin (`lint -`)"}}
    if bases:
        run["originalUriBaseIds"] = bases
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def sarif_text(reports: Sequence[FileReport], *, version: str = "", root: str | None = None,
               cwd: str | None = None, skipped: Skipped = ()) -> str:
    return json.dumps(sarif_doc(reports, version=version, root=root, cwd=cwd, skipped=skipped), indent=2) + "\n"
