"""Start-up: wall time of whole commands, graphspec against the hand-written script doing the same work.

- `graphspec evaluate RUN` against a script that imports Keras, loads the run's best model and evaluates the
  same test arrays (goal: ratio <= 1.15);
- `graphspec summary specs/resnet50.yaml` (static, no backend; goal < 1 s) against `summary --keras`, which
  builds the model, and against a script that imports Keras and builds ResNet50 to print its summary;
- `graphspec lint specs/` and `graphspec --help`, alone (no Keras: their figure is the figure);
- a wrong input, time to the error (goal < 1 s: every check that needs no backend runs before one is
  imported): `predict RUN --input photo.png` for a model fed arrays, and `train` on an .npz without the
  array the model needs (GS411), each alone.

Each command is a fresh process (what a user waits for), the sides alternate in every round, and a ratio is
the median of the rounds' ratios.

    .venv/bin/python bench/bench_startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GRAPHSPEC = [PY, "-m", "graphspec"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}

SPEC = """graphspec: 1
name: digits_mlp
inputs:
  x: [64]
nodes:
  h: {type: Dense, units: 64, activation: relu}
  y: {type: Dense, units: 10}
models:
  m: {inputs: x, outputs: y}
compile:
  optimizer: adam
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
data:
  source: {kind: npz, train: train.npz, test: test.npz}
  inputs: {x: x}
  outputs: {y: y}
  batch_size: 64
train:
  epochs: 1
  seed: 0
"""

HAND_EVALUATE = """
import numpy as np, keras
model = keras.models.load_model({model!r})
d = np.load({test!r})
print(model.evaluate(d["x"], d["y"], batch_size=64, verbose=0, return_dict=True))
"""

HAND_SUMMARY = """
import keras
keras.applications.ResNet50(weights=None).summary()
"""


def wall(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def paired(ours: list[str], theirs: list[str], cwd: Path, rounds: int) -> tuple[float, float, float]:
    """Medians of each side and of the per-round ratios; the side that starts alternates."""
    a, b, ratios = [], [], []
    for i in range(rounds):
        if i % 2:
            x, y = wall(ours, cwd), wall(theirs, cwd)
        else:
            y, x = wall(theirs, cwd), wall(ours, cwd)
        a.append(x)
        b.append(y)
        ratios.append(x / y)
        print(f"  round {i + 1}: {x:.2f} s / {y:.2f} s = {x / y:.3f}", flush=True)
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def prepare(folder: Path) -> Path:
    """The digits as arrays, the spec, and one trained run; the run folder."""
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    np.savez(folder / "train.npz", x=x[:1400], y=y[:1400])
    np.savez(folder / "test.npz", x=x[1400:], y=y[1400:])
    (folder / "spec.yaml").write_text(SPEC)
    subprocess.run([*GRAPHSPEC, "train", "spec.yaml", "--run-dir", "run"], cwd=folder, env=ENV, check=True,
                   capture_output=True)
    return folder / "run"


def failing(cmd: list[str], cwd: Path, code: str) -> float:
    """Wall time of a command that must fail with diagnostic `code`."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode == 0 or code not in done.stderr:
        raise SystemExit(f"{' '.join(cmd)} did not fail with {code}:\n{done.stdout}\n{done.stderr}")
    return seconds


def wrong_inputs(folder: Path, rounds: int) -> list[tuple[str, str, str, str]]:
    """Time to the error of two wrong inputs (median of the rounds)."""
    import numpy as np

    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    np.savez(folder / "renamed.npz", pixels=np.zeros((8, 64), "float32"), y=np.zeros(8, "int64"))
    rows = []
    for label, cmd in (
            ("wrong input: predict --input photo.png", [*GRAPHSPEC, "predict", "run", "-i", "photo.png", "-o", "p.csv"]),
            ("wrong input: train, .npz without `x`", [*GRAPHSPEC, "train", "spec.yaml", "--set",
                                                     "data.source.train=renamed.npz", "--run-dir", "wrong"])):
        seconds = statistics.median(failing(cmd, folder, "GS411") for _ in range(rounds))
        print(f"{label}: {seconds:.2f} s (goal < 1 s)", flush=True)
        rows.append((label + " (goal < 1 s)", f"{seconds:.2f} s", "", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = prepare(folder)
        model = next(p for p in (run / "best.keras", run / "last.keras") if p.exists())
        print("evaluate RUN (goal <= 1.15):", flush=True)
        hand = [PY, "-c", HAND_EVALUATE.format(model=str(model), test=str(folder / "test.npz"))]
        ours_s, hand_s, ratio = paired([*GRAPHSPEC, "evaluate", "run"], hand, folder, args.rounds)
        rows.append(("evaluate RUN", f"{ours_s:.2f} s", f"{hand_s:.2f} s", f"{ratio:.3f}"))
        wrong = wrong_inputs(folder, args.rounds)
    print("summary specs/resnet50.yaml, static vs a hand-written Keras ResNet50 summary:", flush=True)
    ours_s, hand_s, ratio = paired([*GRAPHSPEC, "summary", "specs/resnet50.yaml"], [PY, "-c", HAND_SUMMARY], ROOT,
                                   args.rounds)
    rows.append(("summary resnet50 (static; goal < 1 s)", f"{ours_s:.2f} s", f"{hand_s:.2f} s", f"{ratio:.3f}"))
    keras_s = statistics.median(wall([*GRAPHSPEC, "summary", "specs/resnet50.yaml", "--keras"], ROOT)
                                for _ in range(max(1, args.rounds // 2)))
    rows.append(("summary resnet50 --keras", f"{keras_s:.2f} s", f"{hand_s:.2f} s", f"{keras_s / hand_s:.3f}"))
    for label, cmd in (("lint specs/", [*GRAPHSPEC, "lint", "specs/"]), ("--help", [*GRAPHSPEC, "--help"])):
        seconds = statistics.median(wall(cmd, ROOT) for _ in range(args.rounds))
        rows.append((label, f"{seconds:.2f} s", "", ""))
    from figures import record

    record("startup", "evaluate RUN / hand-written", float(rows[0][3]), "<= 1.15", met=float(rows[0][3]) <= 1.15)
    for label, seconds_text, _, _ in wrong:
        seconds = float(seconds_text.split()[0])
        record("startup", label.replace(" (goal < 1 s)", "") + ", time to the error (s)", seconds, "< 1 s",
               met=seconds < 1.0)
    rows.extend(wrong)
    record("startup", "summary resnet50, static (s)", float(rows[1][1].split()[0]), "< 1 s",
           met=float(rows[1][1].split()[0]) < 1.0)
    print(f"\n{'command':<52} {'graphspec':>10} {'by hand':>10} {'ratio':>7}")
    for label, ours_text, hand_text, ratio_text in rows:
        print(f"{label:<52} {ours_text:>10} {hand_text:>10} {ratio_text:>7}")


if __name__ == "__main__":
    main()
