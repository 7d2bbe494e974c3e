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
        # a run still training: the epochs trained (its checkpoint, state.json's count, is written once a minute)
        "epochs": len(history) if status == "running" else int(state.get("epochs_completed", len(history)) or 0),
        "metrics": metrics, "test": test,
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


# Every column `runs` shows has one name, the one its header shows and `--sort` takes: a logged metric as
# Keras names it (`accuracy` is training, `val_accuracy` validation, at the best epoch), `test_<metric>`
# for a test metric, `objective`, `epochs`, `seconds`, and a swept parameter by its path. The CSV
# header's `metrics.X` / `test.X` / `params.X` are accepted too.
_FIXED = {"objective": "min", "epochs": "min", "seconds": "min"}


def _column(r: dict[str, Any], name: str) -> Any:
    """The value of the column called `name` in row `r` (None when the row has none)."""
    metrics, test, params = r.get("metrics") or {}, r.get("test") or {}, r.get("params") or {}
    if name in _FIXED:
        return r.get(name)
    for prefix, where in (("metrics.", metrics), ("test.", test), ("test_", test), ("params.", params)):
        if name.startswith(prefix) and name[len(prefix):] in where:
            return where[name[len(prefix):]]
    if name in metrics:
        return metrics[name]
    if name == r.get("monitor"):
        return r.get("objective")
    if name in params:
        return params[name]
    hits = [k for k in params if k.endswith("." + name)]
    return params[hits[0]] if len(hits) == 1 else None


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The names `--sort` takes for these rows, as the table and CSV show them."""
    names = list(_FIXED)
    names += sorted({k for r in rows for k in (r.get("metrics") or {})})
    names += sorted({f"test_{k}" for r in rows for k in (r.get("test") or {})})
    names += sorted({k for r in rows for k in (r.get("params") or {})})
    return names


def sort_value(r: dict[str, Any], column: str | None) -> float | None:
    """The number `r` is ranked by: its objective, or the column `column`."""
    return _finite(r.get("objective") if column is None else _column(r, column))


def _direction(column: str) -> str:
    metric = column.removeprefix("test_").removeprefix("test.").removeprefix("metrics.")
    if column in _FIXED or column.startswith("params.") or "." in metric:  # a parameter: ascending
        return "min"
    return auto_mode(metric, "auto")


def objective(r: dict[str, Any]) -> tuple[str, str]:
    """(metric, min|max) of a row's objective: rows are ranked only among rows that share it."""
    monitor = str(r.get("monitor") or "objective")
    mode = str(r.get("mode") or auto_mode(monitor, "auto"))
    return monitor, "max" if mode == "max" else "min"


def collect(dirs: list[Path], sort: str | None = None) -> list[dict[str, Any]]:
    """The rows of every run under `dirs`, best first.

    By `sort` (any column: see :func:`columns`), all rows in one ranking; else each row by its own
    objective, and rows whose objectives differ (a sweep's `val_accuracy`, higher is better, beside
    plain runs' `val_loss`) are not ranked together: they are grouped by objective, the largest
    group first, each group best first.
    """
    rows = [row(folder, name) for folder, name in find(dirs)]
    if sort is not None and rows and all(sort_value(r, sort) is None for r in rows):
        raise UsageError(f"--sort {sort}: no run has a value in that column; the columns are "
                         f"{', '.join(columns(rows))}")

    def key(r: dict[str, Any]) -> tuple[int, float, str]:
        v = sort_value(r, sort)
        mode = _direction(sort) if sort else objective(r)[1]
        return (1, 0.0, r["name"]) if v is None else (0, -v if mode == "max" else v, r["name"])

    if sort is not None:
        return sorted(rows, key=key)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(objective(r), []).append(r)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), objective(g[0])))
    return [r for g in ordered for r in sorted(g, key=key)]
