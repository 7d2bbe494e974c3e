"""Overhead of `--track mlflow`: training the digits spec with and without MLflow tracking, in one process.

Both sides are `graphspec.run.trainer.train(...)` (the call behind `graphspec train`) on the same spec,
seed and data; the tracked side adds the MLflow run (:class:`graphspec.experiments.tracking.RunTracker`)
and its epoch-end callback, logging to a SQLite store in a temporary folder. Rounds alternate the
sides (which goes first alternates too) so that drift of the machine hits both; medians are reported.

Reported: the fit time per epoch on each side and its difference in percent of the untracked epoch
(target: <= 2 %); the time the training thread spends in the tracking callback per epoch (what tracking
adds to an epoch directly: on a busy shared machine the end-to-end difference is mostly noise); and the
fixed cost of tracking outside fit (creating the MLflow run, then logging the artifacts and ending it),
which a run pays once.

    .venv/bin/python bench/bench_tracking.py [--spec specs/digits.yaml] [--epochs 10] [--rounds 5]
                                             [--backend jax]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "digits.yaml"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default=None, help="tensorflow, jax or torch")
    args = parser.parse_args()

    from graphspec.build import backend

    backend.select(args.backend, command="bench")
    import logging

    from rich.console import Console

    import graphspec
    from graphspec.experiments import tracking
    from graphspec.run import trainer as train_mod

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench_tracking_"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    args.spec = str(Path(args.spec).resolve())
    os.chdir(work)  # MLflow keeps the artifacts in ./mlruns next to a sqlite store
    sets = [f"train.epochs={args.epochs}", "train.seed=0", "train.tensorboard=false"]
    quiet = Console(file=io.StringIO())

    def run(i: int, tracked: bool) -> tuple[float, float]:
        """(fit seconds per epoch, seconds of tracking outside fit)."""
        tracker = None
        fixed = 0.0
        if tracked:
            t0 = time.perf_counter()
            checked = graphspec.check(args.spec, sets=sets)
            tracker = tracking.RunTracker(tracking.Options(experiment="bench"), checked, model=None, sets=sets,
                                          run_name=None, say=print)
            fixed += time.perf_counter() - t0
        callbacks = None
        if tracker is not None:
            callback = tracker.callback()
            inner = callback.on_epoch_end

            def timed(epoch: int, logs: Any = None) -> None:
                t0 = time.perf_counter()
                inner(epoch, logs)
                in_callback.append(time.perf_counter() - t0)

            callback.on_epoch_end = timed
            callbacks = [callback]
        with contextlib.redirect_stdout(io.StringIO()):
            result = train_mod.train(args.spec, sets=sets, run_dir=work / f"run-{i}-{int(tracked)}", console=quiet,
                                     live=False, callbacks=callbacks)
        if tracker is not None:
            t0 = time.perf_counter()
            tracker.finish(result.status, result.run_dir, result.test_metrics, result.epochs_done)
            fixed += time.perf_counter() - t0
        return result.fit_seconds / max(1, result.epochs_done), fixed

    in_callback: list[float] = []  # seconds the training thread spends in the tracking callback, per epoch
    run(-1, True)  # warm up: MLflow's tables, the backend's compilation caches
    run(-1 - 1, False)
    plain: list[float] = []
    tracked: list[float] = []
    fixed: list[float] = []
    for i in range(args.rounds):
        for side in ((False, True) if i % 2 == 0 else (True, False)):
            per_epoch, cost = run(i, side)
            (tracked if side else plain).append(per_epoch)
            if side:
                fixed.append(cost)
    a, b = statistics.median(plain), statistics.median(tracked)
    print(f"backend {backend.active()}, {args.spec}, {args.epochs} epochs, {args.rounds} rounds (medians)")
    print(f"epoch without tracking  {a * 1000:8.1f} ms")
    print(f"epoch with --track      {b * 1000:8.1f} ms   ({(b - a) / a * 100:+.2f} % of the epoch; target <= 2 %)")
    inside = statistics.median(in_callback)
    print(f"in the tracking callback {inside * 1000:7.2f} ms per epoch (median; max {max(in_callback) * 1000:.1f} ms):"
          f" {inside / a * 100:.3f} % of the untracked epoch")
    print(f"tracking outside fit    {statistics.median(fixed) * 1000:8.1f} ms once per run (start, artifacts, end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
