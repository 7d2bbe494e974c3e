"""Run folders and faults end to end with Keras (issue 15): a run's plugins are pinned by content and
never imported for it; a failure inside `fit` is a located error that marks the run failed, which
`evaluate` then refuses; a genuinely full file system (a small tmpfs, where this machine allows
mounting one) stops training with the last good checkpoint intact.

Injected faults (ENOSPC, EIO) and read-only folders are cases of tests/hostile/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app

from .conftest import PLUGIN, SPECS

pytestmark = pytest.mark.keras

runner = CliRunner()


def invoke(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_a_runs_plugins_are_pinned_and_never_imported_for_it(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # away from this repository's [tool.graphspec] plugins
    plugin = tmp_path / "custom_dense.py"
    shutil.copy(PLUGIN, plugin)
    spec = tmp_path / "custom.yaml"
    spec.write_text((SPECS / "custom_layer.yaml").read_text()
                    + "data:\n  source: {kind: synthetic, samples: 8, test_samples: 4}\n  batch_size: 4\n"
                    + "train: {epochs: 1, seed: 1}\n")
    trained = invoke(["train", str(spec), "--run-dir", "run", "--plugin", str(plugin)])
    assert trained.exit_code == 0, trained.output
    (record,) = json.loads((tmp_path / "run" / "state.json").read_text())["plugins"]
    assert record["path"] == str(plugin.resolve()) and len(record["sha256"]) == 64

    missing = invoke(["evaluate", "run"])
    assert missing.exit_code == 1 and "error[GS421]" in missing.stderr, missing.output
    assert "custom_dense.py" in missing.stderr and "--plugin" in missing.stderr
    resumed = invoke(["train", "run", "--resume", "--epochs", "2"])
    assert resumed.exit_code == 1 and "error[GS421]" in resumed.stderr, resumed.output
    assert invoke(["evaluate", "run", "--plugin", str(plugin)]).exit_code == 0

    changed = tmp_path / "changed" / "custom_dense.py"
    changed.parent.mkdir()
    changed.write_text(plugin.read_text() + "\nEXTRA = 1\n")
    other = invoke(["evaluate", "run", "--plugin", str(changed)])
    assert other.exit_code == 1 and "has different content" in other.stderr, other.output


EMBEDDING = """\
graphspec: 1
name: emb
inputs:
  ids: {shape: [3], dtype: int32}
nodes:
  e: {type: Embedding, input_dim: 5, output_dim: 2}
  f: {type: Flatten}
  out: {type: Dense, units: 1}
models:
  emb: {outputs: out}
compile: {optimizer: adam, loss: mse}
data:
  source: {kind: npz, train: d.npz}
  batch_size: 4
  test_split: 0.25
train: {epochs: 2, seed: 1}
"""


def test_a_failure_inside_fit_is_located_marks_the_run_failed_and_evaluate_refuses_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids past an Embedding's input_dim: only the lookup inside fit finds them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emb.yaml").write_text(EMBEDDING)
    np.savez(tmp_path / "d.npz", ids=np.full((16, 3), 9, np.int32), y=np.zeros(16, np.float32))
    result = invoke(["train", "emb.yaml", "--run-dir", "run"])
    assert result.exit_code == 1, result.output
    assert "emb.yaml:6:3: error[GS423]" in result.stderr and "(in layer `e`)" in result.stderr  # at node `e`
    assert "is not in [0, 5)" in result.stderr and "Traceback" not in result.output
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "failed" and "GS423" not in state["message"] and "[0, 5)" in state["message"]
    refused = invoke(["evaluate", "run"])
    assert refused.exit_code == 1 and "error[GS422]: the run failed" in refused.stderr
    assert "--weights run/last.keras" in refused.stderr


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.slow
def test_a_full_file_system_stops_training_with_the_last_checkpoint_intact(tmp_path: Path) -> None:
    """A real ENOSPC: a 100 KiB tmpfs with room for the run's first files and one checkpoint."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "100k"):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        (disk / "filler").write_bytes(b"\0" * 20_000)  # room for the first files (TensorBoard graph and HParams too)
        spec = tmp_path / "tiny.yaml"
        spec.write_text(EMBEDDING.replace("input_dim: 5", "input_dim: 10").replace("epochs: 2", "epochs: 30")
                        .replace("{kind: npz, train: d.npz}", "{kind: synthetic, samples: 16, test_samples: 4}"))
        result = invoke(["train", str(spec), "--run-dir", str(disk / "run")])
        assert result.exit_code == 1, result.output
        assert "error[GS430]: cannot write" in result.stderr and "No space left on device" in result.stderr
        run = disk / "run"
        state = json.loads((run / "state.json").read_text())  # complete JSON: written atomically or not at all
        assert state["status"] in {"failed", "running"}
        if state["status"] == "running":  # too full even for the small state file: the error says so
            assert "could not be marked failed" in result.stderr
        from graphspec.build.backend import keras

        checkpoint = run / state["checkpoint"]
        keras.saving.load_model(checkpoint)
        assert (run / "last.keras").read_bytes() == checkpoint.read_bytes()
        assert not list(run.rglob(".*.tmp*"))
        # nothing of the failed run stays open in this process (TensorBoard's writers included)
        assert not [t for fd in os.listdir("/proc/self/fd") if str(disk) in (t := _target(fd))]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed since listed
        return ""
