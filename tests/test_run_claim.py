"""One process owns a run folder (issue 16): real trainings racing for one folder, and kill -9 + --resume."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, graphspec_cli

pytestmark = [pytest.mark.keras, pytest.mark.slow]

SPEC = """graphspec: 1
name: tiny
inputs:
  x: {shape: [4]}
nodes:
  hidden: {type: Dense, units: 8, activation: relu}
  out: {type: Dense, units: 2}
models:
  tiny: {outputs: out}
compile: {optimizer: adam, loss: mse}
data:
  source: {kind: synthetic, samples: 32, test_samples: 8}
  batch_size: 8
train: {epochs: %d, seed: 1}
"""


def _racer(spec: str, root: str, rounds: int, barrier: Any, results: Any) -> None:
    from rich.console import Console

    from graphspec.errors import GraphSpecError
    from graphspec.run import trainer

    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    for i in range(rounds):
        barrier.wait()
        try:
            result = trainer.train(spec, run_dir=Path(root) / f"r{i:02d}", console=quiet, live=False)
            results.put((i, os.getpid(), "trained", result.status))
        except GraphSpecError as exc:
            results.put((i, os.getpid(), "refused", str(exc)))


def test_two_trainings_racing_for_one_folder_five_times(tmp_path: Path) -> None:
    """Each round is a real race (both wait at a barrier, then train into one folder). Five rounds, not twenty:
    with the claim's lock or the whole claim taken out, the first round already fails; the subtler race (the
    holder read before the owner wrote its name) was caught by neither count."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC % 1)
    ctx = mp.get_context("spawn")  # never fork a process that has TensorFlow loaded
    barrier, results = ctx.Barrier(2), ctx.Queue()
    rounds = 5
    procs = [ctx.Process(target=_racer, args=(str(spec), str(tmp_path / "runs"), rounds, barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    outcomes: dict[int, list[tuple[int, str, str]]] = {}
    for _ in range(2 * rounds):
        i, pid, what, detail = results.get(timeout=300)
        outcomes.setdefault(i, []).append((pid, what, detail))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for i in range(rounds):
        pair = outcomes[i]
        trained = [(pid, d) for pid, what, d in pair if what == "trained"]
        refused = [d for _pid, what, d in pair if what == "refused"]
        assert len(trained) == 1 and len(refused) == 1, pair
        winner, status = trained[0]
        assert status == "completed"
        folder = tmp_path / "runs" / f"r{i:02d}"
        # Refused at once with who holds it, or (if the winner had already finished) as a folder holding a run.
        assert (f"is in use by pid {winner} on host " in refused[0]) or "already holds a run" in refused[0], refused[0]
        env = json.loads((folder / "environment.json").read_text())
        assert env["pid"] == winner
        history = json.loads((folder / "history.json").read_text())
        assert len(history) == 1
        assert len((folder / "metrics.csv").read_text().strip().splitlines()) == 2  # header + the winner's epoch
        assert json.loads((folder / "state.json").read_text())["status"] == "completed"


def test_a_kill_9ed_owners_claim_is_taken_over_by_the_next_resume(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    # a checkpoint after every epoch: the kill lands after the second is written
    spec.write_text((SPEC % 100000).replace("seed: 1}", "seed: 1, checkpoint: {every: 0}}"))
    run = tmp_path / "run"
    env = {**os.environ, "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "graphspec", "train", str(spec), "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = run / "state.json"
        if state.exists() and json.loads(state.read_text()).get("epochs_completed", 0) >= 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("training never completed two epochs")
    # The process that is killed is a real one; the two commands that meet its claim run in this process.
    second = graphspec_cli(*cmd[3:], "--resume", cwd=ROOT, env={"NO_COLOR": "1"})
    assert second.returncode == 1 and f"is in use by pid {proc.pid} on host" in second.stderr
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    done = json.loads((run / "state.json").read_text())["epochs_completed"]
    resumed = graphspec_cli(*cmd[3:], "--resume", "--epochs", str(done + 2), cwd=ROOT, env={"NO_COLOR": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"taking over the claim on {run} from pid {proc.pid}" in resumed.stderr
    assert json.loads((run / "state.json").read_text())["epochs_completed"] == done + 2
