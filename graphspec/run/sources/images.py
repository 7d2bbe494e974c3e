"""The `images` source: PNG, JPEG, BMP and GIF files, one sub-folder per class (or a manifest), streamed.

`describe` lists the files and classes (lint: no decoding, no backend); `open` checks every file's
header and end (:mod:`graphspec.run.sources.imagefiles`) and returns a reader that decodes with
Keras's own loaders: `image_dataset_from_directory`'s `tf.data` loader on TensorFlow, its Grain
(Pillow) loader elsewhere, so that JAX and PyTorch need no TensorFlow.
"""

from __future__ import annotations

import os

from pathlib import Path
from typing import Any

from graphspec.run.sources import extras, imagefiles, listing
from graphspec.run.sources.arrays import error
from graphspec.spec.schema_run import ImagesSource

SUFFIXES = imagefiles.SUFFIXES
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
MODES = {c: m for m, c in CHANNELS.items()}


def describe(src: ImagesSource, split: str, base_dir: Path, roots: list[Path], locate: Any) -> listing.Listing:
    """The split's image files and classes, without opening one."""
    return listing.describe(src, split, base_dir, roots, locate, SUFFIXES)


def settings(src: ImagesSource, shape: tuple[int | None, ...] | None) -> tuple[int, int, str]:
    """(height, width, color mode): the source's, else the model input's `shape` (H, W, C)."""
    if src.image_size is not None:
        h, w = src.image_size
    elif shape is not None and len(shape) == 3 and shape[0] and shape[1]:
        h, w = int(shape[0]), int(shape[1])
    else:
        raise error("`image_size` is not set, and the model input's shape does not give one "
                    f"(it is {shape})", ("data", "source"), "set `image_size: [HEIGHT, WIDTH]`", code="GS410")
    if src.color_mode is not None:
        return h, w, src.color_mode
    channels = shape[-1] if shape is not None and len(shape) == 3 else 3
    return h, w, MODES.get(int(channels) if channels else 3, "rgb")


class ImageReader:
    """Decodes and resizes image `i` of a listing (float32, 0..255, channels last) with its class id."""

    def __init__(self, files: list[str], labels: list[int], classes: tuple[str, ...], size: tuple[int, int],
                 mode: str, interpolation: str, crop: bool, gray16: frozenset[int] = frozenset()) -> None:
        self.files, self.labels, self.classes = files, labels, classes
        self.gray16 = gray16  # the files that are 16-bit grayscale PNGs (imagefiles.eight_bit)
        self.size, self.channels, self.interpolation, self.crop = size, CHANNELS[mode], interpolation, crop
        self.fields: dict[str, tuple[tuple[int | None, ...], str]] = {
            "image": ((*size, self.channels), "float32"), "label": ((), "int32")}
        self.default_input, self.default_output = "image", "label"

    def _args(self) -> tuple[Any, ...]:
        return (self.size, self.channels, self.interpolation, "channels_last", self.crop, False)

    def load(self, i: int) -> dict[str, Any]:
        import numpy as np
        from keras.src.utils.image_dataset_utils import _load_image_grain

        try:
            source: Any = imagefiles.eight_bit(self.files[i]) if i in self.gray16 else self.files[i]
            image = _load_image_grain(source, *self._args())
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for a corrupt file
            raise error(f"cannot decode the image {self.files[i]}: {exc}", ("data", "source"), code="GS441") from None
        return {"image": np.asarray(image, dtype=np.float32), "label": np.int32(self.labels[i])}

    def tf_load(self, i: Any) -> dict[str, Any]:
        import tensorflow as tf
        from keras.src.utils.image_dataset_utils import _load_image_tf

        files, labels = self._tf_listing()
        image = _load_image_tf(tf.gather(files, i), *self._args())
        return {"image": tf.cast(image, tf.float32), "label": tf.gather(labels, i)}

    def _tf_listing(self) -> tuple[Any, Any]:
        """The listing as eager tensors, made once and captured by every map that decodes: a constant
        made inside the map function instead would be materialised per sample (about 25% slower)."""
        import tensorflow as tf

        if getattr(self, "_tf", None) is None:
            with tf.init_scope():
                # bytes: a file name that is not UTF-8 (its bytes kept by `os.fsdecode`) is no TensorFlow string
                self._tf = (tf.constant([os.fsencode(f) for f in self.files]), tf.constant(self.labels, tf.int32))
        return self._tf


def check_files(files: list[str], src: ImagesSource,
                where: tuple[Any, ...]) -> tuple[list[int], list[tuple[str, str]], frozenset[int]]:
    """Positions of usable files, (file, why) of those skipped with `on_error: skip`, and the positions of
    16-bit grayscale PNGs (for :class:`ImageReader`); an error naming the first bad file otherwise (GS441;
    GS416 for one over the pixel cap)."""
    good: list[int] = []
    skipped: list[tuple[str, str]] = []
    gray16: set[int] = set()
    for i, f in enumerate(files):
        try:
            if imagefiles.inspect(f, src.max_pixels)[3]:
                gray16.add(i)
        except imagefiles.BadImage as exc:
            if src.on_error == "skip":
                skipped.append((f, str(exc)))
                continue
            raise error(f"the image {f}: {exc}", where, "fix or remove it, or set `on_error: skip` to leave such "
                        "files out", code="GS416" if isinstance(exc, imagefiles.TooLarge) else "GS441") from None
        except OSError as exc:
            raise error(f"cannot read the image {f}: {exc.strerror or exc}", where, code="GS441") from None
        good.append(i)
    return good, skipped, frozenset(gray16)


def open_split(src: ImagesSource, found: listing.Listing, shape: tuple[int | None, ...] | None,
               backend_name: str) -> tuple[ImageReader, list[int], list[tuple[str, str]]]:
    """A reader of the split's usable files, their rows, and the files skipped."""
    if backend_name != "tensorflow":
        extras.need("PIL.Image", "reading images without TensorFlow", found.where)
    h, w, mode = settings(src, shape)
    good, skipped, gray16 = check_files(list(found.files), src, found.where)
    reader = ImageReader(list(found.files), list(found.labels), found.classes, (h, w), mode, src.interpolation,
                         src.crop_to_aspect_ratio, gray16)
    return reader, good, skipped
