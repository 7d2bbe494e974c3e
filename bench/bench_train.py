"""Training throughput: `graphspec train` against a hand-written `model.fit`, in one process.

Both sides train the same model (built from the same spec, same seed) on the same arrays (from
graphspec.run.data, so both get identical samples) with the same batch size, epochs and validation set.
The hand-written side is the guide's `model.fit(x, y, batch_size=..., epochs=..., validation_data=...)`,
timed with Keras's default progress bar (`verbose="auto"`) and silent (`verbose=0`). The graphspec
side is `graphspec.run.trainer.train(...)`, the library call behind `graphspec train`, with everything it
does per epoch: checkpoint (.keras), best/last model, metrics CSV/JSON, TensorBoard, NaN guard,
progress. Only the fit phase is timed on both sides (data loading and model building are not). A fourth side,
with no target, is the hand-written fit doing that per-epoch work with Keras's own callbacks (BackupAndRestore,
ModelCheckpoint of the best model, CSVLogger, and TensorBoard where TensorFlow is installed).

Samples per second = training samples x epochs / fit seconds; the ratio is graphspec over the faster
hand-written variant. Target: ratio >= 1.0 (graphspec adds no training overhead). Rounds alternate
the sides so that drift of the machine hits both; medians are reported.

    .venv/bin/python bench/bench_train.py [--spec specs/mnist_mlp.yaml] [--samples 60000]
                                          [--epochs 3] [--rounds 3] [--backend jax]

It runs on one Keras backend (--backend, else KERAS_BACKEND, else the first installed);
bench/bench_backends.py runs it on each installed backend.
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "mnist_mlp.yaml"))
    parser.add_argument("--samples", type=int, default=60000, help="synthetic samples (MNIST-sized by default)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default=None, help="tensorflow, jax or torch")
    args = parser.parse_args()

    from graphspec.build import backend

    backend.select(args.backend, command="bench")  # before Keras is imported
    from graphspec.build.backend import keras
    from graphspec.run import data as data_mod, models, pipeline, trainer as train_mod

    sets = [f"data.source={{kind: synthetic, samples: {args.samples}, test_samples: 256}}",
            f"data.batch_size={args.batch_size}", "data.validation_split=0.2", f"train.epochs={args.epochs}",
            "train.seed=0", "train.early_stopping=", "train.reduce_lr_on_plateau=", "train.lr_schedule="]
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))

    # The same arrays for the hand-written side: graphspec.run.data's synthetic split for this model.
    checked = models.check(args.spec, sets=sets)
    name = models.pick_model(checked, None)
    from graphspec import compiler

    def hand_model() -> object:
        keras.backend.clear_session()
        # Keras's own seeding imports TensorFlow where it is installed (for its global seed): in a JAX or PyTorch
        # process every side after it would run beside TensorFlow, which graphspec's runs never load. graphspec's
        # seeds the same generators but TensorFlow's, which only TensorFlow code reads.
        backend.set_random_seed(0)
        return compiler.build(checked, models=[name])[name]

    model = hand_model()
    io_ = models.model_io(checked, name, model)
    assert checked.spec is not None and checked.spec.data is not None
    ready = data_mod.prepare(checked.spec.data, io_, base_dir=Path(args.spec).parent, seed=0, graph=checked.graph)
    assert isinstance(ready.train, data_mod.Split)  # synthetic data: arrays in memory
    x, y = pipeline.model_arrays(ready.train, io_)
    val = pipeline.model_arrays(ready.validation, io_)  # type: ignore[arg-type]
    n = len(ready.train)

    def hand(verbose: object) -> float:
        m = hand_model()
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):
            t0 = time.perf_counter()
            m.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, validation_data=val,  # type: ignore[attr-defined]
                  verbose=verbose)
            return time.perf_counter() - t0

    def same_work() -> float:
        """The hand-written fit that also does graphspec's per-epoch work: a resumable backup, the best model,
        a metrics file and (where its writer is installed) TensorBoard logs."""
        m = hand_model()
        folder = Path(tempfile.mkdtemp(dir=work))
        cbs = [keras.callbacks.BackupAndRestore(str(folder / "backup")),
               keras.callbacks.ModelCheckpoint(str(folder / "best.keras"), monitor="val_loss", save_best_only=True),
               keras.callbacks.CSVLogger(str(folder / "metrics.csv"))]
        # Keras's TensorBoard callback writes with tf.summary: on TensorFlow only. On JAX or PyTorch it would import
        # TensorFlow into this process, and every side after it would run beside TensorFlow (its threads, and
        # Keras's saving, which takes TensorFlow's file paths once it is loaded): graphspec's JAX and PyTorch runs
        # never import it (they write TensorBoard's events with the tensorboard package alone).
        if keras.backend.backend() == "tensorflow":
            cbs.append(keras.callbacks.TensorBoard(str(folder / "tensorboard")))
        t0 = time.perf_counter()
        m.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, validation_data=val,  # type: ignore[attr-defined]
              verbose=0, callbacks=cbs)
        return time.perf_counter() - t0

    def ours(i: int) -> float:
        from rich.console import Console

        keras.backend.clear_session()
        console = Console(file=io.StringIO(), width=120)
        result = train_mod.train(args.spec, sets=sets, run_dir=work / f"run{i}", console=console, live=False)
        assert result.exit_code == 0, result.message
        return result.fit_seconds

    sides: dict[str, Callable[[int], float]] = {
        "graphspec train": ours, "model.fit (verbose=auto)": lambda i: hand("auto"),
        "model.fit (verbose=0)": lambda i: hand(0), "model.fit, same work": lambda i: same_work()}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for i in range(args.rounds):
        for side in list(sides) if i % 2 == 0 else list(reversed(sides)):
            times[side].append(sides[side](i))
    rate = {k: n * args.epochs / statistics.median(v) for k, v in times.items()}
    print(f"{Path(args.spec).name} on {keras.backend.backend()}: {n} training samples x {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.rounds} rounds (median fit time)")
    for k, v in times.items():
        print(f"  {k:<26} {statistics.median(v):7.2f} s  {rate[k]:10.0f} samples/s")
    best_hand = max(rate["model.fit (verbose=auto)"], rate["model.fit (verbose=0)"])  # the target's: bare fit
    ratio = rate["graphspec train"] / best_hand
    if keras.backend.backend() != "tensorflow":  # the sides ran as graphspec's runs do: without TensorFlow loaded
        print(f"TensorFlow loaded in this process: {'yes' if 'tensorflow' in sys.modules else 'no'}")
    print(f"ratio graphspec / fastest hand-written: {ratio:.3f} (target >= 1.0)")
    from figures import record

    record("train", f"{keras.backend.backend()}: train / fastest model.fit", ratio, ">= 1.0", met=ratio >= 1.0)
    print(f"ratio graphspec / model.fit default verbose: "
          f"{rate['graphspec train'] / rate['model.fit (verbose=auto)']:.3f}")
    board = ", TensorBoard" if keras.backend.backend() == "tensorflow" else ""
    print(f"ratio graphspec / model.fit doing the same per-epoch work (BackupAndRestore, ModelCheckpoint of the best, "
          f"CSVLogger{board}): {rate['graphspec train'] / rate['model.fit, same work']:.3f} (no target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
