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


def _start(folder: Path, *command: str) -> subprocess.Popen[str]:
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen(list(command), cwd=ROOT, stdout=out, stderr=err, text=True)


# The checkers read only the source tree: tests.conftest.EARLY starts them with the session (mypy alone is about
# 15 s of one core), and their tests read what they said.
def start_mypy(folder: Path) -> subprocess.Popen[str]:
    return _start(folder, sys.executable, "-m", "mypy", "graphspec", "bench")


def start_vulture(folder: Path) -> subprocess.Popen[str]:
    return _start(folder, sys.executable, "-m", "vulture", "graphspec", "tools/vulture_whitelist.py",
                  "--min-confidence", "80")


def start_import_linter(folder: Path) -> subprocess.Popen[str]:
    return _start(folder, str(Path(sys.executable).with_name("lint-imports")))


def test_mypy_is_clean(early_processes: dict[str, Started], tmp_path: Path) -> None:
    result = started_early(early_processes, "test_quality.py::test_mypy_is_clean", tmp_path, start_mypy).result(300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "graphspec", "tests", "bench", "tools")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_dead_code(early_processes: dict[str, Started], tmp_path: Path) -> None:
    """vulture at 80% confidence: names nothing uses (its lower levels flag the shape-rule registry)."""
    result = started_early(early_processes, "test_quality.py::test_no_dead_code", tmp_path, start_vulture).result()
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold(early_processes: dict[str, Started], tmp_path: Path) -> None:
    """The layering of pyproject.toml's [tool.importlinter] contracts (docs/architecture.md)."""
    result = started_early(early_processes, "test_quality.py::test_import_contracts_hold", tmp_path,
                           start_import_linter).result()
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
