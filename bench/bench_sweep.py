"""Sweep overhead: `graphspec sweep` against a hand-written Optuna loop that trains the same trials with
`model.fit`, and the speed-up of 2 workers over 1.

Both sides run the same trials: the same search space and sampler (random, the same seed, so the same
values), no pruner, the same model (specs/digits.yaml's conv net, written by hand in Keras on the other
side), the same data (scikit-learn's digits, the same splits and batch size) and epochs. The hand-written
side is the Optuna guide's loop: `study.optimize(objective)` where the objective builds, compiles and
`fit`s the model and returns the best validation accuracy. The graphspec side is
`graphspec.experiments.sweep.sweep(...)` in the same process, with everything it does per trial: the
static check, a run folder with checkpoints, metrics and TensorBoard logs, HParams, the trial record and
SQLite storage. Both are timed wall-clock, start to end, in one process (Keras already imported).

Ratio = graphspec seconds / hand-written seconds, the median over rounds of each round's ratio (goal <= 1.05). Workers: the CLI (`graphspec sweep
--workers N`, each worker a process) with 1 and 2 workers on the same trials; speed-up = 1-worker seconds
/ 2-worker seconds (on a 2-core machine, at most 2).

    .venv/bin/python bench/bench_sweep.py [--trials 6] [--epochs 4] [--rounds 1]
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
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SWEEP = """
sweep:
  objective: {metric: val_accuracy}
  sampler: random
  pruner: none
  trials: %(trials)d
  params:
    compile.optimizer.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
    nodes.dropout.rate: {uniform: [0.0, 0.5]}
"""


def write_spec(folder: Path, trials: int, epochs: int) -> Path:
    text = (ROOT / "specs" / "digits.yaml").read_text()
    text = text.replace("  epochs: 30\n", f"  epochs: {epochs}\n")
    text = text.replace("  reduce_lr_on_plateau: {monitor: val_loss, factor: 0.5, patience: 4}\n", "")
    path = folder / "digits_sweep.yaml"
    path.write_text(text + SWEEP % {"trials": trials})
    return path


def hand_written(trials: int, epochs: int, seed: int, params: list[dict[str, float]] | None = None) -> float:
    """The Optuna guide's loop with a hand-written Keras model; seconds."""
    import numpy as np
    import optuna
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from graphspec.build.backend import keras

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("compile.optimizer.learning_rate", 1e-4, 1e-2, log=True)
        rate = trial.suggest_float("nodes.dropout.rate", 0.0, 0.5)
        digits = load_digits()
        x = (digits.images.reshape(-1, 8, 8, 1) / 16.0).astype("float32")
        y = digits.target.astype("int64")
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
        x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=0.1, random_state=0)
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 1), name="image")
        h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
        h = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D(2)(h)
        h = keras.layers.Flatten()(h)
        h = keras.layers.Dropout(rate)(h)
        h = keras.layers.Dense(128, activation="relu")(h)
        model = keras.Model(inputs, keras.layers.Dense(10)(h))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_data=(x_val, y_val),
                            verbose=0)
        model.evaluate(x_test, y_test, verbose=0)
        return float(np.max(history.history["val_accuracy"]))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - started
    if params is not None:
        params.extend(dict(t.params) for t in study.trials)
    return seconds


def ours(spec: Path, folder: Path, seed: int) -> tuple[float, list[dict[str, float]]]:
    from graphspec.experiments import sweep

    started = time.perf_counter()
    settings = sweep.settings_for(spec, folder=folder, seed=seed)
    sweep.sweep(settings, workers=1, say=lambda _text: None)
    seconds = time.perf_counter() - started
    import optuna

    trials = optuna.load_study(study_name=settings.study, storage=settings.storage).get_trials()
    return seconds, [dict(t.params) for t in trials]


def cli(spec: Path, folder: Path, workers: int, seed: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "graphspec", "sweep", str(spec), "--dir", str(folder), "--workers",
                    str(workers), "--seed", str(seed)], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-workers", action="store_true", help="only the overhead ratio")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        spec = write_spec(base, args.trials, args.epochs)
        hand_written(1, 1, args.seed)  # warm up Keras and TensorFlow for both sides
        a, b = [], []
        theirs: list[dict[str, float]] = []
        params: list[dict[str, float]] = []
        print(f"{args.trials} trials x {args.epochs} epochs (digits conv net, random sampler seed {args.seed})")
        for r in range(args.rounds):
            # Alternate which side goes first: a machine's load drifts within a round too.
            for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                if side == 0:
                    seconds, params = ours(spec, base / f"ours-{r}", args.seed)
                    a.append(seconds)
                else:
                    theirs.clear()
                    b.append(hand_written(args.trials, args.epochs, args.seed, theirs))
            print(f"  round {r + 1}: graphspec {a[-1]:.1f} s, hand-written {b[-1]:.1f} s, ratio {a[-1] / b[-1]:.3f}")
        # The median of the rounds' ratios: each round's two sides ran under the same load.
        ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
        print(f"  graphspec sweep (in process): {statistics.median(a):7.1f} s")
        print(f"  hand-written Optuna loop:     {statistics.median(b):7.1f} s")
        print(f"  ratio: {ratio:.3f} (goal <= 1.05)")
        from figures import record

        record("sweep", "sweep / hand-written Optuna loop", ratio, "<= 1.05", met=ratio <= 1.05)
        print(f"  the same trials on both sides (sampled values): {params == theirs}")
        if not args.skip_workers:
            one = cli(spec, base / "w1", 1, args.seed)
            two = cli(spec, base / "w2", 2, args.seed)
            print(f"  graphspec sweep --workers 1:  {one:7.1f} s")
            print(f"  graphspec sweep --workers 2:  {two:7.1f} s")
            print(f"  speed-up of 2 workers: {one / two:.2f}x on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
