"""The code stays clean under the type checker and the linter configured in pyproject.toml.

Both run in a few seconds, even mypy without a cache (about 3 s), so they run with every test.
"""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_mypy_is_clean() -> None:
    result = _run("mypy", "graphspec")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "graphspec", "tests", "bench", "tools")
    assert result.returncode == 0, result.stdout + result.stderr
