"""Training input from an image folder: graphspec's pipeline against a hand-written tf.data one.

One run, one folder (the shapes dataset of tools/make_shapes.py, generated into a temporary folder), one
machine, TensorFlow:

* input throughput, images/s of one epoch of training batches (list, decode, resize, scale, one-hot,
  augment with RandomFlip, batch of 64, prefetch): graphspec's (the `images` source of specs/resnet.yaml,
  the stream and `data.augment` exactly as `graphspec train` builds them) against
  `keras.utils.image_dataset_from_directory(...).map(augment).prefetch(AUTOTUNE)`;
  ratio = graphspec / hand-written (goal >= 0.95);
* end-to-end epoch time of specs/resnet.yaml's model: `graphspec train` (run folder, checkpoints and all;
  the seconds `fit` took) against `model.fit` of the same hand-written model on the hand-written pipeline;
  ratio = hand-written seconds / graphspec seconds (goal >= 0.95);
* peak RSS of a process that streams one epoch of graphspec's training input, with 1x and 5x the images
  (each in its own subprocess); ratio = 5x / 1x (goal <= 1.2).

Rounds alternate the sides (see bench/timing.py); each figure is the median of the rounds' ratios.
The JAX side (graphspec's Grain pipeline against a hand-written Grain pipeline) is not measured yet:
graphspec streams folders on JAX and PyTorch through Grain (graphspec/run/grain_feed.py) since 2026-12-05.

    .venv/bin/python bench/bench_data.py [--per-class 250] [--rounds 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
BATCH = 64


def make_shapes() -> Any:
    spec = importlib.util.spec_from_file_location("make_shapes", ROOT / "tools" / "make_shapes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_spec(folder: Path, epochs: int) -> Path:
    """specs/resnet.yaml on `folder`/shapes, every training image in the training split."""
    text = (ROOT / "specs" / "resnet.yaml").read_text()
    text = text.replace("train: data/shapes/train, test: data/shapes/test", "train: shapes/train, test: shapes/test")
    text = text.replace("  validation_split: 0.1\n", "").replace("  epochs: 20\n", f"  epochs: {epochs}\n")
    text = text.replace("  batch_size: 32\n", f"  batch_size: {BATCH}\n") + "  tensorboard: false\n"
    path = folder / "resnet_bench.yaml"
    path.write_text(text)
    return path


# -- the two input pipelines ---------------------------------------------------------------------------
def graphspec_input(spec: Path) -> tuple[Any, int, Any]:
    """(training batches of one epoch, steps, the built model) as `graphspec train` makes them."""
    from graphspec import compiler
    from graphspec.run import data as data_mod
    from graphspec.run import models, pipeline
    from graphspec.run.augment import Augment

    checked = models.check(spec)
    assert checked.spec is not None and checked.spec.data is not None
    name = models.pick_model(checked, None)
    model = compiler.build(checked, models=[name], training=True)[name]
    io = models.model_io(checked, name, model)
    data = data_mod.prepare(checked.spec.data, io, base_dir=spec.parent, seed=0, graph=checked.graph,
                            roots=[spec.parent])
    ds, steps = pipeline.train_dataset(data.train, io, batch_size=BATCH, seed=0, first_epoch=0, epochs=1,
                                       prefetch=False)  # as trainer.fit: Augment.train prefetches
    return Augment(checked.spec.data.augment, io, seed=0).train(ds, first_epoch=0, steps=steps), steps, model


def hand_input(train: Path) -> Any:
    """The hand-written pipeline: Keras's directory loader, scaled, one-hot, flipped, prefetched."""
    import tensorflow as tf

    from graphspec.build.backend import keras

    flip = keras.layers.RandomFlip("horizontal", seed=0)
    ds = keras.utils.image_dataset_from_directory(str(train), image_size=(32, 32), batch_size=BATCH, shuffle=True,
                                                  seed=0, verbose=False)
    ds = ds.map(lambda x, y: (flip(x / 255.0, training=True), tf.one_hot(y, 10)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def images_per_second(ds: Any) -> float:
    t0 = time.perf_counter()
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n / (time.perf_counter() - t0)


def throughput(spec: Path, train: Path, rounds: int) -> tuple[float, float, float]:
    ours, theirs, ratios = [], [], []
    for r in range(rounds):
        pair = {}
        for side in (("graphspec", "hand") if r % 2 else ("hand", "graphspec")):
            ds = graphspec_input(spec)[0] if side == "graphspec" else hand_input(train)
            pair[side] = images_per_second(ds)
        ours.append(pair["graphspec"])
        theirs.append(pair["hand"])
        ratios.append(pair["graphspec"] / pair["hand"])
    return statistics.median(ours), statistics.median(theirs), statistics.median(ratios)


# -- end to end ------------------------------------------------------------------------------------------
def graphspec_epochs(spec: Path, folder: Path, epochs: int) -> float:
    """Seconds per epoch of `graphspec train` (what `fit` took, over the epochs)."""
    from rich.console import Console

    from graphspec.run import trainer

    console = Console(file=open(os.devnull, "w"), width=120)  # noqa: SIM115
    result = trainer.train(spec, console=console, live=False, runs_root=folder / "runs", data_roots=[folder])
    return float(result.fit_seconds) / epochs


def hand_epochs(train: Path, epochs: int) -> float:
    """Seconds per epoch of `model.fit` of the guide's toy ResNet on the hand-written pipeline."""
    from graphspec.build.backend import keras
    from tests.guide import toy_resnet

    keras.utils.set_random_seed(0)
    model = toy_resnet(keras)["toy_resnet"]
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["acc"])
    ds = hand_input(train)
    t0 = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0)
    return (time.perf_counter() - t0) / epochs


def end_to_end(spec: Path, folder: Path, train: Path, rounds: int, epochs: int) -> tuple[float, float, float]:
    ours, theirs, ratios = [], [], []
    for r in range(rounds):
        pair = {}
        for side in (("graphspec", "hand") if r % 2 else ("hand", "graphspec")):
            pair[side] = graphspec_epochs(spec, folder, epochs) if side == "graphspec" else hand_epochs(train, epochs)
        ours.append(pair["graphspec"])
        theirs.append(pair["hand"])
        ratios.append(pair["hand"] / pair["graphspec"])
    return statistics.median(ours), statistics.median(theirs), statistics.median(ratios)


# -- memory ------------------------------------------------------------------------------------------------
def rss_child(spec: Path) -> None:
    """(In a subprocess) stream one epoch of graphspec's training input; print the peak RSS in bytes."""
    ds = graphspec_input(spec)[0]
    for _ in ds:
        pass
    print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def peak_rss(folder: Path) -> int:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(write_spec(folder, 1))], check=True,
                         capture_output=True, text=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_rss"])


def memory(base: Path, per_class: int, rounds: int) -> tuple[int, int, float]:
    shapes = make_shapes()
    one, five = base / "x1", base / "x5"
    shapes.generate(one / "shapes", train=per_class, test=10)
    shapes.generate(five / "shapes", train=5 * per_class, test=10)
    small, large, ratios = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            a, b = peak_rss(one), peak_rss(five)
        else:
            b, a = peak_rss(five), peak_rss(one)
        small.append(a)
        large.append(b)
        ratios.append(b / a)
    return int(statistics.median(small)), int(statistics.median(large)), statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=250, help="training images per class (10 classes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per end-to-end round")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_shapes().generate(folder / "shapes", train=args.per_class, test=20)
        spec = write_spec(folder, args.epochs)
        train = folder / "shapes" / "train"
        n = 10 * args.per_class
        ips_ours, ips_hand, ips_ratio = throughput(spec, train, args.rounds)
        ep_ours, ep_hand, ep_ratio = end_to_end(spec, folder, train, args.rounds, args.epochs)
        rss_1, rss_5, rss_ratio = memory(folder / "rss", args.per_class, args.rounds)
    print(f"bench_data: {n} training images (32x32 PNG, 10 classes), batch {BATCH}, TensorFlow, "
          f"{args.rounds} rounds, medians")
    print(f"{'measure':<34} {'graphspec':>12} {'hand-written':>14} {'ratio':>7}  goal")
    print(f"{'input, images/s':<34} {ips_ours:>12,.0f} {ips_hand:>14,.0f} {ips_ratio:>7.2f}  >= 0.95 (ours/hand)")
    print(f"{'epoch of training, seconds':<34} {ep_ours:>12.2f} {ep_hand:>14.2f} {ep_ratio:>7.2f}  >= 0.95 (hand/ours)")
    print(f"{'graphspec input, peak RSS, MiB':<34} {'1x images':>12} {'5x images':>14}")
    print(f"{'':<34} {rss_1 / 2**20:>12,.0f} {rss_5 / 2**20:>14,.0f} {rss_ratio:>7.2f}  <= 1.2 (5x/1x)")
    from figures import record  # the summary table of `make bench`

    record("data", "input images/s graphspec / hand", ips_ratio, ">= 0.95", met=ips_ratio >= 0.95)
    record("data", "epoch of training, hand / graphspec time", ep_ratio, ">= 0.95", met=ep_ratio >= 0.95)
    record("data", "input peak RSS, 5x images / 1x", rss_ratio, "<= 1.2", met=rss_ratio <= 1.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
