"""The `text` source: `.txt` files, one sub-folder per class (`text_dataset_from_directory`'s layout) or a
manifest; each file is one string sample, for `TextVectorization` / `StringLookup` nodes.

Opening checks every file's size (`max_bytes`) and encoding, one file at a time; the reader then
reads a file when its sample is drawn: `tf.io.read_file` on TensorFlow, Python elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from graphspec.run.sources import listing
from graphspec.run.sources.arrays import error
from graphspec.spec.schema_run import TextSource

SUFFIXES = (".txt",)


def describe(src: TextSource, split: str, base_dir: Path, roots: list[Path], locate: Any) -> listing.Listing:
    """The split's text files and classes, without opening one."""
    return listing.describe(src, split, base_dir, roots, locate, SUFFIXES)


class TextReader:
    """File `i` as one string (UTF-8 text), with its class id."""

    def __init__(self, files: list[str], labels: list[int], classes: tuple[str, ...], encoding: str) -> None:
        self.files, self.labels, self.classes, self.encoding = files, labels, classes, encoding
        self.fields: dict[str, tuple[tuple[int | None, ...], str]] = {"text": ((), "string"), "label": ((), "int32")}
        self.default_input, self.default_output = "text", "label"

    def load(self, i: int) -> dict[str, Any]:
        import numpy as np

        with open(self.files[i], "rb") as fh:
            text = fh.read().decode(self.encoding, errors="replace")
        return {"text": np.array(text, dtype=object), "label": np.int32(self.labels[i])}

    def tf_load(self, i: Any) -> dict[str, Any]:
        import tensorflow as tf

        raw = tf.io.read_file(tf.gather(tf.constant([os.fsencode(f) for f in self.files]), i))
        if self.encoding.lower().replace("-", "") not in ("utf8", "ascii"):
            raw = tf.strings.unicode_transcode(raw, self.encoding, "UTF-8")
        return {"text": raw, "label": tf.gather(tf.constant(self.labels, tf.int32), i)}


def check_files(files: list[str], src: TextSource, where: tuple[Any, ...]) -> tuple[list[int], list[tuple[str, str]]]:
    """Positions of usable files, and (file, why) of those skipped with `on_error: skip` (GS441 / GS416 else)."""
    good: list[int] = []
    skipped: list[tuple[str, str]] = []
    for i, f in enumerate(files):
        why, code = None, "GS441"
        try:
            size = os.stat(f).st_size
            if size > src.max_bytes:
                why, code = f"{size:,} bytes, over `max_bytes` ({src.max_bytes:,})", "GS416"
            else:
                with open(f, "rb") as fh:
                    fh.read().decode(src.encoding)
        except UnicodeDecodeError as exc:
            why = f"not {src.encoding} text ({exc.reason} at byte {exc.start})"
        except LookupError:
            raise error(f"unknown encoding {src.encoding!r}", where[:-1] + ("encoding",), code="GS410") from None
        except OSError as exc:
            why = f"cannot be read: {exc.strerror or exc}"
        if why is None:
            good.append(i)
        elif src.on_error == "skip":
            skipped.append((f, why))
        else:
            raise error(f"the text file {f}: {why}", where, "fix or remove it, or set `on_error: skip`", code=code)
    return good, skipped


def open_split(src: TextSource, found: listing.Listing) -> tuple[TextReader, list[int], list[tuple[str, str]]]:
    """A reader of the split's usable files, their rows, and the files skipped."""
    good, skipped = check_files(list(found.files), src, found.where)
    return TextReader(list(found.files), list(found.labels), found.classes, src.encoding), good, skipped
