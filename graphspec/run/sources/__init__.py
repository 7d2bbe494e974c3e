"""Data sources, one module per kind, behind one small interface.

* in memory (:mod:`~graphspec.run.sources.arrays`): `keras`, `sklearn`, `npz`, `csv` read each split's
  arrays whole (and `synthetic`, made in :mod:`graphspec.run.data`);
* streamed: `images` (:mod:`~graphspec.run.sources.images`) and the other file sources. Each has
  `describe` (the files and classes a split holds, listed without decoding and without a backend:
  what lint checks), `open` (a reader that decodes samples on demand, fed to Keras by
  :mod:`graphspec.run.streams` on `tf.data`, or Grain on JAX and PyTorch), and splits and shards by
  index (:func:`~graphspec.run.sources.listing.split_by_file`,
  :func:`~graphspec.run.sources.listing.local_order`).

No module of this package imports NumPy or a backend at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphspec.run.sources.arrays import (SPLITS, Arrays, DataError, Origin, Problem, data_roots, describe_arrays, error,
                                          load_source, preflight, project_data_roots, read_csv, read_npz)
from graphspec.run.sources import ports
from graphspec.run.sources.listing import Listing, split_by_file
from graphspec.run.sources.stream import Stream
from graphspec.run.sources.columns import Table
from graphspec.spec.schema_run import (DataSpec, HuggingFaceSource, ImagesSource, ParquetSource, TextSource,
                                       TFRecordSource)

__all__ = ["SPLITS", "Arrays", "DataError", "Listing", "Origin", "Problem", "Stream", "data_roots", "describe",
           "describe_arrays",
           "error", "is_streamed", "ports", "load_source", "open_streams", "preflight", "project_data_roots", "read_csv",
           "read_npz"]

STREAMED = (ImagesSource, TextSource, ParquetSource, HuggingFaceSource, TFRecordSource)


def is_streamed(data: DataSpec) -> bool:
    """Whether the source is read as it trains (files listed, samples decoded on demand)."""
    return isinstance(data.source, STREAMED)


def describe(data: DataSpec, base_dir: Path, roots: list[Path], locate: Any) -> dict[str, Listing | Table]:
    """Each split's files and classes (or columns and rows), listed without decoding (raises a located
    DataError)."""
    from graphspec.run.sources import huggingface, images, parquet, text, tfrecord

    src = data.source
    out: dict[str, Listing | Table] = {}
    try:
        if isinstance(src, HuggingFaceSource):
            return dict(huggingface.describe(src, base_dir, roots, locate))
        for split in SPLITS:
            if getattr(src, split, None) is None:
                continue
            if isinstance(src, ParquetSource):
                out[split] = parquet.describe(src, split, base_dir, roots, locate)
            elif isinstance(src, TFRecordSource):
                out[split] = tfrecord.describe(src, split, base_dir, roots, locate)
            elif isinstance(src, ImagesSource):
                out[split] = images.describe(src, split, base_dir, roots, locate)
            elif isinstance(src, TextSource):
                out[split] = text.describe(src, split, base_dir, roots, locate)
    except Problem as p:
        raise p.located(locate) from None
    return out


def open_streams(data: DataSpec, io: Any, *, base_dir: Path, roots: list[Path], locate: Any, seed: int,
                 backend_name: str) -> dict[str, Stream]:
    """The streamed splits (train, and validation / test where the source has them or holds them out).

    `io`: the model's inputs and outputs (an image input's shape is the default `image_size`)."""
    from graphspec.run.sources import huggingface, images, parquet, text, tfrecord

    listings = describe(data, base_dir, roots, locate)
    src = data.source
    out: dict[str, Stream] = {}
    reader: Any
    rows: Any  # row numbers: an int64 NumPy array for a table, a list of positions for files
    try:
        for split, found in listings.items():
            skipped: list[tuple[str, str]] = []
            if isinstance(found, Table):
                if isinstance(src, ParquetSource):
                    reader = parquet.open_split(src, split, base_dir, roots, locate)
                elif isinstance(src, TFRecordSource):
                    reader = tfrecord.open_split(src, found, backend_name)
                else:
                    assert isinstance(src, HuggingFaceSource)
                    reader = huggingface.open_split(src, split, base_dir, roots, locate)
                import numpy as np  # (not when lint imports this package)

                rows = np.arange(reader.table.rows, dtype=np.int64)
            elif isinstance(src, ImagesSource):
                port = ports.input_for(data, io, "image")
                reader, rows, skipped = images.open_split(src, found, port.shape if port else None, backend_name)
            else:
                assert isinstance(src, TextSource)
                reader, rows, skipped = text.open_split(src, found)
            out[split] = Stream(reader, rows, split, skipped)
        train = out["train"]
        labels = train.labels or [0] * len(train)
        if "test" not in out and data.test_split > 0:
            keep, held = split_by_file(labels, data.test_split, seed)
            out["train"], out["test"] = train.take(keep), train.take(held)
            train = out["train"]
            labels = train.labels or [0] * len(train)
        if "validation" not in out and data.validation_split > 0:
            keep, held = split_by_file(labels, data.validation_split, seed + 1)
            out["train"], out["validation"] = train.take(keep), train.take(held)
    except Problem as p:
        raise p.located(locate) from None
    return out
