"""Generate the `shapes` image-folder dataset: coloured shapes on varied backgrounds, reproducibly.

    python tools/make_shapes.py                      # data/shapes/{train,test}/<class>/*.png
    python tools/make_shapes.py --out DIR --train 40 --test 10 --size 16

Ten classes (the toy ResNet of specs/resnet.yaml has ten outputs), one sub-folder each, in the layout of
`keras.utils.image_dataset_from_directory` and of graphspec's `images` source. Every image is drawn from
its own seed (the `--seed`, the split, the class, its number), so the files are the same on every run
and machine with the same Pillow. Shapes are drawn at 3x and reduced (anti-aliased), with a random
size, position, rotation and colours, on a plain, two-colour or noisy background. The default (250
training and 50 test images a class, 32x32) takes a couple of seconds.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "cross", "diamond", "hexagon", "ring", "semicircle", "square", "star", "triangle", "x")
SPLITS = {"train": 0, "test": 1}
SCALE = 3


def _polygon(n: int, r: float, cx: float, cy: float, turn: float, inner: float | None = None) -> list[tuple[float, float]]:
    """A regular polygon (or, with `inner`, a star of n points) around (cx, cy)."""
    points = []
    steps = 2 * n if inner is not None else n
    for k in range(steps):
        radius = r if inner is None or k % 2 == 0 else r * inner
        a = turn + 2 * math.pi * k / steps
        points.append((cx + radius * math.sin(a), cy - radius * math.cos(a)))
    return points


def _bar_cross(r: float, cx: float, cy: float, turn: float, width: float) -> list[list[tuple[float, float]]]:
    """Two crossing bars (a plus, or an x when turned by 45 degrees)."""
    bars = []
    for extra in (0.0, math.pi / 2):
        a = turn + extra
        dx, dy = math.cos(a), math.sin(a)
        px, py = -dy * width / 2, dx * width / 2
        bars.append([(cx - dx * r + px, cy - dy * r + py), (cx + dx * r + px, cy + dy * r + py),
                     (cx + dx * r - px, cy + dy * r - py), (cx - dx * r - px, cy - dy * r - py)])
    return bars


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    kind = rng.integers(3)
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    if kind == 0:
        pixels = np.broadcast_to(a, (size, size, 3))
    elif kind == 1:
        t = np.linspace(0.0, 1.0, size)[:, None, None] if rng.integers(2) else np.linspace(0.0, 1.0, size)[None, :, None]
        pixels = a * (1 - t) + b * t + np.zeros((size, size, 1))
    else:
        pixels = a + rng.normal(0, 30, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _colour(rng: np.random.Generator, away_from: np.ndarray) -> tuple[int, int, int]:
    """A colour clearly different from the background's mean."""
    for _ in range(20):
        c = rng.integers(0, 256, 3)
        if np.abs(c - away_from).sum() > 200:
            break
    return (int(c[0]), int(c[1]), int(c[2]))


def draw(name: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One image of class `name`."""
    image = _background(rng, size)
    big = size * SCALE
    mask = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(mask)
    r = rng.uniform(0.28, 0.42) * big
    cx, cy = (big / 2 + rng.uniform(-0.12, 0.12) * big for _ in range(2))
    turn = rng.uniform(0, 2 * math.pi)
    box = (cx - r, cy - r, cx + r, cy + r)
    if name == "circle":
        pen.ellipse(box, fill=255)
    elif name == "ring":
        pen.ellipse(box, fill=255)
        pen.ellipse((cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55), fill=0)
    elif name == "semicircle":
        start = math.degrees(turn)
        pen.pieslice(box, start, start + 180, fill=255)
    elif name == "square":
        pen.polygon(_polygon(4, r * 1.1, cx, cy, turn), fill=255)
    elif name == "diamond":
        pen.polygon([(cx, cy - r), (cx + r * 0.6, cy), (cx, cy + r), (cx - r * 0.6, cy)], fill=255)
    elif name == "triangle":
        pen.polygon(_polygon(3, r * 1.1, cx, cy, turn), fill=255)
    elif name == "hexagon":
        pen.polygon(_polygon(6, r, cx, cy, turn), fill=255)
    elif name == "star":
        pen.polygon(_polygon(5, r * 1.1, cx, cy, turn, inner=0.42), fill=255)
    else:  # cross (upright) or x (diagonal), each turned a little
        base = 0.0 if name == "cross" else math.pi / 4
        for bar in _bar_cross(r, cx, cy, base + rng.uniform(-0.25, 0.25), r * 0.45):
            pen.polygon(bar, fill=255)
    mask = mask.resize((size, size), Image.Resampling.BOX)
    fill = Image.new("RGB", (size, size), _colour(rng, np.asarray(image).reshape(-1, 3).mean(axis=0)))
    image.paste(fill, (0, 0), mask)
    return image


def generate(out: Path, *, train: int = 250, test: int = 50, size: int = 32, seed: int = 0,
             classes: tuple[str, ...] = CLASSES) -> int:
    """Write `out`/{train,test}/<class>/<n>.png; returns the number of files written."""
    count = 0
    for split, per_class in (("train", train), ("test", test)):
        for c, name in enumerate(classes):
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                rng = np.random.default_rng([seed, SPLITS[split], c, i])
                draw(name, rng, size).save(folder / f"{i:04d}.png", compress_level=0)
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/shapes"), help="the dataset's folder")
    parser.add_argument("--train", type=int, default=250, help="training images per class")
    parser.add_argument("--test", type=int, default=50, help="test images per class")
    parser.add_argument("--size", type=int, default=32, help="height and width in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    partial = args.out.with_name(args.out.name + ".partial")  # renamed into place when complete
    shutil.rmtree(partial, ignore_errors=True)
    n = generate(partial, train=args.train, test=args.test, size=args.size, seed=args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    partial.rename(args.out)
    print(f"wrote {n} images of {len(CLASSES)} classes to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
