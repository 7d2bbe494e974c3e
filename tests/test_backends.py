"""One spec on any Keras backend: backend selection, the same models and the same data order on
TensorFlow and JAX, training on JAX without TensorFlow, predictions of a TensorFlow run on JAX,
resuming on the run's own backend, and the exports' backend requirements.

This process runs Keras on TensorFlow (the default: the first installed backend); the JAX side
of every comparison runs in a subprocess with `--backend jax` / KERAS_BACKEND=jax, since a process
has one Keras backend. "Without TensorFlow" means a subprocess whose imports of tensorflow and
tensorboard fail (a meta-path finder; tests/test_lean_install.py builds a real venv for the lean
install, which has no Keras at all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec.build import backend
from graphspec.errors import UsageError

from . import backend_twin
from .conftest import JAX_CACHE, ROOT, SPECS, Started

LIGHT = ["autoencoder.yaml", "autoencoder_nested.yaml", "custom_layer.yaml", "digits.yaml", "ensemble.yaml",
         "mnist_mlp.yaml", "resnet.yaml", "resnet_cifar10.yaml", "shared_embedding.yaml", "ticket_router.yaml"]
HEAVY = ["resnet50.yaml", "vgg19_features.yaml"]
NO_TF = "tensorflow,tensorboard"

# `graphspec ARGS...` with some top-level modules unimportable: python -c RUNNER BLOCKED ARGS...
# With GRAPHSPEC_TEST_MODULES=FILE in its environment, it writes the top-level modules it imported there at exit.
RUNNER = (
    "import atexit, os, sys\n"
    "if os.environ.get('GRAPHSPEC_TEST_MODULES'):\n"
    "    atexit.register(lambda: open(os.environ['GRAPHSPEC_TEST_MODULES'], 'w').write(\n"
    "        '\\n'.join(sorted({m.split('.')[0] for m in sys.modules}))))\n"
    "blocked = set(filter(None, sys.argv[1].split(',')))\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in blocked:\n"
    "            raise ImportError(f'No module named {name!r}')\n"
    "sys.meta_path.insert(0, Block())\n"
    "sys.argv = ['graphspec'] + sys.argv[2:]\n"
    "from graphspec.cli.app import main\n"
    "main()\n"
)


def _pythonpath() -> str:
    """This checkout first, then whatever the test run was given (a backend installed with --target, say)."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))


def _environment(blocked: str, env: dict[str, str] | None) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if not blocked:  # JAX's compilation cache probes for TensorFlow (etils.epath), which the blocker makes an error
        full.update(JAX_CACHE)
    full["PYTHONPATH"] = _pythonpath()
    full.update(env or {})
    return full


def graphspec(*args: str, blocked: str = "", cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUNNER, blocked, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env=_environment(blocked, env))


def graphspec_started(out: Path, *args: str, blocked: str = "", cwd: Path | None = None,
                      env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`graphspec(...)` started and left running, its stdout and stderr written to out/stdout and out/stderr
    (read them with tests.conftest.Started)."""
    with open(out / "stdout", "w") as stdout, open(out / "stderr", "w") as stderr:
        return subprocess.Popen([sys.executable, "-c", RUNNER, blocked, *args], stdout=stdout, stderr=stderr,
                                text=True, cwd=cwd or ROOT, env=_environment(blocked, env))


needs_jax = pytest.mark.skipif(not backend.is_installed("jax"), reason="JAX is not installed")


# -- choosing a backend -----------------------------------------------------------------------------------
def test_the_choice_follows_flag_then_run_then_environment_then_what_is_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = backend.installed()[0]
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.choose() == first
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backend.choose() == "tensorflow"
    notes: list[str] = []
    if backend.is_installed("jax"):
        assert backend.choose(recorded="jax", note=notes.append) == "jax"
        assert "KERAS_BACKEND=tensorflow is not used" in notes[0]
        assert backend.choose("jax", recorded="tensorflow") == "jax"
    assert backend.choose("TF") == "tensorflow"


@pytest.mark.parametrize("requested, env, message", [
    ("mxnet", None, "--backend: unknown Keras backend 'mxnet'; graphspec runs on tensorflow, jax, torch"),
    (None, "numpy", "KERAS_BACKEND=numpy: unknown Keras backend 'numpy'"),
])
def test_unknown_backends_are_usage_errors(requested: str | None, env: str | None, message: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    if env:
        monkeypatch.setenv("KERAS_BACKEND", env)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        backend.choose(requested)


def test_a_missing_backend_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(backend, "_present", lambda module: module != "torch")
    with pytest.raises(UsageError) as exc:
        backend.choose("torch")
    assert "PyTorch is not installed: pip install 'keras-graphspec[torch]'" in str(exc.value)
    monkeypatch.setattr(backend, "_present", lambda module: module not in {"keras", "numpy"})
    with pytest.raises(UsageError) as exc:
        backend.choose(None, command="train")
    assert str(exc.value) == ("`graphspec train` needs Keras and a backend (TensorFlow, JAX or PyTorch), which are "
                              "not installed: pip install 'keras-graphspec[tensorflow]' (or [jax], [torch])")


@pytest.mark.keras
def test_a_process_keeps_the_backend_keras_loaded_with(keras_clean: Any) -> None:
    here = keras_clean.backend.backend()
    assert backend.select(None) == here and backend.active() == here
    other = next(b for b in backend.BACKENDS if b != here)
    with pytest.raises(UsageError, match=f"Keras is already running on {here} in this process"):
        backend.select(other)


def test_build_backend_is_where_keras_is_loaded() -> None:
    """Keras is imported in graphspec/build/backend.py only, after KERAS_BACKEND is set."""
    offenders = []
    for path in (ROOT / "graphspec").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "backend.py" and ("\nimport keras" in text or "\n    import keras" in text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


# -- the same data order on every backend ----------------------------------------------------------------
@pytest.mark.keras
def test_pydataset_batches_equal_the_tf_data_batches(keras_clean: Any) -> None:
    from graphspec.run import pipeline
    from graphspec.run.data import ModelIO, Port, Split
    from graphspec.run.distribute import Shard

    rng = np.random.default_rng(3)
    split = Split({"a": rng.standard_normal((37, 2)).astype("float32"), "b": np.arange(37)[:, None]},
                  {"y": np.arange(37)})
    io = ModelIO([Port("a", "a", (2,), "float32"), Port("b", "b", (1,), "int64")], [Port("y", "y", (), "int64")])
    ds, per_epoch = pipeline.train_dataset(split, io, batch_size=8, seed=11, first_epoch=2, epochs=5)
    assert per_epoch == 5
    numpy_side = pipeline.TrainBatches(pipeline.model_arrays(split, io), 37, batch_size=8, seed=11, first_epoch=2,
                                       shuffle=True)
    seen = []
    for i, (x, y) in enumerate(ds.take(3 * per_epoch)):
        nx, ny = numpy_side[i]
        np.testing.assert_array_equal(x["a"].numpy(), nx["a"])
        np.testing.assert_array_equal(y.numpy(), ny)
        seen.append(ny)
    epoch_2 = np.concatenate(seen[:per_epoch])
    assert sorted(epoch_2.tolist()) == list(range(37))  # every sample once per epoch
    np.testing.assert_array_equal(epoch_2, pipeline.epoch_order(37, 11, 2))
    assert not np.array_equal(epoch_2, np.concatenate(seen[per_epoch:2 * per_epoch]))  # reshuffled
    evals = pipeline.EvalBatches(pipeline.model_arrays(split, io), 37, batch_size=8)
    assert len(evals) == 5 and evals[4][1].tolist() == [32, 33, 34, 35, 36]
    # Unshuffled, the same batches again, each cut as a view of the arrays (as Keras's own array adapter cuts
    # them), not gathered into a copy; a process of two cuts its half of every global batch.
    ds, _ = pipeline.train_dataset(split, io, batch_size=8, seed=11, first_epoch=0, epochs=2, shuffle=False)
    in_order = pipeline.TrainBatches(pipeline.model_arrays(split, io), 37, batch_size=8, seed=11, first_epoch=0,
                                     shuffle=False)
    for i, (x, y) in enumerate(ds.take(2 * per_epoch)):
        nx, ny = in_order[i]
        np.testing.assert_array_equal(x["a"].numpy(), nx["a"])
        np.testing.assert_array_equal(y.numpy(), ny)
        assert np.shares_memory(nx["a"], split.inputs["a"]) and np.shares_memory(ny, split.outputs["y"])
    assert np.shares_memory(evals[1][0]["a"], split.inputs["a"])
    half = pipeline.TrainBatches(pipeline.model_arrays(split, io), 37, batch_size=8, seed=11, first_epoch=0,
                                 shuffle=False, shard=Shard(index=1, count=2, replicas=2))
    assert [half[i][1].tolist() for i in range(half.steps)] == [[4, 5, 6, 7], [12, 13, 14, 15], [20, 21, 22, 23],
                                                                 [28, 29, 30, 31], [34, 35]]


# -- the same models on TensorFlow and JAX -------------------------------------------------------------------
OTHERS = [pytest.param(b, marks=pytest.mark.skipif(not backend.is_installed(b), reason=f"{b} is not installed"))
          for b in ("jax", "torch")]


def _twin_started(folder: Path, out: Path, other: str, cache: bool) -> subprocess.Popen[str]:
    """`python tests/backend_twin.py FOLDER` on backend `other`, started; stdout and stderr go to out/."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(KERAS_BACKEND=other, PYTHONPATH=_pythonpath())
    if other == "jax":  # one forward pass per model, op by op: compiling is the cost, XLA's optimising passes most of
        # it (the light specs: 9.0 -> 7.2 CPU-s on 2 shared cores); unoptimised code computes the same values.
        if cache:
            env.update(JAX_CACHE)
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0 " \
                           "--xla_llvm_disable_expensive_passes=true".strip()
    with open(out / "stdout", "w") as stdout, open(out / "stderr", "w") as stderr:
        return subprocess.Popen([sys.executable, str(ROOT / "tests" / "backend_twin.py"), str(folder)],
                                stdout=stdout, stderr=stderr, text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def twins(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Started]]:
    """The twin checks of this run's selected tests ("light-jax", "light-torch", "heavy-jax"), all started here:
    the specs built and dumped in this process (the light ones once for every backend), then each backend's
    check in a process of its own, side by side (this process only waits for them, and each keeps about one
    core busy), where one test after another used to start one and wait. The same checks; only when they run
    changes. The heavy JAX check leaves the session's compilation cache alone: the cache writes its files
    without a lock, and the light JAX check fills it at the same time."""
    wanted = []
    for item in request.session.items:
        function = getattr(item, "function", None)
        if function is test_example_specs_build_alike_on_tensorflow_and_another_backend:
            wanted.append(f"light-{item.callspec.params['other']}")
        elif function is test_large_example_specs_build_alike_on_tensorflow_and_jax:
            wanted.append("heavy-jax")
    started: dict[str, Started] = {}
    try:
        for group, specs in (("heavy", HEAVY), ("light", LIGHT)):  # the longest check first
            others = [o for o in ("jax", "torch") if f"{group}-{o}" in wanted and backend.is_installed(o)]
            if not others:
                continue
            folder = tmp_path_factory.mktemp(group)
            backend_twin.dump(specs, folder)
            for other in others:
                out = tmp_path_factory.mktemp(f"{group}-{other}")
                started[f"{group}-{other}"] = Started(out, _twin_started(folder, out, other, cache=group == "light"))
        yield started
    finally:
        for process in started.values():  # a test that did not wait for its check (it failed, the run stopped)
            if process.proc.poll() is None:
                process.proc.kill()
                process.proc.wait()


def _twin(twins: dict[str, Started], key: str) -> dict[str, Any]:
    """What the started check `key` compared (its one JSON line), once it passed."""
    proc = twins[key].result(timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == key.split("-")[1]
    return result


@pytest.mark.keras
@pytest.mark.parametrize("other", OTHERS)
def test_example_specs_build_alike_on_tensorflow_and_another_backend(other: str, twins: dict[str, Started]) -> None:
    """Same parameter count, and with the same weights the same outputs (atol 1e-5): JAX, and PyTorch if installed."""
    result = _twin(twins, f"light-{other}")
    assert {k.split(".")[0] + ".yaml" for k in result["models"]} == set(LIGHT)
    assert result["models"]["ticket_router.ticket_router"]["params"] == 1392097


@pytest.mark.keras
@pytest.mark.slow
@needs_jax
def test_large_example_specs_build_alike_on_tensorflow_and_jax(twins: dict[str, Started]) -> None:
    result = _twin(twins, "heavy-jax")
    assert result["models"]["resnet50.resnet50"]["params"] == 25636712
    assert set(LIGHT) | set(HEAVY) == {p.name for p in SPECS.glob("*.yaml")}, "a new example spec: add it above"


@pytest.mark.keras
def test_training_without_the_tensorboard_package_notes_it_and_trains(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorFlow 2.21 installs without TensorBoard: `train.tensorboard` then costs a note, not the run."""
    import io

    from rich.console import Console

    from graphspec.run import trainer

    sets = ["data.source={kind: synthetic, samples: 64, test_samples: 16}", "train.epochs=1", "train.seed=1",
            "train.tensorboard=true"]
    real = backend.importable
    monkeypatch.setattr(backend, "importable", lambda m: m != "tensorboard" and real(m))
    out = io.StringIO()
    result = trainer.train(SPECS / "mnist_mlp.yaml", sets=sets, run_dir=tmp_path / "run",
                           console=Console(file=out, width=200), live=False)
    assert result.exit_code == 0, result.message
    assert ("note: no TensorBoard logs: Keras writes them with TensorFlow and the tensorboard package, and "
            "tensorboard is not installed (pip install tensorboard;") in out.getvalue()
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_devices_reports_a_backend_that_cannot_list_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend error listing devices is raised, not turned into an empty list a run folder would record."""
    import types

    from graphspec.build import backend

    def broken() -> list[object]:
        raise RuntimeError("CUDA driver version is insufficient")

    fake = types.SimpleNamespace(devices=broken)
    monkeypatch.setattr(backend, "active", lambda: "jax")
    monkeypatch.setitem(sys.modules, "jax", fake)
    with pytest.raises(RuntimeError, match="CUDA driver"):
        backend.devices()
