"""The lean install: `pip install keras-graphspec` without an extra has no Keras, NumPy or backend, and
every command either works there or exits 2 with one line naming the extra to install.

The environment is made as a user's would be, without the network: a wheel built from this
checkout is installed with `pip install --no-deps` into a fresh venv (`--without-pip`; the test
environment's pip installs into it with `--python`), and the lean dependencies the wheel declares
(pyyaml, pydantic, typer, rich), with what they need in turn, are linked in from the test
environment's own installation, file by file as their records list them. Nothing else is there:
the test checks that keras and numpy cannot be imported in it.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SPECS

LEAN = {"pyyaml", "pydantic", "typer", "rich"}
EXTRA = re.compile(r"pip install 'keras-graphspec\[(tensorflow|jax|torch)\]'")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: set[str]) -> list[metadata.Distribution]:
    """The installed distributions `names` need, transitively (markers evaluated, no extras)."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def _link(dist: metadata.Distribution, site: Path) -> None:
    for file in dist.files or []:
        rel = Path(str(file))
        if rel.parts and rel.parts[0] == "..":  # scripts and data outside site-packages
            continue
        target = site / rel
        source = Path(str(dist.locate_file(file)))
        if source.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, target)


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("lean")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "graphspec", src / "graphspec", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(work / "dist"),
                    str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (work / "dist").glob("keras_graphspec-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(meta_name))
    requires = meta.get_all("Requires-Dist") or []
    base = {_norm(re.split(r"[ <>=!~;\[(]", r, maxsplit=1)[0]) for r in requires if "extra ==" not in r}
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for dist in _closure(base):
        _link(dist, site)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "KERAS_BACKEND"}}
    return {"meta": meta, "base": base, "bin": venv / "bin", "python": python, "env": env, "work": work}


def _run(lean: dict[str, Any], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(lean["bin"] / "graphspec"), *args], capture_output=True, text=True, timeout=120,
                          env=lean["env"], cwd=cwd or lean["work"])


def test_the_distribution_is_keras_graphspec_and_its_base_is_lean(lean: dict[str, Any]) -> None:
    assert lean["meta"]["Name"] == "keras-graphspec"
    assert lean["base"] == LEAN
    extras = set(lean["meta"].get_all("Provides-Extra") or [])
    assert {"tensorflow", "jax", "torch", "all", "dev"} <= extras


def test_the_lean_environment_has_no_keras_numpy_or_backend(lean: dict[str, Any]) -> None:
    code = ("import importlib.util as u, graphspec, yaml, pydantic, typer, rich\n"
            "print([m for m in ('keras', 'numpy', 'tensorflow', 'jax', 'torch', 'sklearn') if u.find_spec(m)])")
    proc = subprocess.run([str(lean["python"]), "-c", code], capture_output=True, text=True, env=lean["env"],
                          cwd=lean["work"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_lint_schema_plot_and_help_work(lean: dict[str, Any], tmp_path: Path) -> None:
    spec = str(SPECS / "mnist_mlp.yaml")
    other = str(SPECS / "digits.yaml")
    for args in (["--help"], ["--version"], ["lint", spec], ["schema"], ["plot", spec, "-o", str(tmp_path / "m.dot")],
                 ["resolve", spec], ["runs", str(tmp_path)], ["train", "--help"], ["save", "--help"]):
        proc = _run(lean, *args)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert (tmp_path / "m.dot").read_text().startswith("digraph")
    proc = _run(lean, "diff", spec, other)  # two different specs: exit 1, a report, no backend
    assert proc.returncode == 1 and proc.stdout and "Traceback" not in proc.stderr, (proc.stdout, proc.stderr)


def _commands() -> set[str]:
    from graphspec.cli.app import app

    return {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}


def test_every_command_that_needs_a_backend_names_the_extra(lean: dict[str, Any], tmp_path: Path) -> None:
    spec = str(SPECS / "mnist_mlp.yaml")
    digits = str(SPECS / "digits.yaml")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(digits, run / "spec.yaml")
    (run / "state.json").write_text('{"backend": "jax", "epochs_completed": 1}')
    needs = {
        "build": ["build", spec],
        "save": ["save", spec, "-o", str(tmp_path / "m.keras")],
        "train": ["train", digits, "--run-dir", str(tmp_path / "new")],
        "evaluate": ["evaluate", str(run)],
        "predict": ["predict", str(run), "-i", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz")],
        "import": ["import", "keras.applications.MobileNet"],
        "launch": ["launch", "--local", "2", "--", "train", digits],
        "sweep": ["sweep", digits, "--dir", str(tmp_path / "sweep")],
    }
    # lsp: the [lsp] extra, no backend; summary: from the static analysis (a model it cannot tabulate needs one)
    works = {"lint", "schema", "plot", "resolve", "diff", "runs", "lsp", "summary"}
    assert set(needs) | works == _commands(), "a new command: say here whether it needs a backend"
    also = [["save", spec, "-o", str(tmp_path / "m.tflite")], ["save", spec, "-o", str(tmp_path / "m.onnx")],
            ["train", str(run), "--resume"], ["build", spec, "--backend", "jax"],
            ["summary", str(SPECS / "vgg19_features.yaml")], ["summary", spec, "--keras"]]
    for args in [*needs.values(), *also]:
        proc = _run(lean, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
        assert EXTRA.search(lines[0]), (args, lines[0])
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "new").exists() and not (tmp_path / "m.keras").exists()
    proc = _run(lean, "summary", spec)  # static: the lean install prints the table
    assert proc.returncode == 0 and "Total params: 55,050" in proc.stdout, proc.stderr
    proc = _run(lean, "save", spec, "-o", str(tmp_path / "m.tflite"))
    assert "TensorFlow" in proc.stderr and "[tensorflow]" in proc.stderr
