"""Overhead of `--track mlflow`: training the digits spec with and without MLflow tracking, in one process.

Both sides are `graphspec.run.trainer.train(...)` (the call behind `graphspec train`) on the same spec,
seed and data; the tracked side adds the MLflow run (:class:`graphspec.experiments.tracking.RunTracker`)
and its epoch-end callback, logging to a SQLite store in a temporary folder. Each round runs both sides
back to back (which goes first alternates), so that drift of the machine hits both alike.

Two measures, because on a busy shared machine the end-to-end one is mostly noise:

1. What tracking costs, counted directly (noise cannot make it up): the CPU time the training thread
   spends in the tracking callback per epoch (it only hands MLflow a batch: `log_batch(synchronous=False)`),
   plus the CPU time of MLflow's own logging threads (the queue that writes the batches), per epoch,
   against the untracked epoch. This is the figure the target (<= 2 % of the epoch) is judged by.
2. End to end: the fit time per epoch on each side; per round the tracked epoch's difference from the
   untracked one of the same round, in percent; the median of those paired differences and their
   quartiles (a spread wider than the target means the machine decided, not tracking). The same for the
   process's CPU time per epoch (less sensitive to other processes than wall time).

Also reported: the fixed cost of tracking outside fit (creating the MLflow run, then logging the
artifacts and ending it), which a run pays once.

    .venv/bin/python bench/bench_tracking.py [--spec specs/digits.yaml] [--epochs 10] [--rounds 15]
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


def _thread_cpu(prefixes: tuple[str, ...]) -> float:
    """CPU seconds used so far by the live threads whose names start with one of `prefixes` (Linux)."""
    import threading

    total = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith(prefixes) and thread.ident is not None:
            try:
                total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            except (OSError, AttributeError):  # ended meanwhile, or not Linux
                continue
    return total


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[1], q[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "digits.yaml"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--backend", default=None, help="tensorflow, jax or torch")
    args = parser.parse_args()

    from graphspec.build import backend

    backend.select(args.backend, command="bench")
    import logging

    from rich.console import Console

    import graphspec
    from graphspec.build.backend import keras
    from graphspec.experiments import tracking
    from graphspec.run import trainer as train_mod

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench_tracking_"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    args.spec = str(Path(args.spec).resolve())
    os.chdir(work)  # MLflow keeps the artifacts in ./mlruns next to a sqlite store
    sets = [f"train.epochs={args.epochs}", "train.seed=0", "train.tensorboard=false"]
    quiet = Console(file=io.StringIO())
    from mlflow.utils.async_logging import async_logging_queue as queue_mod

    mlflow_threads = tuple(getattr(queue_mod, n) for n in (
        "ASYNC_LOGGING_WORKER_THREAD_PREFIX", "ASYNC_LOGGING_STATUS_CHECK_THREAD_PREFIX") if hasattr(queue_mod, n))
    mlflow_threads += ("MLflowAsyncLoggingLoop",)

    class FitClock(keras.callbacks.Callback):  # on both sides: the process's CPU time during fit
        def on_train_begin(self, logs: Any = None) -> None:
            self.cpu = time.process_time()

        def on_train_end(self, logs: Any = None) -> None:
            self.cpu = time.process_time() - self.cpu

    def run(i: int, tracked: bool) -> dict[str, float]:
        """Per epoch: fit seconds, process CPU seconds; tracking CPU (callback, MLflow's threads); fixed cost."""
        tracker = None
        out = {"fixed": 0.0, "callback_cpu": 0.0, "mlflow_cpu": 0.0}
        if tracked:
            t0 = time.perf_counter()
            checked = graphspec.check(args.spec, sets=sets)
            tracker = tracking.RunTracker(tracking.Options(experiment="bench"), checked, model=None, sets=sets,
                                          run_name=None, say=print)
            out["fixed"] += time.perf_counter() - t0
        clock = FitClock()
        callbacks: list[Any] = [clock]
        in_callback: list[float] = []
        if tracker is not None:
            callback = tracker.callback()
            inner = callback.on_epoch_end

            def timed(epoch: int, logs: Any = None) -> None:
                t0 = time.thread_time()
                inner(epoch, logs)
                in_callback.append(time.thread_time() - t0)

            callback.on_epoch_end = timed
            callbacks.append(callback)
        before = _thread_cpu(mlflow_threads)
        with contextlib.redirect_stdout(io.StringIO()):
            result = train_mod.train(args.spec, sets=sets, run_dir=work / f"run-{i}-{int(tracked)}", console=quiet,
                                     live=False, callbacks=callbacks)
        epochs = max(1, result.epochs_done)
        if tracker is not None:
            for op in tracker.run.pending:  # the epochs' batches written: their cost is counted below
                op.wait()
            out["mlflow_cpu"] = (_thread_cpu(mlflow_threads) - before) / epochs
            out["callback_cpu"] = sum(in_callback) / epochs
            t0 = time.perf_counter()
            tracker.finish(result.status, result.run_dir, result.test_metrics, result.epochs_done)
            out["fixed"] += time.perf_counter() - t0
        out["epoch"] = result.fit_seconds / epochs
        out["epoch_cpu"] = clock.cpu / epochs
        return out

    run(-1, True)  # warm up: MLflow's tables and threads, the backend's compilation caches
    run(-2, False)
    rounds: list[dict[bool, dict[str, float]]] = []
    for i in range(args.rounds):
        pair: dict[bool, dict[str, float]] = {}
        for side in ((False, True) if i % 2 == 0 else (True, False)):
            pair[side] = run(i, side)
        rounds.append(pair)

    def med(side: bool, key: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    def paired(key: str) -> tuple[float, float, float]:
        return quartiles([(r[True][key] - r[False][key]) / r[False][key] * 100 for r in rounds])

    a, b = med(False, "epoch"), med(True, "epoch")
    cb, ml = med(True, "callback_cpu"), med(True, "mlflow_cpu")
    print(f"backend {backend.active()}, {args.spec}, {args.epochs} epochs, {args.rounds} rounds (medians)")
    print(f"tracking's own CPU per epoch: callback {cb * 1000:.2f} ms + MLflow's logging threads {ml * 1000:.2f} ms"
          f" = {(cb + ml) / a * 100:.3f} % of the untracked epoch ({a * 1000:.1f} ms; target <= 2 %)")
    lo, mid, hi = paired("epoch")
    print(f"end to end, fit time per epoch: {a * 1000:.1f} ms untracked, {b * 1000:.1f} ms tracked (medians differ "
          f"by {(b - a) / a * 100:+.2f} %); paired difference median {mid:+.2f} % (quartiles {lo:+.2f} .. {hi:+.2f} %)")
    lo, mid, hi = paired("epoch_cpu")
    print(f"end to end, process CPU per epoch: {med(False, 'epoch_cpu') * 1000:.1f} ms untracked, "
          f"{med(True, 'epoch_cpu') * 1000:.1f} ms tracked; paired difference median {mid:+.2f} % "
          f"(quartiles {lo:+.2f} .. {hi:+.2f} %)")
    print(f"tracking outside fit: {med(True, 'fixed') * 1000:.1f} ms once per run (start, artifacts, end)")
    from figures import record  # the summary table of `make bench`

    share = (cb + ml) / a * 100
    record("tracking", "tracking's own CPU per epoch, % of the epoch", share, "<= 2 %", met=share <= 2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
