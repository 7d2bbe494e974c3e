"""When a training cannot go on: a write that failed (a full disk, a read-only folder, an I/O
error) or Keras rejecting the data or the model inside `fit`.

Either way the run stops with exit 1 and a located error (GS430 names the file and the cause,
GS441 a file the input pipeline could not decode, GS432 says that another process of a multi-process
run stopped, GS423 quotes what Keras said); the run is marked `failed` in `state.json` with that message
(as far as the disk still allows), and the error says which checkpoint is kept: the last one
`state.json` names, which every write leaves intact (:mod:`graphspec.run.artifacts`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError
from graphspec.run.artifacts import WriteError
from graphspec.run.sources.arrays import DataError, Problem, take_lost

MAX_QUOTE = 400


_NOISE = ("File ", "Detected at node", "Graph execution error", "[[", "Traceback", "Stack trace")


def _first_lines(text: str, limit: int = MAX_QUOTE) -> str:
    """What Keras or TensorFlow said, without their call stacks and graph dumps."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    picked = next((ln for ln in lines if not ln.startswith(_NOISE)), lines[0] if lines else "")
    picked = re.sub(r"\s*\[Op:[^\]]*\]?$", "", picked)
    return picked if len(picked) <= limit else picked[:limit] + "..."


def _layer(text: str, layers: set[str]) -> str | None:
    """The model's layer a TensorFlow error names (`{{node model/scope/Op}}`; scopes may carry a `_N`)."""
    found = re.search(r"\{\{node ([^}]+)\}\}", text)
    parts = found.group(1).split("/") if found else []
    if len(parts) < 3:
        return None
    scope = parts[1]
    return scope if scope in layers else next((n for n in (re.sub(r"_\d+$", "", scope),) if n in layers), None)


# TensorFlow's own file writers (TensorBoard's event files) report a failed write as "PATH; CAUSE".
_IO_CAUSES = {os.strerror(code): code for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO,
                                                  errno.EDQUOT)}
_IO_ERROR = re.compile(r"(\S+); (" + "|".join(re.escape(c) for c in _IO_CAUSES) + ")")


# What JAX's CPU collectives (gloo) say when a peer process of a multi-process run is gone.
_PEER_LOST = re.compile(r"Gloo \w+ failed|Connection (?:closed|reset) by peer")


def fit_failed(exc: BaseException, where: Location, layers: set[str] | None = None,
               at_node: Callable[[str], Location] | None = None) -> SpecError:
    """An exception Keras raised inside fit or evaluate, as a located error: GS430 for a file TensorFlow
    could not write, the data error itself for a file the input pipeline could not decode (GS441), GS432
    for a peer process lost in a multi-process run, else GS423."""
    text = str(exc)
    io_error = _IO_ERROR.search(text)
    if io_error:
        code = _IO_CAUSES[io_error.group(2)]
        return WriteError(Path(io_error.group(1)), OSError(code, os.strerror(code)))
    lost = take_lost()
    if not isinstance(exc, Problem) and lost is not None:
        exc = lost  # raised inside TensorFlow's numpy_function, which passed on an UnknownError without it
    if isinstance(exc, Problem):  # a file the pipeline decodes is bad (GS441): raised in its threads
        return DataError([Diagnostic(exc.code, Severity.ERROR, exc.message, where, exc.hint)])
    said = _first_lines(text) or type(exc).__name__
    if _PEER_LOST.search(text):
        return SpecError([Diagnostic(
            "GS432", Severity.ERROR, f"another process of this training stopped; this one lost it in a collective "
            f"({said})", where, "the other process's own output says why (the `[N]` lines of `graphspec launch`)")])
    layer = _layer(text, layers or set())
    if layer and at_node is not None:
        where = at_node(layer)  # the node whose layer failed (layers are named after their nodes)
    return SpecError([Diagnostic(
        "GS423", Severity.ERROR, "Keras rejected the data or the model while training"
        + (f" (in layer `{layer}`)" if layer else "") + f": {type(exc).__name__}: {said}",
        where, "graphspec checks shapes, dtypes and values before training; this one only Keras could see: "
        "check the data against the model's inputs and outputs")])


def with_notes(error: SpecError, *notes: str) -> SpecError:
    """The same error with notes added to its first diagnostic."""
    if not error.diagnostics:
        return error
    first, rest = error.diagnostics[0], error.diagnostics[1:]
    first = dataclasses.replace(first, notes=first.notes + tuple(n for n in notes if n))
    return SpecError([first, *rest], error.sources)


def mark_failed(error: SpecError, state_file: Path, last: Path, epochs_done: int,
                write_state: Callable[..., Any]) -> SpecError:
    """Record the failure in state.json (best effort) and return `error` with what was kept and what not."""
    first = error.diagnostics[0] if error.diagnostics else None
    message = f"{first.location}: {first.message}" if first is not None else str(error)
    if not state_file.exists():
        return with_notes(error, f"no {state_file.name} was written: {state_file.parent} holds no run to continue")
    kept = (f"the run is kept up to epoch {epochs_done}: {last}" if last.exists()
            else "no checkpoint had been written yet")
    try:
        write_state(status="failed", message=message)
    except SpecError as again:
        why = again.diagnostics[0].message if again.diagnostics else str(again)
        return with_notes(error, kept, f"the run could not be marked failed in {state_file.name} ({why})")
    return with_notes(error, kept, f"the run is marked failed in {state_file}")
