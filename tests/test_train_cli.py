"""`graphspec train / evaluate / predict / save` on the command line: every example spec trains,
the README's digits command, the keras.datasets specs offline, errors and exit codes, and the
process-level guarantees: SIGINT/SIGTERM then --resume equals an uninterrupted run, and kill -9 at
any moment of a save never leaves a file that fails to load."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app

from .conftest import PLUGIN, SPECS
from .test_data import offline_keras_datasets  # noqa: F401  (a fixture)

pytestmark = pytest.mark.keras

runner = CliRunner()

SYNTHETIC = ["--set", "data.source={kind: synthetic, samples: 16, test_samples: 8}", "--set", "data.batch_size=8",
             "--set", "data.validation_split=0.25", "--epochs", "1"]
# Specs that need more than a data source to train, or are too big for a smoke run on 2 cores.
EXTRA: dict[str, list[str]] = {
    "autoencoder.yaml": ["--model", "autoencoder"],
    "autoencoder_nested.yaml": ["--model", "autoencoder"],
    "custom_layer.yaml": ["--plugin", str(PLUGIN)],
    "shared_embedding.yaml": ["--set", "compile={optimizer: adam, loss: mse}"],
    "vgg19_features.yaml": ["--set", "compile={optimizer: sgd, loss: mse}", "--set", "nodes.vgg19.include_top=false",
                            "--set", "nodes.vgg19.input_shape=[32, 32, 3]"],
    "resnet50.yaml": ["--set", "compile={optimizer: sgd, loss: categorical_crossentropy}",
                      "--set", "inputs.image.shape=[64, 64, 3]",
                      # compute scales with the image: 64x64 is 316,817,408 MACs (the spec states 224x224's)
                      "--set", "models.resnet50.expect.macs=316817408"],
}
HEAVY = {"vgg19_features.yaml", "resnet50.yaml"}


def spec_params() -> list[Any]:
    return [pytest.param(p.name, marks=[pytest.mark.slow] if p.name in HEAVY else [], id=p.stem)
            for p in sorted(SPECS.glob("*.yaml"))]


def invoke(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.mark.parametrize("name", spec_params())
def test_every_spec_trains_one_epoch_on_synthetic_data(name: str, tmp_path: Path) -> None:
    result = invoke(["train", str(SPECS / name), "--run-dir", str(tmp_path / "run"), *SYNTHETIC,
                     *EXTRA.get(name, [])])
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "completed" and state["epochs_completed"] == 1
    assert (tmp_path / "run" / "best.keras").is_file() and (tmp_path / "run" / "last.keras").is_file()
    assert "test" in result.stdout and "loss" in result.stdout  # the final table


def test_ticket_router_trains_with_its_two_losses(tmp_path: Path) -> None:
    result = invoke(["train", str(SPECS / "ticket_router.yaml"), "--run-dir", str(tmp_path / "r"), *SYNTHETIC])
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    row = history[0]
    assert {"priority_loss", "department_loss", "val_priority_loss", "val_department_loss"} <= set(row)
    # loss = 1.0 * priority_loss + 0.2 * department_loss (the spec's loss weights); the validation
    # set is one batch, so the relation is exact there
    assert row["val_loss"] == pytest.approx(row["val_priority_loss"] + 0.2 * row["val_department_loss"], rel=1e-5)


@pytest.mark.slow
def test_readme_digits_command_reaches_97_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["train", str(SPECS / "digits.yaml")])  # how long it takes is a bench's (bench_train), not a test's
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs" / "digits").iterdir()
    test = json.loads((run_dir / "results.json").read_text())["test"]
    assert test["accuracy"] >= 0.97, test
    evaluated = invoke(["evaluate", str(SPECS / "digits.yaml"), "--format", "json"])  # the latest run
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout) == pytest.approx(test)


def test_mnist_and_cifar_specs_use_the_keras_loaders(offline_keras_datasets: Path, tmp_path: Path) -> None:  # noqa: F811
    for spec, extra in (("mnist_mlp.yaml", []), ("resnet.yaml", ["--set", "data.batch_size=8"])):
        result = invoke(["train", str(SPECS / spec), "--run-dir", str(tmp_path / spec), "--epochs", "1",
                         "--set", "data.max_samples=16", *extra])
        assert result.exit_code == 0, result.output
        state = json.loads((tmp_path / spec / "state.json").read_text())
        assert state["status"] == "completed"


def test_evaluate_predict_and_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = SPECS / "mnist_mlp.yaml"
    train = invoke(["train", str(spec), "--epochs", "1", "--seed", "3", "--set", "data.source=synthetic"])
    assert train.exit_code == 0, train.output
    (run_dir,) = (tmp_path / "runs" / "mnist_mlp").iterdir()
    result = invoke(["evaluate", str(run_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"loss", "accuracy"} and all(isinstance(v, float) for v in metrics.values())
    text = invoke(["evaluate", str(spec), "--weights", str(run_dir / "last.keras"), "--set", "data.source=synthetic"])
    assert text.exit_code == 0 and text.stdout.splitlines()[0].split()[0] in metrics
    # predict: raw 28x28 images go through the spec's transforms (reshape, cast, divide)
    np.savez(tmp_path / "in.npz", img=np.full((3, 28, 28), 255, np.uint8))
    result = invoke(["predict", str(run_dir), "--input", str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "o.npz") as out:
        assert out["predictions"].shape == (3, 10)
    np.savez(tmp_path / "flat.npz", img=np.ones((2, 784), np.float32))
    result = invoke(["predict", str(run_dir), "-i", str(tmp_path / "flat.npz"), "-o", str(tmp_path / "o2.npz"),
                     "--no-transforms"])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "o.npz") as a, np.load(tmp_path / "o2.npz") as b:
        assert np.allclose(a["predictions"][0], b["predictions"][0], atol=1e-5)  # 255/255 == 1.0
    for out_name, word in (("m.keras", ""), ("m.tflite", "(tflite)"), ("served", "(savedmodel)")):
        result = invoke(["save", str(spec), "-o", str(tmp_path / out_name), "--weights", str(run_dir / "best.keras")])
        assert result.exit_code == 0, result.output
        assert word in result.stdout
    from graphspec.build.backend import keras

    saved = keras.saving.load_model(tmp_path / "m.keras")
    best = keras.saving.load_model(run_dir / "best.keras")
    assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), best.get_weights()))
    assert (tmp_path / "served" / "saved_model.pb").is_file()


def test_errors_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 28, 28), np.uint8), y=np.zeros(8, np.int64))
    spec = tmp_path / "m.yaml"
    spec.write_text((SPECS / "mnist_mlp.yaml").read_text().split("data:")[0]
                    + "data:\n  source: {kind: npz, train: d.npz}\n")
    result = invoke(["train", str(spec), "--epochs", "1"])
    assert result.exit_code == 1
    assert "error[GS411]" in result.stderr and "(28, 28)" in result.stderr and "(784,)" in result.stderr
    assert "hint: add `{reshape: [784]}`" in result.stderr and not (tmp_path / "runs").exists()
    result = invoke(["train", str(SPECS / "autoencoder.yaml")])
    assert result.exit_code == 1 and "GS410" in result.stderr and "no `data` section" in result.stderr
    result = invoke(["train", str(SPECS / "autoencoder.yaml"), "--set", "data.source=synthetic"])
    assert result.exit_code == 2 and "--model" in result.stderr  # two models: which one?
    result = invoke(["train", str(spec), "--set", "data.batch_size=0"])
    assert result.exit_code == 1 and "--set #1 is `data.batch_size=0`" in result.stderr and "GS103" in result.stderr
    result = invoke(["train", str(spec), "--resume"])
    assert result.exit_code == 2 and "no run of" in result.stderr
    result = invoke(["evaluate", str(spec)])
    assert result.exit_code == 2 and "--weights" in result.stderr
    result = invoke(["evaluate", str(spec), "--format", "yaml"])
    assert result.exit_code == 2
    result = invoke(["save", str(spec), "-o", str(tmp_path / "x"), "--format", "pmml"])
    assert result.exit_code == 2 and "--format" in result.stderr


def test_diverging_run_exits_non_zero(tmp_path: Path) -> None:
    result = invoke(["train", str(SPECS / "digits.yaml"), "--run-dir", str(tmp_path / "r"), "--epochs", "3",
                     "--set", "compile.optimizer={type: SGD, learning_rate: 1.0e+12}"])
    assert result.exit_code == 1
    assert "non-finite" in result.stderr and "last.keras" in result.stderr
    from graphspec.build.backend import keras

    keras.saving.load_model(tmp_path / "r" / "last.keras")


# -- process-level: signals and kill -9 ----------------------------------------------------------------
SLOW_SPEC = """\
graphspec: 1
name: slowish
inputs:
  x: {shape: [32]}
nodes:
  h1: {type: Dense, units: 256, activation: relu}
  drop: {type: Dropout, rate: 0.2}
  h2: {type: Dense, units: 256, activation: relu}
  out: {type: Dense, units: 4}
compile:
  optimizer: adam
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
data:
  source: {kind: synthetic, samples: %(samples)d, test_samples: 64}
  validation_split: 0.1
  batch_size: 16
train:
  epochs: %(epochs)d
  seed: 11
"""


def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", KERAS_HOME=str(tmp_path / "kh"))
    e.pop("GRAPHSPEC_TF_LOGS", None)
    return e


def start(tmp_path: Path, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "graphspec", *args], cwd=tmp_path, env=env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate: Any, proc: subprocess.Popen[str], timeout: float = 120.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(step)
    return False


def epochs_in(folder: Path) -> int:
    try:
        return len(json.loads((folder / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def _interrupt_after_two_epochs(proc: subprocess.Popen[str], folder: Path, sig: int) -> str:
    """Wait until the run in `folder` has 2 epochs, send `sig`, and return the process's stderr."""
    try:
        if not wait_for(lambda: epochs_in(folder) >= 2, proc):
            return "never reached 2 epochs: " + proc.communicate()[1]
        proc.send_signal(sig)
        return proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_sigint_and_sigterm_then_resume_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    """A process per signal, both started at once (each signalled by a thread of its own after 2 epochs of
    10), while this process trains the uninterrupted run they are compared with; then each is resumed here."""
    from concurrent.futures import ThreadPoolExecutor

    spec = tmp_path / "s.yaml"
    spec.write_text(SLOW_SPEC % {"samples": 800, "epochs": 10})  # 10 epochs of 50 steps: time to signal
    signals = {signal.SIGINT: (130, tmp_path / "sigint"), signal.SIGTERM: (143, tmp_path / "sigterm")}
    procs = {sig: start(tmp_path, ["train", str(spec), "--run-dir", str(folder)])
             for sig, (_, folder) in signals.items()}
    with ThreadPoolExecutor(max_workers=len(procs)) as pool:
        stderrs = {sig: pool.submit(_interrupt_after_two_epochs, proc, signals[sig][1], sig)
                   for sig, proc in procs.items()}
        reference = invoke(["train", str(spec), "--run-dir", str(tmp_path / "ref")])
        assert reference.exit_code == 0, reference.output
        stderr_of = {sig: future.result() for sig, future in stderrs.items()}
    ref = json.loads((tmp_path / "ref" / "history.json").read_text())
    ra = json.loads((tmp_path / "ref" / "results.json").read_text())["test"]
    for sig, (code, folder) in signals.items():
        stderr = stderr_of[sig]
        assert procs[sig].returncode == code, stderr
        state = json.loads((folder / "state.json").read_text())
        assert state["status"] == "interrupted" and 2 <= state["epochs_completed"] < 10
        assert "--resume" in stderr
        assert epochs_in(folder) == state["epochs_completed"]
        resumed = invoke(["train", str(spec), "--resume", "--run-dir", str(folder)])
        assert resumed.exit_code == 0, resumed.output
        got = json.loads((folder / "history.json").read_text())
        assert [r["epoch"] for r in got] == list(range(1, 11))
        for a, b in zip(ref, got):
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (sig, a["epoch"], key)
        rb = json.loads((folder / "results.json").read_text())["test"]
        assert ra == pytest.approx(rb, rel=1e-5, abs=1e-6)


def assert_run_loads(folder: Path) -> int:
    """Every visible artifact of a run folder parses or loads; the state names an existing checkpoint."""
    from graphspec.build.backend import keras

    state = json.loads((folder / "state.json").read_text())
    assert (folder / state["checkpoint"]).is_file()
    json.loads((folder / "history.json").read_text())
    (folder / "metrics.csv").read_text().splitlines()
    for path in [*folder.glob("*.keras"), *(folder / "checkpoints").glob("*.keras")]:
        if not path.name.startswith("."):  # a killed save's temporary file is not an artifact
            keras.saving.load_model(path)
    return int(state["epochs_completed"])


@pytest.mark.slow
def test_kill_9_during_checkpoints_never_leaves_an_unloadable_file(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    # a checkpoint after every epoch: the kills land inside checkpoint writes
    spec.write_text((SLOW_SPEC % {"samples": 64, "epochs": 400}).replace("  seed: 11\n", "  seed: 11\n  checkpoint: {every: 0}\n"))
    folder = tmp_path / "run"
    rng = random.Random(0)
    done = -1
    for attempt in range(3):
        args = ["train", str(spec), "--run-dir", str(folder)] + (["--resume"] if attempt else [])
        proc = start(tmp_path, args)
        try:
            saving = lambda done=done: ((folder / "state.json").exists() and epochs_in(folder) > done  # noqa: E731
                              and any((folder / "checkpoints").glob(".epoch-*")))
            assert wait_for(saving, proc, step=0.001), proc.communicate()[1]
            time.sleep(rng.uniform(0.0, 0.03))
            proc.kill()
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        done = assert_run_loads(folder)
    resumed = invoke(["train", str(spec), "--resume", "--run-dir", str(folder), "--epochs", str(done + 1)])
    assert resumed.exit_code == 0, resumed.output
    assert assert_run_loads(folder) == done + 1
    assert not list(folder.rglob(".*tmp*"))


def _kill_9_during_save(folder: Path, spec: Path, delay: float) -> int:
    """Start `save spec -o folder/model.keras`, kill -9 it `delay` s after its temporary file appears; its
    return code."""
    proc = start(folder, ["save", str(spec), "-o", str(folder / "model.keras")])
    try:
        assert wait_for(lambda: any(folder.glob(".model.keras.*")), proc, step=0.001), proc.communicate()
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode


@pytest.mark.slow
def test_kill_9_during_save_keeps_the_old_file(tmp_path: Path) -> None:
    """A save killed at once, and one killed 20 ms into writing, each over a copy of the same saved model: both
    processes at once (threads of their own), each folder's file loaded after."""
    from concurrent.futures import ThreadPoolExecutor

    from graphspec.build.backend import keras

    spec = SPECS / "ticket_router.yaml"
    saved = tmp_path / "model.keras"
    assert invoke(["save", str(spec), "-o", str(saved)]).exit_code == 0
    delays = {tmp_path / "now": 0.0, tmp_path / "later": 0.02}
    for folder in delays:
        folder.mkdir()
        shutil.copyfile(saved, folder / "model.keras")
    with ThreadPoolExecutor(max_workers=len(delays)) as pool:
        codes = {folder: pool.submit(_kill_9_during_save, folder, spec, delay) for folder, delay in delays.items()}
        for folder, code in codes.items():
            assert code.result() == -signal.SIGKILL
            keras.saving.load_model(folder / "model.keras")  # the old file, or the complete new one: never partial
