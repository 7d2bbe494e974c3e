"""`graphspec runs`: one row per run folder or sweep trial, read from the files they keep.

A row is plain data (what `--format json` prints): name, path, status (completed | pruned | failed |
running | interrupted), params (a trial's swept values, or a plain run's `--set` overrides), the
objective (a trial's value; a run's best monitored value), the metrics of its best epoch, its test
metrics, epochs and the seconds its epochs took. :mod:`graphspec.render.runs` shows the rows.

A run whose state says `running` but whose folder nobody claims (:mod:`graphspec.run.lock`) on this
host is reported as interrupted: its process is gone.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError
from graphspec.experiments.sweep_trial import TRIAL
from graphspec.run.folders import HISTORY, RESULTS, STATE, is_run_dir
from graphspec.run.lock import CLAIM
from graphspec.spec.schema_sweep import auto_mode

STATUSES = ("completed", "pruned", "failed", "running", "interrupted")
_SKIP = {"epoch", "time", "learning_rate"}


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _claimed(folder: Path) -> bool:
    """Whether a live process on this host (or any process on another) holds the folder's claim."""
    path = folder / CLAIM
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        owner = _json(path)
        return isinstance(owner, dict) and owner.get("host") not in (None, socket.gethostname())
    finally:
        os.close(fd)


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _sets_from_argv(argv: Any) -> dict[str, Any]:
    """The `--set KEY=VALUE` overrides on a run's command line."""
    out: dict[str, Any] = {}
    if not isinstance(argv, list):
        return out
    items = [str(a) for a in argv]
    for i, arg in enumerate(items):
        value = None
        if arg in ("--set", "-s") and i + 1 < len(items):
            value = items[i + 1]
        elif arg.startswith("--set="):
            value = arg[len("--set="):]
        if value and "=" in value:
            key, _, raw = value.partition("=")
            out[key] = raw
    return out


def row(folder: Path, name: str) -> dict[str, Any]:
    """The row of one run folder or trial folder."""
    state = _json(folder / STATE) if (folder / STATE).is_file() else None
    state = state if isinstance(state, dict) else {}
    trial = _json(folder / TRIAL)
    trial = trial if isinstance(trial, dict) else None
    history = _json(folder / HISTORY)
    history = [r for r in history if isinstance(r, dict)] if isinstance(history, list) else []
    results = _json(folder / RESULTS)
    best = state.get("best") if isinstance(state.get("best"), dict) else None
    best_row = next((r for r in history if best and r.get("epoch") == best.get("epoch")), None)
    chosen = best_row or (history[-1] if history else {})
    metrics = {k: f for k, v in chosen.items() if k not in _SKIP and (f := _finite(v)) is not None}
    test = results.get("test") if isinstance(results, dict) and isinstance(results.get("test"), dict) else None
    seconds = sum(_finite(r.get("time")) or 0.0 for r in history)

    if trial is not None:
        status = str(trial.get("state", "running"))
        params = dict(trial.get("params") or {})
        objective = _finite(trial.get("value"))
        message = str(trial.get("message") or "")
        best = {"monitor": trial.get("metric"), "mode": trial.get("mode")}
        if not history:
            seconds = _finite(trial.get("seconds")) or 0.0
    else:
        status = str(state.get("status", "running"))
        env = _json(folder / "environment.json")
        params = _sets_from_argv(env.get("argv") if isinstance(env, dict) else None)
        objective = _finite(best.get("value")) if best else None
        message = str(state.get("message") or "")
    if status == "early_stopped":
        status = "completed"
    if status == "running" and not _claimed(folder):
        status = "interrupted"
    if status not in STATUSES:
        status = "failed"
    return {
        "name": name, "path": str(folder), "status": status, "params": params, "objective": objective,
        "monitor": (best or {}).get("monitor") or state.get("monitor"),
        "mode": (best or {}).get("mode") or state.get("mode"),
        "epochs": int(state.get("epochs_completed", len(history)) or 0), "metrics": metrics, "test": test,
        "seconds": round(seconds, 3), "message": message,
    }


def _is_entry(p: Path) -> bool:
    return is_run_dir(p) or (p / TRIAL).is_file()


def find(dirs: list[Path]) -> list[tuple[Path, str]]:
    """Run and trial folders under each of `dirs` (a folder itself, its children, or their children)."""
    found: list[tuple[Path, str]] = []
    for base in dirs:
        if not base.exists():
            raise UsageError(f"{base}: no such folder")
        if not base.is_dir():
            raise UsageError(f"{base}: not a folder (give run folders, sweep folders or a runs root)")
        prefix = f"{base.name}/" if len(dirs) > 1 else ""
        if _is_entry(base):
            found.append((base, base.name))
            continue
        for child in sorted(p for p in base.iterdir() if p.is_dir()):
            if _is_entry(child):
                found.append((child, prefix + child.name))
                continue
            for grand in sorted(p for p in child.iterdir() if p.is_dir()):
                if _is_entry(grand):
                    found.append((grand, f"{prefix}{child.name}/{grand.name}"))
    return found


def sort_value(r: dict[str, Any], metric: str | None) -> float | None:
    if metric is None:
        return _finite(r.get("objective"))
    for where in (r.get("metrics") or {}, r.get("test") or {}):
        if metric in where:
            return _finite(where[metric])
    return _finite(r["objective"]) if metric == r.get("monitor") else None


def collect(dirs: list[Path], sort: str | None = None) -> list[dict[str, Any]]:
    """The rows of every run under `dirs`, best first (by `sort`, else each sweep's objective)."""
    rows = [row(folder, name) for folder, name in find(dirs)]
    if sort is not None and rows and all(sort_value(r, sort) is None for r in rows):
        known = sorted({k for r in rows for k in (r["metrics"] or {})} | {k for r in rows for k in (r["test"] or {})})
        raise UsageError(f"--sort {sort}: no run logs that metric; they log {', '.join(known) or 'nothing'}")
    def key(r: dict[str, Any]) -> tuple[int, float, str]:
        v = sort_value(r, sort)
        mode = auto_mode(sort, "auto") if sort else (r.get("mode") or "min")  # each run's own objective
        return (1, 0.0, r["name"]) if v is None else (0, -v if mode == "max" else v, r["name"])

    return sorted(rows, key=key)
