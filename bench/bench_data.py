"""Training input from an image folder: graphspec's pipeline against hand-written ones, on TensorFlow and JAX.

One run, one folder (the shapes dataset of tools/make_shapes.py, generated into a temporary folder), one
machine, each backend in its own process (a process has one Keras backend; the figures come back as JSON
and are printed in one table):

* input throughput, images/s of training batches (list, decode, resize, scale, one-hot, augment with
  RandomFlip, batch of 64, prefetch) as `fit` reads them over `--input-epochs` epochs (3): graphspec's (the
  `images` source of specs/resnet.yaml, the stream and `data.augment` exactly as `graphspec train` builds
  them: tf.data on TensorFlow, Grain on JAX; one dataset for all the epochs, read by one iterator, which is
  what `fit` does with the `steps_per_epoch` graphspec passes it) against a hand-written pipeline read once
  per epoch (a new iterator each epoch, which is what `fit(ds, epochs=N)` does with it); ratio =
  graphspec / hand-written (goal >= 0.95). Both sides' pipelines are made before the clock starts.
  TensorFlow: `keras.utils.image_dataset_from_directory(...).map(augment).prefetch(AUTOTUNE)`;
  JAX: a Grain pipeline (`grain.MapDataset.source(files).shuffle().map(decode).batch().map(augment)
  .to_iter_dataset(grain.ReadOptions(...))`, Keras's Grain decoder), and, a row of its own,
  `keras.utils.image_dataset_from_directory(..., format="grain").map(augment)` with a prefetch thread, and
  one decoding a batch per Grain element (:func:`hand_grain_batches`), as graphspec's feed does.
  A second row per pipeline, without a goal, times single epochs of pipelines made afresh (3 per side and
  round): there an iterator's start-up, paid once per run by graphspec and once per epoch by the
  hand-written side in training, weighs a whole epoch's share;
* end-to-end epoch time of specs/resnet.yaml's model: `graphspec train` (run folder, checkpoints and all;
  the seconds `fit` took) against `model.fit` of the same hand-written model on the (first) hand-written
  pipeline; ratio = hand-written seconds / graphspec seconds (goal >= 0.95);
* peak RSS of a process that streams one epoch of graphspec's training input, with 1x and 5x the images
  (each in its own subprocess); ratio = 5x / 1x (goal <= 1.2).

Rounds alternate the sides (see bench/timing.py), after an untimed epoch of each input pipeline (a side's
input figure in a round: 3 epochs, each of a pipeline made afresh); each figure is the median of the
rounds' ratios. graphspec's model (whose inputs and outputs its input follows)
is built once before the input rounds: building it just before each timed epoch put the ratio at 0.72
against 0.94 with both pipelines built ahead (11 rounds each, 2 cores, load average 6; the cause, most
likely TensorFlow's threads still busy after the build, not pinned down), a cost of the bench, not of the
input. The header gives the load average before and after (the
machine may be shared: use --rounds >= 5).

    .venv/bin/python bench/bench_data.py [--backend all|tensorflow|jax] [--per-class 250] [--rounds 3]
                                         [--epochs 2] [--input-epochs 3]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BATCH = 64
BACKENDS = ("tensorflow", "jax")
NAMES = {"tensorflow": "TensorFlow", "jax": "JAX"}


def make_shapes() -> Any:
    spec = importlib.util.spec_from_file_location("make_shapes", ROOT / "tools" / "make_shapes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_data(folder: Path, per_class: int) -> None:
    """The shapes folder (`per_class` training images a class), and 1x / 5x copies for the RSS rows."""
    shapes = make_shapes()
    shapes.generate(folder / "shapes", train=per_class, test=20)
    shapes.generate(folder / "rss" / "x1" / "shapes", train=per_class, test=10)
    shapes.generate(folder / "rss" / "x5" / "shapes", train=5 * per_class, test=10)


def write_spec(folder: Path, epochs: int) -> Path:
    """specs/resnet.yaml on `folder`/shapes, every training image in the training split."""
    text = (ROOT / "specs" / "resnet.yaml").read_text()
    text = text.replace("train: data/shapes/train, test: data/shapes/test", "train: shapes/train, test: shapes/test")
    text = text.replace("  validation_split: 0.1\n", "").replace("  epochs: 20\n", f"  epochs: {epochs}\n")
    text = text.replace("  batch_size: 32\n", f"  batch_size: {BATCH}\n") + "  tensorboard: false\n"
    path = folder / "resnet_bench.yaml"
    path.write_text(text)
    return path


# -- the input pipelines ---------------------------------------------------------------------------------
def graphspec_model(spec: Path) -> tuple[Any, Any]:
    """(the checked spec, the model's inputs and outputs) as `graphspec train` makes them: built once, outside
    the timed rounds (the hand-written side builds no model for its input)."""
    from graphspec import compiler
    from graphspec.run import models

    checked = models.check(spec)
    name = models.pick_model(checked, None)
    model = compiler.build(checked, models=[name], training=True)[name]
    return checked, models.model_io(checked, name, model)


def graphspec_input(spec: Path, made: tuple[Any, Any] | None = None, epochs: int = 1) -> Any:
    """Training batches of `epochs` epochs as `graphspec train` makes them (listing, checks, stream,
    augmentation): one dataset, the epochs one after the other."""
    from graphspec.run import data as data_mod
    from graphspec.run import pipeline
    from graphspec.run.augment import Augment

    checked, io = made or graphspec_model(spec)
    assert checked.spec is not None and checked.spec.data is not None
    data = data_mod.prepare(checked.spec.data, io, base_dir=spec.parent, seed=0, graph=checked.graph,
                            roots=[spec.parent])
    ds, steps = pipeline.train_dataset(data.train, io, batch_size=BATCH, seed=0, first_epoch=0, epochs=epochs,
                                       prefetch=False)  # as trainer.fit: Augment.train prefetches
    return Augment(checked.spec.data.augment, io, seed=0).train(ds, first_epoch=0, steps=steps)


def hand_input(train: Path) -> Any:
    """TensorFlow, hand-written: Keras's directory loader, scaled, one-hot, flipped, prefetched."""
    import tensorflow as tf

    from graphspec.build.backend import keras

    flip = keras.layers.RandomFlip("horizontal", seed=0)
    ds = keras.utils.image_dataset_from_directory(str(train), image_size=(32, 32), batch_size=BATCH, shuffle=True,
                                                  seed=0, verbose=False)
    ds = ds.map(lambda x, y: (flip(x / 255.0, training=True), tf.one_hot(y, 10)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def hand_grain(train: Path) -> Any:
    """JAX, hand-written Grain: the files shuffled, decoded with Keras's Grain (Pillow) decoder, batched, scaled,
    one-hot, flipped, in Grain's reading threads with a prefetch buffer."""
    import grain
    import numpy as np
    from keras.src.utils.image_dataset_utils import _load_image_grain  # what format="grain" decodes with

    from graphspec.build.backend import keras

    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    items = [(str(f), i) for i, c in enumerate(classes) for f in sorted((train / c).iterdir())]
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    eye = np.eye(len(classes), dtype=np.float32)

    def decode(item: tuple[str, int]) -> tuple[Any, int]:
        return np.asarray(_load_image_grain(item[0], (32, 32), 3, "bilinear", "channels_last"), np.float32), item[1]

    def augment(batch: tuple[Any, Any]) -> tuple[Any, Any]:
        return keras.ops.convert_to_numpy(flip(batch[0] / 255.0, training=True)), eye[batch[1]]

    ds = grain.MapDataset.source(items).shuffle(seed=0).map(decode).batch(BATCH).map(augment)
    workers = max(1, min(8, os.cpu_count() or 1))
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=workers, prefetch_buffer_size=2 * workers))


def hand_grain_batches(train: Path) -> Any:
    """JAX, hand-written Grain decoding a batch per element (as graphspec's feed does) instead of an image per
    element: the files shuffled with NumPy, cut into batches, each decoded with Keras's Grain decoder and stacked,
    scaled, one-hot, flipped, in Grain's reading threads. Grain's cost per element makes the per-image pipeline
    about 14% slower (2,628 against 3,029 images/s, 5 rounds, load average 4)."""
    import grain
    import numpy as np
    from keras.src.utils.image_dataset_utils import _load_image_grain

    from graphspec.build.backend import keras

    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    items = [(str(f), i) for i, c in enumerate(classes) for f in sorted((train / c).iterdir())]
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    eye = np.eye(len(classes), dtype=np.float32)
    order = np.random.default_rng(0).permutation(len(items))
    batches = [[items[j] for j in order[i:i + BATCH]] for i in range(0, len(items), BATCH)]

    def decode(batch: list[tuple[str, int]]) -> tuple[Any, Any]:
        images = [_load_image_grain(f, (32, 32), 3, "bilinear", "channels_last") for f, _ in batch]
        return np.stack(images).astype(np.float32), np.asarray([label for _, label in batch])

    def augment(batch: tuple[Any, Any]) -> tuple[Any, Any]:
        return keras.ops.convert_to_numpy(flip(batch[0] / 255.0, training=True)), eye[batch[1]]

    workers = max(1, min(8, os.cpu_count() or 1))
    return grain.MapDataset.source(batches).map(decode).map(augment).to_iter_dataset(
        grain.ReadOptions(num_threads=workers, prefetch_buffer_size=2 * workers))


def hand_keras_grain(train: Path) -> Any:
    """JAX, hand-written with Keras's own loader: `image_dataset_from_directory(..., format="grain")`, scaled,
    one-hot, flipped, a prefetch thread after it."""
    import grain

    from graphspec.build.backend import keras

    flip = keras.layers.RandomFlip("horizontal", seed=0)
    ds = keras.utils.image_dataset_from_directory(str(train), image_size=(32, 32), batch_size=BATCH, shuffle=True,
                                                  seed=0, verbose=False, format="grain")
    ds = ds.map(lambda b: (flip(b[0] / 255.0, training=True), keras.ops.one_hot(b[1], 10)))
    return grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=4)


def hands(backend: str) -> dict[str, Callable[[Path], Any]]:
    """The hand-written pipelines of a backend, the first the one `model.fit` trains on."""
    if backend == "tensorflow":
        return {"image_dataset_from_directory": hand_input}
    return {"Grain MapDataset": hand_grain, "Grain, a batch per element": hand_grain_batches,
            'Keras format="grain"': hand_keras_grain}


def images_per_second(ds: Any, passes: int = 1) -> tuple[int, float]:
    """(images, seconds) of `passes` passes over `ds` (each a new iterator, as `fit` starts one per epoch)."""
    t0 = time.perf_counter()
    n = 0
    for _ in range(passes):
        for x, _ in ds:
            n += int(x.shape[0])
    return n, time.perf_counter() - t0


def _medians(rates: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    ours = rates.pop("graphspec")
    return {label: (statistics.median(ours), statistics.median(v),
                    statistics.median(a / b for a, b in zip(ours, v))) for label, v in rates.items()}


def throughput(spec: Path, train: Path, rounds: int, backend: str, epochs: int = 3
               ) -> dict[str, dict[str, tuple[float, float, float]]]:
    """For each hand-written pipeline, (graphspec images/s, hand-written images/s, median ratio) twice:

    * "fit": `epochs` epochs as `fit` reads them, both pipelines made before the clock starts: graphspec's
      one dataset of all the epochs through one iterator, the hand-written dataset once per epoch;
    * "fresh": single epochs, 3 per side and round, each of a pipeline made afresh (an epoch of 2,500
      images lasts about 0.15 s: one alone is mostly noise on a shared machine).
    """
    made = graphspec_model(spec)
    fit: dict[str, tuple[Callable[[], Any], int]] = {"graphspec": (lambda: graphspec_input(spec, made, epochs), 1)}
    fresh: dict[str, Callable[[], Any]] = {"graphspec": lambda: graphspec_input(spec, made)}
    for label, hand in hands(backend).items():
        fit[label] = (lambda hand=hand: hand(train), epochs)  # type: ignore[misc]
        fresh[label] = lambda hand=hand: hand(train)  # type: ignore[misc]
    for first in fresh.values():  # a first epoch untimed: each side's one-time costs (tracing, compiling) out
        images_per_second(first())
    by_fit: dict[str, list[float]] = {k: [] for k in fit}
    by_fresh: dict[str, list[float]] = {k: [] for k in fresh}
    for r in range(rounds):
        for side in (list(fit) if r % 2 else list(fit)[::-1]):
            make, passes = fit[side]
            ds = make()
            gc.collect()  # as bench/timing.py: each side from a collected heap
            n, t = images_per_second(ds, passes)
            by_fit[side].append(n / t)
            images, seconds = 0, 0.0
            for _ in range(3):
                ds = fresh[side]()
                gc.collect()
                n, t = images_per_second(ds)
                images, seconds = images + n, seconds + t
            by_fresh[side].append(images / seconds)
    return {"fit": _medians(by_fit), "fresh": _medians(by_fresh)}


# -- end to end ------------------------------------------------------------------------------------------
def graphspec_epochs(spec: Path, folder: Path, epochs: int) -> float:
    """Seconds per epoch of `graphspec train` (what `fit` took, over the epochs)."""
    from rich.console import Console

    from graphspec.run import trainer

    console = Console(file=open(os.devnull, "w"), width=120)  # noqa: SIM115
    result = trainer.train(spec, console=console, live=False, runs_root=folder / "runs", data_roots=[folder])
    assert result.exit_code == 0, result.message
    return float(result.fit_seconds) / epochs


def hand_epochs(train: Path, epochs: int, backend: str) -> float:
    """Seconds per epoch of `model.fit` of the guide's toy ResNet on the (first) hand-written pipeline."""
    from graphspec.build import backend as graphspec_backend
    from graphspec.build.backend import keras
    from tests.guide import toy_resnet

    keras.backend.clear_session()
    # Keras's own seeding imports TensorFlow where it is installed (for its global seed): in a JAX or PyTorch
    # process every side after it would run beside TensorFlow, which graphspec's runs never load. graphspec's
    # seeds the same generators but TensorFlow's, which only TensorFlow code reads.
    graphspec_backend.set_random_seed(0)
    model = toy_resnet(keras)["toy_resnet"]
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["acc"])
    ds = next(iter(hands(backend).values()))(train)
    t0 = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0)
    return (time.perf_counter() - t0) / epochs


def end_to_end(spec: Path, folder: Path, train: Path, rounds: int, epochs: int,
               backend: str) -> tuple[float, float, float]:
    ours, theirs, ratios = [], [], []
    for r in range(rounds):
        pair = {}
        for side in (("graphspec", "hand") if r % 2 else ("hand", "graphspec")):
            pair[side] = (graphspec_epochs(spec, folder, epochs) if side == "graphspec"
                          else hand_epochs(train, epochs, backend))
        ours.append(pair["graphspec"])
        theirs.append(pair["hand"])
        ratios.append(pair["hand"] / pair["graphspec"])
    return statistics.median(ours), statistics.median(theirs), statistics.median(ratios)


# -- memory ------------------------------------------------------------------------------------------------
def rss_child(spec: Path) -> None:
    """(In a subprocess) stream one epoch of graphspec's training input; print the peak RSS in bytes."""
    ds = graphspec_input(spec)
    for _ in ds:
        pass
    print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def peak_rss(folder: Path, backend: str) -> int:
    out = subprocess.run([sys.executable, __file__, "--backend", backend, "--rss-child",
                          str(write_spec(folder, 1))], check=True, capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_rss"])


def memory(base: Path, rounds: int, backend: str) -> tuple[int, int, float]:
    one, five = base / "x1", base / "x5"
    small, large, ratios = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            a, b = peak_rss(one, backend), peak_rss(five, backend)
        else:
            b, a = peak_rss(five, backend), peak_rss(one, backend)
        small.append(a)
        large.append(b)
        ratios.append(b / a)
    return int(statistics.median(small)), int(statistics.median(large)), statistics.median(ratios)


# -- one backend, the table ----------------------------------------------------------------------------------
def measure(folder: Path, backend: str, rounds: int, epochs: int, input_epochs: int = 3) -> dict[str, Any]:
    """Every figure of one backend (this process's), as JSON-able data."""
    load = [os.getloadavg()[0]]
    spec = write_spec(folder, epochs)
    train = folder / "shapes" / "train"
    figures: dict[str, Any] = {"backend": backend, "input": throughput(spec, train, rounds, backend,
                                                                                     input_epochs)}
    figures["epoch"] = end_to_end(spec, folder, train, rounds, epochs, backend)
    figures["rss"] = memory(folder / "rss", rounds, backend)
    figures["load"] = [*load, os.getloadavg()[0]]
    return figures


def table(runs: list[dict[str, Any]], n: int, rounds: int, epochs: int, input_epochs: int) -> None:
    loads = [x for run in runs for x in run["load"]]
    print(f"bench_data: {n} training images (32x32 PNG, 10 classes), batch {BATCH}, "
          f"{', '.join(NAMES[r['backend']] for r in runs)}, {rounds} rounds ({input_epochs} epochs of input, "
          f"{epochs} of training per round), medians; load average {min(loads):.1f} to {max(loads):.1f}")
    print(f"{'measure':<66} {'graphspec':>12} {'hand-written':>14} {'ratio':>7}  goal")
    from figures import record

    for run in runs:
        name = NAMES[run["backend"]]
        for label, (ours, hand, ratio) in run["input"]["fit"].items():
            print(f"{f'{name} input as fit reads it, images/s (vs {label})':<66} {ours:>12,.0f} {hand:>14,.0f} "
                  f"{ratio:>7.2f}  >= 0.95 (ours/hand)")
            record("data", f"{name}: input ours / {label}", ratio, ">= 0.95", met=ratio >= 0.95)
        for label, (ours, hand, ratio) in run["input"]["fresh"].items():
            print(f"{f'{name} one epoch of a fresh pipeline (vs {label})':<66} {ours:>12,.0f} {hand:>14,.0f} "
                  f"{ratio:>7.2f}  (no goal)")
        ours, hand, ratio = run["epoch"]
        print(f"{f'{name} epoch of training, seconds':<66} {ours:>12.2f} {hand:>14.2f} {ratio:>7.2f}  "
              ">= 0.95 (hand/ours)")
        record("data", f"{name}: epoch hand / ours", ratio, ">= 0.95", met=ratio >= 0.95)
        one, five, ratio = run["rss"]
        print(f"{f'{name} graphspec input, peak RSS, MiB, 1x / 5x images':<66} {one / 2**20:>12,.0f} "
              f"{five / 2**20:>14,.0f} {ratio:>7.2f}  <= 1.2 (5x/1x)")
        record("data", f"{name}: input peak RSS 5x / 1x", ratio, "<= 1.2", met=ratio <= 1.2)


def available(name: str) -> bool:
    from graphspec.build import backend

    return backend.is_installed(name) and (name == "tensorflow" or backend.importable("grain"))


def child(folder: Path, name: str, rounds: int, epochs: int, input_epochs: int) -> dict[str, Any] | None:
    """One backend's figures, measured in a process of its own."""
    proc = subprocess.run([sys.executable, __file__, "--backend", name, "--folder", str(folder),
                           "--rounds", str(rounds), "--epochs", str(epochs), "--input-epochs",
                           str(input_epochs)], capture_output=True, text=True,
                          env=dict(os.environ, KERAS_BACKEND=name))
    if proc.returncode != 0:
        print(f"{NAMES[name]}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["all", *BACKENDS], default="all",
                        help="the Keras backend to measure (all: each installed one, in a process of its own)")
    parser.add_argument("--per-class", type=int, default=250, help="training images per class (10 classes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per end-to-end round")
    parser.add_argument("--input-epochs", type=int, default=3, help="epochs per input round, as fit reads them")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)  # made by the parent process
    args = parser.parse_args()
    if args.backend != "all":
        from graphspec.build import backend

        backend.select(args.backend, command="bench")  # before Keras is imported
    if args.rss_child is not None:
        rss_child(args.rss_child)
        return 0
    if args.folder is not None:  # a child of `--backend all`: one backend's figures, as JSON
        print(json.dumps(measure(args.folder, args.backend, args.rounds, args.epochs,
                                 args.input_epochs)))
        return 0
    names = [b for b in BACKENDS if available(b)] if args.backend == "all" else [args.backend]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder, args.per_class)
        if args.backend == "all":
            runs = [run for run in (child(folder, b, args.rounds, args.epochs, args.input_epochs)
                                                for b in names) if run is not None]
        else:
            runs = [measure(folder, args.backend, args.rounds, args.epochs, args.input_epochs)]
    table(runs, 10 * args.per_class, args.rounds, args.epochs, args.input_epochs)
    return 0 if len(runs) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
