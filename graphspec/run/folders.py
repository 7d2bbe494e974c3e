"""Run folders: their layout, finding them, reading their state, and the files that describe a run.

A run folder (default `runs/<spec name>/<timestamp>/`) holds:

* `spec.yaml` - the spec as trained: the bases it `extends` merged, `--set` overrides applied, seed
  and epochs filled in, file paths made absolute;
* `environment.json` - the Keras backend, versions of Python, Keras, the backend, ..., the command line,
  the devices;
* `metrics.csv`, `history.json` - one row per completed epoch;
* `tensorboard/` - TensorBoard logs;
* `last.keras` - the model after the last completed epoch (epoch 0: the initial weights), with its
  optimizer state; `best.keras` - the best epoch by the checkpoint's monitored metric;
* `checkpoints/epoch-NNNN.keras` - the checkpoint `state.json` points to (same file as `last.keras`);
* `state.json` - epochs completed, status, the best value so far, callback and RNG state, the backend
  it last trained on: what `--resume` continues from;
* `results.json` - test-set metrics, once the run has finished;
* `.claim` - who owns the run folder while a training runs in it (:mod:`graphspec.run.lock`).

None of these names may be a symbolic link (:mod:`graphspec.run.folder_guard`, GS424): a run folder is
checked before anything is written or deleted in it, and again before each epoch's files.

Every file is written to a temporary file in the same folder and renamed into place
(:mod:`graphspec.run.artifacts`); the checkpoint is written before the state that names it, so a
process killed at any moment leaves a run that loads and resumes (:mod:`graphspec.run.trainer`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import errno
import json
import os
import platform
import sys
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

from graphspec.run.artifacts import WriteError, writing
from graphspec.run import folder_guard, state_check
from graphspec.run.lock import CLAIM, claim
from graphspec.spec import extends
from graphspec.spec import source as source_mod
from graphspec.errors import SpecError, UsageError

STATE = "state.json"
SPEC = "spec.yaml"
HISTORY = "history.json"
METRICS = "metrics.csv"
ENVIRONMENT = "environment.json"
RESULTS = "results.json"
BEST = "best.keras"
LAST = "last.keras"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"


# -- owning a run folder -----------------------------------------------------------------------------------
def new_run_folder(runs_root: str | Path, name: str) -> tuple[Path, list[Path]]:
    """A fresh `runs_root/name/<timestamp>[-n]/`, created here so that two processes never pick the same one.

    Also returns the parent folders this call created (outermost first), for :func:`claimed` to remove
    again if the run fails before writing anything.
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = Path(runs_root) / name
    made = [p for p in (Path(runs_root), parent) if not p.exists()]
    with writing(parent):
        parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            with writing(folder):
                folder.mkdir()
            return folder, made
        except WriteError as exc:
            if exc.errno != errno.EEXIST:
                raise
            n += 1


@contextlib.contextmanager
def claimed(folder: Path, *, fresh: bool, force_unlock: bool = False,
            note: Callable[[str], None] | None = None, made: list[Path] | None = None) -> Iterator[None]:
    """Own `folder` for a training (:func:`graphspec.run.lock.claim`); a fresh run refuses a folder holding one.

    A fresh run that fails before writing anything leaves no folder behind (nor its claim file).
    """
    folder_guard.check_run_folder(folder)  # before anything is written or deleted there, the claim included
    created = not folder.exists() or not any(folder.iterdir())
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    with claim(folder, command="train", force_unlock=force_unlock, note=note):
        if fresh and is_run_dir(folder):
            raise UsageError(f"{folder} already holds a run: continue it with --resume, or choose another --run-dir")
        try:
            yield
        except BaseException:
            if fresh and created and [p.name for p in folder.iterdir()] == [CLAIM]:
                with contextlib.suppress(OSError):
                    (folder / CLAIM).unlink()
                    folder.rmdir()
                    for parent in reversed(made or []):
                        parent.rmdir()  # only if empty
            raise


# -- locating specs and runs -----------------------------------------------------------------------------
def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / SPEC).is_file() and (p / STATE).is_file()


def spec_name(spec: str | Path) -> str:
    """The `name:` of a spec file (cheaply, without validating it)."""
    try:
        src = extends.load(str(spec))  # a variant may take its name from its base
    except source_mod.SourceError as exc:
        raise SpecError([exc.diagnostic]) from None
    name = src.data.get("name") if isinstance(src.data, dict) else None
    if not isinstance(name, str):
        raise UsageError(f"{spec}: the spec has no `name`")
    return name


def latest_run(runs_root: str | Path, name: str) -> Path | None:
    folder = Path(runs_root) / name
    if not folder.is_dir():
        return None
    runs = sorted(p for p in folder.iterdir() if is_run_dir(p))
    return runs[-1] if runs else None


def read_state(run_dir: Path) -> dict[str, Any]:
    """The run's `state.json`, checked field by field (a run folder may come from anyone): else GS420."""
    return state_check.read(run_dir / STATE)


def resume_target(spec: str | Path, run_dir: str | Path | None, runs_root: str | Path = "runs") -> Path:
    """The run folder `--resume` continues: --run-dir, SPEC itself if it is a run, else the latest run."""
    if run_dir is not None:
        folder = Path(run_dir)
    elif is_run_dir(spec):
        folder = Path(spec)
    else:
        found = latest_run(runs_root, spec_name(spec))
        if found is None:
            raise UsageError(f"--resume: no run of {spec} under {Path(runs_root) / spec_name(spec)}; "
                             "start one without --resume, or name it with --run-dir")
        folder = found
    if not is_run_dir(folder):
        raise UsageError(f"--resume: {folder} is not a run folder (no {SPEC} and {STATE})")
    return folder


# -- the spec as trained, and the machine -----------------------------------------------------------------
def resolved_spec_text(spec_file: str | Path, sets: list[str], extra: dict[str, Any]) -> str:
    """The spec's data with `--set` applied and `extra` (dotted path -> value) filled in, as YAML."""
    import yaml

    from graphspec.spec import overrides

    src = extends.load(str(spec_file))  # bases merged: the run keeps the whole spec, without `extends`
    if sets:
        src = overrides.apply(src, sets)
    value = copy.deepcopy(src.data)
    for dotted, v in extra.items():
        cur = value
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(cur.get(part), dict):
                cur[part] = {}
            cur = cur[part]
        cur[parts[-1]] = v
    from graphspec.run import data as data_mod  # here: NumPy is not needed to find a run's backend

    source = value.get("data", {}).get("source") if isinstance(value.get("data"), dict) else None
    if isinstance(source, dict) and source.get("kind") in {"npz", "csv", "images", "text", "parquet", "tfrecord"}:
        base = Path(spec_file).resolve().parent
        for split in data_mod.SPLITS:
            if isinstance(source.get(split), str) and not Path(source[split]).is_absolute():
                source[split] = str(base / source[split])
    header = (f"# The spec as trained by graphspec: {Path(spec_file)}"
              + (" with " + " ".join(f"--set {s}" for s in sets) if sets else "") + "\n")
    body: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=120)  # no stream: a str
    return header + body


def recorded_backend(run_dir: str | Path) -> str | None:
    """The Keras backend a run folder last trained on (state.json, else environment.json); None if unknown."""
    for name in (STATE, ENVIRONMENT):
        try:  # a run folder may come from anyone: a bounded read, and only a backend's name is taken from it
            with open(Path(run_dir) / name, "rb") as fh:
                value = json.loads(fh.read(state_check.MAX_STATE_BYTES).decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(value, dict) and value.get("backend") in {"tensorflow", "jax", "torch"}:
            return str(value["backend"])
    return None


def environment(argv: list[str] | None = None) -> dict[str, Any]:
    """What a run ran on: the Keras backend, versions, platform, devices, command line."""
    import importlib.metadata as md

    from graphspec import __version__
    from graphspec.build import backend

    versions = {"graphspec": __version__, "python": platform.python_version()}
    for dist in ("keras", "tensorflow", "jax", "jaxlib", "torch", "numpy", "scikit-learn", "pydantic", "rich",
                 "typer", "h5py"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return {
        "backend": backend.active(),
        "versions": versions,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "devices": backend.devices(),
        "argv": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "host": platform.node(),
        "pid": os.getpid(),
        "started": now(),
    }


def now() -> str:
    """The current time (UTC) as the run files write it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
