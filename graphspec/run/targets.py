"""What an output path holds before graphspec writes there: it replaces only its own kind of output.

`save -o PATH`, `predict -o PATH` and the other writers replace PATH as a whole (atomically,
:mod:`graphspec.run.artifacts`). Before they do, :func:`check` makes sure nothing is lost:

* a folder output (a SavedModel) replaces only an empty folder or a SavedModel, never a file,
  never a folder holding anything else, never the current folder or one above it;
* a file output (.keras, .tflite, .onnx, .npz, text) never replaces a folder, and replaces a file only
  when that file is already an output of the same kind (a .keras archive, a TFLite flatbuffer,
  an .npz of arrays) or `--force` is given.

graphspec tells its own outputs by their content rather than by a marker file: a `.keras` file
another tool wrote is the same kind of thing, and replacing it is what `-o` asks for.

:func:`clean_stale` removes temporaries a killed save left beside its target; a temporary is
stale when no process holds the lock its writer keeps on it while writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import zipfile
from pathlib import Path

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError

# What `model.export(format="tf_saved_model")` writes into its folder.
SAVEDMODEL_ENTRIES = {"saved_model.pb", "saved_model.pbtxt", "variables", "assets", "fingerprint.pb",
                      "keras_metadata.pb", "assets.extra"}
KINDS = {"keras": "a .keras model", "tflite": "a TFLite model", "onnx": "an ONNX model",
         "savedmodel": "a SavedModel folder", "npz": "an .npz file of arrays", "text": "a text file"}


class OutputRefused(SpecError):
    """The output path holds something graphspec will not replace (GS431, exit 1)."""


def refuse(target: Path, message: str, hint: str | None = None) -> OutputRefused:
    return OutputRefused([Diagnostic("GS431", Severity.ERROR, message, Location(str(target)), hint)])


def _is_current_or_above(target: Path) -> bool:
    try:
        here, there = Path.cwd().resolve(), target.resolve()
    except OSError:
        return False
    return here == there or there in here.parents


def _listing(folder: Path, limit: int = 5) -> str:
    names = []
    with contextlib.suppress(OSError):
        for i, p in enumerate(sorted(folder.iterdir())):
            if i == limit:
                names.append("...")
                break
            names.append(p.name + ("/" if p.is_dir() else ""))
    return ", ".join(names)


def is_savedmodel(folder: Path) -> bool:
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return "saved_model.pb" in names and names <= SAVEDMODEL_ENTRIES


def kind_of_file(path: Path) -> str | None:
    """Which of graphspec's output kinds the file already is, by its content; None for anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if len(head) == 8 and head[4:8] == b"TFL3":
        return "tflite"
    if path.suffix == ".onnx" and head[:1] == b"\x08":  # an ONNX ModelProto opens with its ir_version field
        return "onnx"
    if not head.startswith(b"PK"):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "config.json" in names and "metadata.json" in names:
        return "keras"
    if all(n.endswith(".npy") for n in names):
        return "npz"
    return None


def check(target: str | Path, kind: str, *, force: bool = False) -> None:
    """Raise GS431 unless writing `kind` to `target` replaces nothing but an earlier output of that kind."""
    target = Path(target)
    what = KINDS.get(kind, kind)
    if target.name in {"", ".", ".."} or _is_current_or_above(target):
        raise refuse(target, f"{target} is the current folder or one above it: it cannot be replaced by {what}",
                     "name a new file or folder")
    if not target.exists() and not target.is_symlink():
        return
    if kind == "savedmodel":
        if target.is_file() or target.is_symlink():
            raise refuse(target, f"{target} is a file: a SavedModel is a folder, and graphspec never replaces a "
                         "file with a folder", "name a new folder, or give the file a suffix: .keras or .tflite")
        if any(target.iterdir()) and not is_savedmodel(target):
            raise refuse(target, f"{target} is a folder that is not a SavedModel (it holds {_listing(target)}); "
                         "writing one there would delete those files", "name a new or empty folder")
        return
    if target.is_dir():
        raise refuse(target, f"{target} is a folder: {what} is a file, and graphspec never replaces a folder",
                     "name a file inside it, or a new file")
    if force or kind == "text" or kind_of_file(target) == kind:
        return
    raise refuse(target, f"{target} exists and is not {what}; writing would replace it",
                 "pass --force to replace it, or name a new file")


def _temporaries(target: Path) -> list[Path]:
    """Temporaries of `target` that :mod:`graphspec.run.artifacts` makes: `.NAME.<random>.tmp*` / `.old`."""
    folder = target.parent
    if not folder.is_dir():
        return []
    prefix = f".{target.name}."
    out = []
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            rest = p.name[len(prefix):]
            if p.name.startswith(prefix) and ".tmp" in rest:
                out.append(p)
            elif p.name.startswith(prefix) and rest.endswith(".old") and target.exists():
                out.append(p)  # the previous folder set aside; kept while it is the only copy
    return sorted(out)


def _held(path: Path) -> bool:
    """Whether a live writer holds the lock on this temporary."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)  # a FIFO must not hang us
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


def clean_stale(target: str | Path) -> list[Path]:
    """Remove temporaries of `target` that an interrupted write left (their writer is gone); returns them."""
    removed = []
    for p in _temporaries(Path(target)):
        if _held(p):
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed
