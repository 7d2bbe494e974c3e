"""CLI output on the example specs is byte-identical to the committed golden files.

The goldens were written before the package was reorganised into spec/, analysis/,
build/, ... so this test pins that the move changed no behaviour. Regenerate on
purpose only: GRAPHSPEC_REGEN_GOLDEN=1 pytest tests/test_golden.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
SPECS = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))

LINT = [(f"{s}.lint.{fmt}", ["lint", "--format", fmt, f"specs/{s}.yaml"]) for s in SPECS for fmt in ("text", "json")]
DOT = [(f"{s}.plot.dot", ["plot", f"specs/{s}.yaml", "--show-shapes", "--show-names", "--expand-nested"])
       for s in SPECS if s not in ("ensemble",)]
SUMMARY = [(f"{s}.summary.{fmt}", ["summary", "--format", fmt, f"specs/{s}.yaml"])
           for s in ("mnist_mlp", "ticket_router", "autoencoder_nested", "shared_embedding") for fmt in ("text", "json")]


def _run(args: list[str], tmp_path: Path) -> str:
    os.chdir(ROOT)
    if args[0] == "plot":
        args = [*args, "-o", str(tmp_path / "out.dot")]
    result = CliRunner().invoke(app, args)
    text = f"exit {result.exit_code}\n{result.output}"
    if args[0] == "plot":
        text += (tmp_path / "out.dot").read_text() if (tmp_path / "out.dot").exists() else ""
    return text.replace(str(tmp_path), "TMP")


def _check(name: str, args: list[str], tmp_path: Path) -> None:
    got = _run(args, tmp_path)
    path = GOLDEN / name
    if os.environ.get("GRAPHSPEC_REGEN_GOLDEN") == "1":
        # Regeneration writes the new text and then skips: asserting the file it just wrote would always pass.
        path.write_text(got)
        pytest.skip(f"regenerated {name}")
    assert got == path.read_text(), f"`graphspec {' '.join(args)}` output changed"


@pytest.mark.parametrize(("name", "args"), LINT + DOT, ids=[n for n, _ in LINT + DOT])
def test_lint_and_plot_golden(name: str, args: list[str], tmp_path: Path) -> None:
    _check(name, args, tmp_path)


@pytest.mark.keras
@pytest.mark.parametrize(("name", "args"), SUMMARY, ids=[n for n, _ in SUMMARY])
def test_summary_golden(name: str, args: list[str], tmp_path: Path) -> None:
    _check(name, args, tmp_path)
