"""Reading a run folder's `state.json` as untrusted data: every field `--resume`, `evaluate` and
`predict` use is checked before it is used, and a bad one is a located error (GS420).

A run folder may come from a colleague or a cloned repository; its state names files (the
checkpoint) that must stay inside the run folder, and values that are handed to Keras (seed
states, callback counters) that must have the right types.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError

MAX_STATE_BYTES = 16 << 20
STATUSES = ("running", "completed", "early_stopped", "interrupted", "failed")


def error(message: str, state_file: Path, hint: str | None = None, *, line: int = 0, col: int = 0) -> SpecError:
    return SpecError([Diagnostic("GS420", Severity.ERROR, message, Location(str(state_file), line, col), hint)])


def read(state_file: Path) -> dict[str, Any]:
    """The state as a dict, or GS420 naming the field (and for JSON syntax errors, the line)."""
    hint = "the run folder is damaged: train again, or restore state.json from a copy"
    try:
        with open(state_file, "rb") as fh:
            raw = fh.read(MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read the run state: {exc.strerror or exc}", state_file) from None
    if len(raw) > MAX_STATE_BYTES:
        raise error(f"the run state is over {MAX_STATE_BYTES >> 20} MiB", state_file, hint)
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise error("the run state is not UTF-8 text", state_file, hint) from None
    except json.JSONDecodeError as exc:
        raise error(f"the run state is not valid JSON: {exc.msg}", state_file, hint, line=exc.lineno,
                    col=exc.colno) from None
    except RecursionError:
        raise error("the run state is nested too deeply", state_file, hint) from None
    if not isinstance(value, dict):
        raise error(f"the run state is a JSON {type(value).__name__}, not an object", state_file, hint)
    for check in (_status, _counts, _checkpoint, _seed_states, _callbacks, _numbers):
        problem = check(value)
        if problem:
            raise error(f"the run state's {problem}", state_file, hint)
    return value


def checkpoint_path(state: dict[str, Any], run_dir: Path, default: str) -> Path:
    """The checkpoint the state names, kept inside the run folder."""
    path = run_dir / str(state.get("checkpoint") or default)
    if not path.resolve().is_relative_to(run_dir.resolve()):
        raise error(f"the run state's `checkpoint` ({state.get('checkpoint')}) is outside the run folder",
                    run_dir / "state.json")
    return path


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if isinstance(v, str):  # non-finite floats are written as "inf" / "nan"
        try:
            float(v)
        except ValueError:
            return False
        return len(v) < 32
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _status(s: dict[str, Any]) -> str | None:
    if "status" in s and s["status"] not in STATUSES:
        return f"`status` is not one of {', '.join(STATUSES)}"
    for key in ("model", "message"):
        if s.get(key) is not None and not isinstance(s[key], str):
            return f"`{key}` is not a string"
    return None


def _counts(s: dict[str, Any]) -> str | None:
    for key in ("epochs_completed", "epochs"):
        if key in s and not (_is_int(s[key]) and 0 <= s[key] < 10**9):
            return f"`{key}` is not a count of epochs"
    return None


def _checkpoint(s: dict[str, Any]) -> str | None:
    ck = s.get("checkpoint")
    if ck is not None and (not isinstance(ck, str) or Path(ck).is_absolute() or ".." in Path(ck).parts):
        return "`checkpoint` is not a path inside the run folder"
    return None


def _seed_states(s: dict[str, Any]) -> str | None:
    states = s.get("seed_states", [])
    if not isinstance(states, list) or len(states) > 10_000:
        return "`seed_states` is not a list of seed states"
    for st in states:
        if not isinstance(st, list) or len(st) > 16 or not all(_is_int(v) and abs(v) < 2**64 for v in st):
            return "`seed_states` holds an entry that is not a short list of integers"
    return None


_CALLBACK_FIELDS = {
    "early_stopping": {"wait": _is_int, "best": _is_number, "stopped_epoch": _is_int},
    "reduce_lr_on_plateau": {"wait": _is_int, "best": _is_number, "cooldown_counter": _is_int},
}


def _callbacks(s: dict[str, Any]) -> str | None:
    cbs = s.get("callbacks", {})
    if cbs is None:
        return None
    if not isinstance(cbs, dict):
        return "`callbacks` is not an object"
    for name, fields in _CALLBACK_FIELDS.items():
        if name not in cbs:
            continue
        saved = cbs[name]
        if not isinstance(saved, dict):
            return f"`callbacks.{name}` is not an object"
        for field, ok in fields.items():
            if field not in saved or not ok(saved[field]):
                return f"`callbacks.{name}.{field}` is missing or has the wrong type"
        if "best_epoch" in saved and not _is_int(saved["best_epoch"]):
            return f"`callbacks.{name}.best_epoch` is not an integer"
    return None


def _numbers(s: dict[str, Any]) -> str | None:
    for key in ("initial_learning_rate", "learning_rate"):
        v = s.get(key)
        if v is not None and not (_is_number(v) and math.isfinite(float(v))):
            return f"`{key}` is not a finite number"
    best = s.get("best")
    if best is not None and not (isinstance(best, dict) and _is_number(best.get("value"))
                                 and isinstance(best.get("monitor", ""), str)):
        return "`best` is not {monitor, mode, value, epoch}"
    return None
