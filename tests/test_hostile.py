"""Walks tests/hostile/: hostile inputs and faults end in a located message, never in harm.

See tests/hostile/README.md for the case format. Each case runs graphspec in a
subprocess, so that a crash, a hang or a memory blow-up is measured, not suffered.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

HOSTILE = Path(__file__).resolve().parent / "hostile"
SECRET = "API_KEY=sk-live-4f1d9e0c7b2a"
ALWAYS_REJECT = [r"Traceback \(most recent call last\)", re.escape(SECRET), r"GS900"]

# Generators write large or special files that are not worth committing.
GENERATORS: dict[str, Callable[[Path], None]] = {}


def generator(fn: Callable[[Path], None]) -> Callable[[Path], None]:
    GENERATORS[fn.__name__] = fn
    return fn


def _cases() -> list[Any]:
    out = []
    for folder in sorted(p for p in HOSTILE.iterdir() if (p / "case.yaml").is_file()):
        case = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
        marks = [pytest.mark.keras] if case.get("keras") else []
        if case.get("slow"):
            marks.append(pytest.mark.slow)
        out.append(pytest.param(folder, case, id=folder.name, marks=marks))
    return out


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _prepare(folder: Path, tmp: Path) -> tuple[Path, Path]:
    work, outside = tmp / "work", tmp / "outside"
    outside.mkdir()
    (outside / ".env").write_text(SECRET + "\n")
    (outside / "secrets.csv").write_text(f"{SECRET},1\n1,2\n")
    shutil.copytree(folder, work, ignore=shutil.ignore_patterns("case.yaml"))
    for p in work.rglob("*"):
        if p.is_file() and p.suffix in {".yaml", ".yml", ".json", ".py", ".csv", ".txt"}:
            text = p.read_text(encoding="utf-8", errors="surrogateescape")
            if "@OUTSIDE@" in text:
                p.write_text(text.replace("@OUTSIDE@", str(outside)), encoding="utf-8", errors="surrogateescape")
    return work, outside


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, int, float]:
    """Exit code, output, peak RSS (KiB) and seconds of one graphspec run."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "graphspec", *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed: list[bool] = []
    timer = threading.Timer(timeout, lambda: (killed.append(True), proc.kill()))
    timer.start()
    try:
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = output.decode("utf-8", errors="replace")
    if killed:
        pytest.fail(f"still running after {timeout} s:\n{text[-3000:]}")
    return proc.returncode, text, usage.ru_maxrss, time.monotonic() - start


@pytest.mark.parametrize(("folder", "case"), _cases())
def test_hostile_case(folder: Path, case: dict[str, Any], tmp_path: Path) -> None:
    work, outside = _prepare(folder, tmp_path)
    if case.get("generate"):
        GENERATORS[case["generate"]](work)
    canary = tmp_path / "canary"
    before = _digest(outside)
    env = {**os.environ, "GRAPHSPEC_CANARY": str(canary), "NO_COLOR": "1", "COLUMNS": "200"}
    env.update({k: str(v).replace("@OUTSIDE@", str(outside)) for k, v in (case.get("env") or {}).items()})
    argv = [str(a).replace("@OUTSIDE@", str(outside)) for a in case["argv"]]
    code, output, rss_kib, _seconds = _run(argv, work, env, float(case.get("timeout", 120)))
    shown = f"$ graphspec {' '.join(argv)}\n{output[-4000:]}"
    assert code == case["exit"], f"exit {code}, expected {case['exit']}\n{shown}"
    for pattern in case.get("expect", []):
        assert re.search(pattern, output), f"no match for {pattern!r}\n{shown}"
    for pattern in ALWAYS_REJECT + list(case.get("reject", [])):
        assert not re.search(pattern, output), f"unexpected {pattern!r}\n{shown}"
    assert not canary.exists(), f"the payload ran\n{shown}"
    assert _digest(outside) == before, "a file outside the working folder was changed"
    assert rss_kib / 1024 < float(case.get("max_rss_mb", 2500)), f"peak RSS {rss_kib / 1024:.0f} MiB\n{shown}"
