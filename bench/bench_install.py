"""Cold install of the lean package against the full one: wall time, CPU time and size on disk.

Each install is what a user (or pre-commit's `language: python` hook) does on a new machine: a
fresh venv, then `pip install` of this checkout, with pip's own configuration (index, local wheel
folder, cache) as this machine has it. Sizes are of the whole venv (`du`), so they include pip
itself. Variants:

- lean: `pip install .` (pyyaml, pydantic, typer, rich): lint, schema, plot, --help;
- tensorflow: `pip install '.[tensorflow]'` (the former default install);
- jax: `pip install '.[jax]'`.

    .venv/bin/python bench/bench_install.py [--variants lean,tensorflow,jax] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = {"lean": "", "tensorflow": "[tensorflow]", "jax": "[jax]", "torch": "[torch]"}


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def install(variant: str, work: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, bytes) of a venv with this checkout installed as `variant`."""
    src = work / "src"  # a copy, so that the build leaves nothing in the checkout
    if not src.exists():
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, src / name)
        shutil.copytree(ROOT / "graphspec", src / "graphspec", ignore=shutil.ignore_patterns("__pycache__"))
    venv = work / f"venv-{variant}"
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                           f"{src}{EXTRAS[variant]}"], capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{variant}: pip failed\n{proc.stderr[-2000:]}")
    check = subprocess.run([str(venv / "bin" / "graphspec"), "lint", str(ROOT / "specs" / "mnist_mlp.yaml")],
                           capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                if k != "PYTHONPATH"})
    if check.returncode != 0:
        raise SystemExit(f"{variant}: graphspec lint failed in the new venv\n{check.stderr[-2000:]}")
    return wall, cpu, _size(venv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="lean,tensorflow")
    parser.add_argument("--keep", default=None, help="build the venvs here and keep them")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_install_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for variant in variants:
            wall, cpu, size = install(variant, work)
            rows.append((variant, wall, cpu, size))
            print(f"{variant:<11} {wall:7.1f} s wall  {cpu:7.1f} s CPU  {size / 2**20:8.0f} MiB", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if rows and rows[0][0] == "lean":
        for variant, wall, _, size in rows[1:]:
            print(f"lean against {variant}: {wall / rows[0][1]:.1f}x faster, {size / rows[0][3]:.0f}x smaller")
    from figures import record  # the summary table of `make bench`

    for variant, wall, _, size in rows:
        record("install", f"{variant}: cold install, wall (s)", wall)
        record("install", f"{variant}: venv size (MiB)", size / 2**20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
