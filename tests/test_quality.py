"""The code stays clean under the type checker and the linter configured in pyproject.toml.

mypy covers graphspec and bench (about 13 s of CPU without a cache: PyTorch and MLflow are not followed).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, Started, started_early


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def start_mypy(folder: Path) -> subprocess.Popen[str]:
    """mypy on graphspec and bench, started (stdout and stderr: files in `folder`); with the session, by
    tests.conftest.EARLY: one process of pure CPU that depends on nothing the tests do."""
    with open(folder / "stdout", "w") as stdout, open(folder / "stderr", "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "mypy", "graphspec", "bench"], cwd=ROOT, stdout=stdout,
                                stderr=stderr, text=True)


def test_mypy_is_clean(early_processes: dict[str, Started], tmp_path: Path) -> None:
    result = started_early(early_processes, "test_quality.py::test_mypy_is_clean", tmp_path, start_mypy).result(300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "graphspec", "tests", "bench", "tools")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_dead_code() -> None:
    """vulture at 80% confidence: names nothing uses (its lower levels flag the shape-rule registry)."""
    result = _run("vulture", "graphspec", "tools/vulture_whitelist.py", "--min-confidence", "80")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold() -> None:
    """The layering of pyproject.toml's [tool.importlinter] contracts (docs/architecture.md)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _modules() -> list[Path]:
    return sorted((ROOT / "graphspec").rglob("*.py"))


def test_every_module_says_what_it_owns_and_fits_a_readers_head() -> None:
    """A docstring on top of every module; at most 600 lines unless the module is generated."""
    problems = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        if text.strip() and not (ast.get_docstring(ast.parse(text)) or "").strip():
            problems.append(f"{rel}: no module docstring")
        head = "\n".join(text.splitlines()[:3]).lower()
        if text.count("\n") > 600 and "generated" not in head:
            problems.append(f"{rel}: {text.count(chr(10))} lines (> 600)")
    assert not problems, "\n".join(problems)


def test_pure_stages_import_without_a_backend() -> None:
    """spec/, analysis/, render/, cli/, experiments/ (but for the modules of sweeps and runs, which train or read
    run folders through run/) and the compiler import without keras, TF or numpy."""
    trains = {"sweep", "sweep_callback", "sweep_plan", "sweep_study", "sweep_trial", "runs", "curves", "report"}
    pure = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in _modules()
            if (p.parent.name in {"spec", "analysis", "render", "cli", "shapes"}
                or (p.parent.name == "experiments" and p.stem not in trains))
            or p.parent.name == "graphspec"]
    pure = [m.removesuffix(".__init__") for m in pure if not m.endswith("__main__")]
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'keras', 'tensorflow', 'jax', 'torch', 'numpy'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {pure!r}:\n"
        "    __import__(m)\n"
        "print(len(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
