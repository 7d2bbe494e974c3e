"""Run and sweep folders trust nothing they hold: a symbolic link where graphspec writes or deletes is refused.

A run folder may be shared, copied from elsewhere or prepared by someone else: a `checkpoints` link to a
home folder would make `train --resume` delete and replace files there, a `.claim` link would truncate
the file it names, a `tensorboard` link would receive event files. So, before anything is written or
deleted (and again before each epoch's files):

* every name graphspec writes in a run folder (:data:`RUN_FILES`, :data:`RUN_FOLDERS`) must not be a
  symbolic link (GS424, located at the link), its folders must be folders, and nothing under
  `checkpoints/` and `tensorboard/` may be a link (Keras's TensorBoard writer creates `train/`,
  `validation/` there and follows paths);
* in a sweep folder, the study's SQLite files and the trial folders must not be links either;
* the files themselves are written to a temporary created with ``O_EXCL`` (which never follows a link)
  and renamed over the name (a rename replaces a link, never its target): :mod:`graphspec.run.artifacts`;
  the claim and a trial's log are opened with ``O_NOFOLLOW`` and checked after opening (:func:`open_nofollow`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError

# What graphspec writes or deletes in a run folder (graphspec.run.folders holds the layout).
RUN_FILES = (".claim", "state.json", "spec.yaml", "history.json", "metrics.csv", "environment.json",
             "results.json", "best.keras", "last.keras", "trial.json", "train.log")
RUN_FOLDERS = ("checkpoints", "tensorboard")
SWEEP_FILES = ("sweep.json", "study.db", "study.db-journal", "study.db-wal", "study.db-shm")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO never blocks


def refused(path: Path, what: str) -> SpecError:
    """GS424 located at `path`."""
    return SpecError([Diagnostic(
        "GS424", Severity.ERROR, f"`{path.name}` {what}: graphspec writes and deletes only inside a run or "
        "sweep folder, and follows no link there", Location(str(path)),
        "remove the link (move what it points to into the folder, if it belongs to the run), or use another "
        "run folder")])


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def _no_link(path: Path, *, folder: bool = False) -> bool:
    """Refuse `path` if it is a link (or, for a folder, something else than a folder); whether it exists."""
    st = _lstat(path)
    if st is None:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise refused(path, f"is a symbolic link (to {os.readlink(path)})")
    if folder and not stat.S_ISDIR(st.st_mode):
        raise refused(path, "is not a folder")
    return True


def _no_links_under(folder: Path) -> None:
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in (*dirs, *files):
            _no_link(Path(root) / name)


def check_run_folder(folder: Path) -> None:
    """Raise GS424 when a run folder holds a link where graphspec writes or deletes (see the module)."""
    if not _no_link_entries(folder, RUN_FILES):
        return
    for name in RUN_FOLDERS:
        if _no_link(folder / name, folder=True):
            _no_links_under(folder / name)


def check_sweep_folder(folder: Path, trials: Iterable[str] = ()) -> None:
    """Raise GS424 when a sweep folder's study files or trial folders (`trials`, and every `trial-*`) are links."""
    if not _no_link_entries(folder, SWEEP_FILES):
        return
    with os.scandir(folder) as entries:
        found = [e.name for e in entries if e.name.startswith("trial-")]
    for name in dict.fromkeys([*trials, *found]):
        if _no_link(folder / name, folder=True):
            check_run_folder(folder / name)


def _no_link_entries(folder: Path, names: Iterable[str]) -> bool:
    """Check `names` in `folder`; False when the folder does not exist (yet)."""
    st = _lstat(folder)
    if st is None or not stat.S_ISDIR(os.stat(folder).st_mode):
        return False
    for name in names:
        _no_link(folder / name)
    return True


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """A descriptor for `path`, refused (GS424) when it is a link, or not a regular file of its own (a hard link
    to a file elsewhere), checked on what was opened. Truncating is for the caller, after this check."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if os.path.islink(path):
            raise refused(path, f"is a symbolic link (to {os.readlink(path)})") from None
        raise exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise refused(path, "is not a regular file of its own (a device, a pipe, or a hard link to another file)")
    return fd
