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
import signal
import sys
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


# A small launcher runs graphspec and reports the peak RSS of that child alone. Measuring the child of
# pytest directly would count pytest's own pages (a forked child starts with its parent's resident set).
_LAUNCHER = (
    "import os, resource, subprocess, sys\n"
    "code = subprocess.call([sys.executable, '-m', 'graphspec', *sys.argv[2:]])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, rss_file: Path) -> tuple[int, str, int]:
    """Exit code, output and peak RSS (KiB) of one graphspec run."""
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(rss_file), *argv], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"still running after {timeout} s:\n{output.decode(errors='replace')[-3000:]}")
    rss = int(rss_file.read_text()) if rss_file.exists() else 0
    return proc.returncode, output.decode("utf-8", errors="replace"), rss


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
    code, output, rss_kib = _run(argv, work, env, float(case.get("timeout", 120)), tmp_path / "rss")
    shown = f"$ graphspec {' '.join(argv)}\n{output[-4000:]}"
    assert code == case["exit"], f"exit {code}, expected {case['exit']}\n{shown}"
    for pattern in case.get("expect", []):
        assert re.search(pattern, output), f"no match for {pattern!r}\n{shown}"
    for pattern in ALWAYS_REJECT + list(case.get("reject", [])):
        assert not re.search(pattern, output), f"unexpected {pattern!r}\n{shown}"
    assert not canary.exists(), f"the payload ran\n{shown}"
    assert _digest(outside) == before, "a file outside the working folder was changed"
    assert rss_kib / 1024 < float(case.get("max_rss_mb", 2500)), f"peak RSS {rss_kib / 1024:.0f} MiB\n{shown}"
