"""The strict-skip gate of tests/conftest.py: an unlisted skip fails a CI run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, unexpected_skips


def test_listed_reasons_pass_and_others_are_reported(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed.txt"
    allowed.write_text("# a comment\n^cannot mount a tmpfs here\n", encoding="utf-8")
    skips = [("t.py::a", "cannot mount a tmpfs here (needs root)"), ("t.py::b", "PyTorch is not installed")]
    assert unexpected_skips(skips, allowed) == [("t.py::b", "PyTorch is not installed")]


def test_the_committed_list_compiles_and_names_no_missing_dependency() -> None:
    allowed = ROOT / "tests" / "allowed_skips.txt"
    assert unexpected_skips([("x", "regenerated golden.txt")], allowed) == []
    for reason in ("PyTorch is not installed", "graphviz is not installed", "JAX is not installed",
                   "no PostgreSQL server"):
        assert unexpected_skips([("x", reason)], allowed) == [("x", reason)]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "two-workers"])
def test_an_unlisted_skip_fails_the_session(tmp_path: Path, workers: list[str]) -> None:
    """A real pytest session, with the project's conftest, over one test that skips for an unlisted reason; in one
    process, and in two workers as `make test` runs it (the skip is reported to the controller, which fails)."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "specs" / "data" / "shapes").mkdir(parents=True)  # conftest makes the example images if missing
    for name in ("conftest.py", "allowed_skips.txt", "__init__.py"):
        (tmp_path / "tests" / name).write_bytes((ROOT / "tests" / name).read_bytes())
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\n\ndef test_skips():\n    pytest.skip('graphviz is not installed')\n", encoding="utf-8")
    env = {**os.environ, "GRAPHSPEC_STRICT_SKIPS": "1"}
    strict = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, "tests"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert strict.returncode == 1, strict.stdout
    assert "graphviz is not installed" in strict.stdout
    env["GRAPHSPEC_STRICT_SKIPS"] = "0"
    lenient = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, "tests"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert lenient.returncode == 0, lenient.stdout
