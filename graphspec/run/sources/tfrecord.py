"""The `tfrecord` source: `tf.train.Example` records with the features the spec declares (TensorFlow only).

`describe` lists the files (a file, or a folder's `*.tfrecord*` / `*.tfrec` files) without reading
them; opening counts each file's records in one pass, and the reader then parses one file at a time
(:class:`graphspec.run.sources.columns.ColumnReader`: each file is a block).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from graphspec.run.sources.arrays import _resolve, error
from graphspec.run.sources.columns import ColumnReader, Field, Table
from graphspec.run.sources.listing import _file
from graphspec.spec.schema_run import TFRecordSource

SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec", ".tfrecord.gz")


def describe(src: TFRecordSource, split: str, base_dir: Path, roots: list[Path], locate: Any) -> Table:
    """The split's files and its declared features (no record is read)."""
    where = ("data", "source", split)
    path, origin = _resolve(getattr(src, split), split, base_dir, roots, locate, folder=True)
    if path.is_dir():
        files = [_file(Path(d) / f, origin.label, roots, where) for d, _, fs in sorted(os.walk(path))
                 for f in sorted(fs) if ".tfrec" in f.lower()]
        if not files:
            raise error(f"the folder {origin.label} has no .tfrecord files", where, code="GS440")
    else:
        files = [str(path)]
    fields: dict[str, Field] = {name: (tuple(f.shape), str(f.dtype)) for name, f in src.features.items()}
    return Table(fields, 0, origin.label, where, files=tuple(files))


def open_split(src: TFRecordSource, table: Table, backend_name: str) -> ColumnReader:
    """A reader of the records (TensorFlow backend only: GS410 elsewhere)."""
    if backend_name != "tensorflow":
        raise error(f"`kind: tfrecord` reads tf.train.Example records with TensorFlow, and this run is on "
                    f"{backend_name or 'another backend'}", ("data", "source", "kind"),
                    "train with --backend tensorflow, or convert the records to Parquet (`kind: parquet`)",
                    code="GS410")
    import tensorflow as tf

    compression = {"none": "", "gzip": "GZIP", "zlib": "ZLIB"}[src.compression]
    spec = {name: tf.io.FixedLenFeature(list(shape), tf.string if dtype == "string" else tf.as_dtype(dtype))
            for name, (shape, dtype) in table.fields.items()}
    counts = []
    for f in table.files:
        try:
            counts.append(int(tf.data.TFRecordDataset(f, compression).reduce(0, lambda n, _: n + 1)))
        except tf.errors.OpError as exc:
            raise error(f"cannot read the records of {f}: {exc.message.splitlines()[0]}", table.where,
                        code="GS441") from None
    starts = [sum(counts[:i]) for i in range(len(counts))]

    def read(b: int) -> dict[str, Any]:
        import numpy as np

        ds = tf.data.TFRecordDataset(table.files[b], compression).map(lambda r: tf.io.parse_single_example(r, spec))
        try:
            batch = next(iter(ds.batch(max(1, counts[b]))))
        except tf.errors.InvalidArgumentError as exc:
            record, why = _first_misfit(table.files[b], compression, counts[b], table.fields)
            message = f"record {record} of {table.files[b]} does not fit `features`: {why}" if record else \
                f"the records of {table.files[b]} do not fit `features`: {exc.message.splitlines()[0]}"
            raise error(message, table.where, code="GS441") from None
        return {k: np.asarray(v.numpy(), dtype=object) if table.fields[k][1] == "string" else v.numpy()
                for k, v in batch.items()}

    full = Table(table.fields, sum(counts), table.origin, table.where, files=table.files)
    return ColumnReader(full, starts or [0], read)


def _first_misfit(file: str, compression: str, count: int, fields: dict[str, Field]) -> tuple[int, str]:
    """(number counting from 1, why) of the first record of `file` that does not fit `fields`; (0, "") if none
    is found. Only after a file failed to parse. The records are read in one batch, as the reader does, and
    checked as `tf.train.Example` protocol buffers: eager parsing op by op inside the pipeline's
    `numpy_function` would deadlock it."""
    import numpy as np
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    # per feature: the list kind its dtype is read from, and its number of values (FixedLenFeature shapes are whole)
    wanted = {name: ("bytes_list" if dtype == "string" else "float_list" if np.dtype(dtype).kind == "f"
                     else "int64_list", math.prod(d for d in shape if d is not None))
              for name, (shape, dtype) in fields.items()}
    records = next(iter(tf.data.TFRecordDataset(file, compression).batch(max(1, count)))).numpy()
    for i, raw in enumerate(records, start=1):
        try:
            example = tf.train.Example.FromString(raw)
        except DecodeError as exc:
            return i, f"not a tf.train.Example ({exc})"
        features = example.features.feature
        for name, (want, size) in wanted.items():
            shape, dtype = fields[name]
            if name not in features:
                return i, f"it has no feature `{name}`"
            kind = features[name].WhichOneof("kind")
            if kind != want:
                return i, f"feature `{name}` is `{kind}`, and {dtype} is read from `{want}`"
            got = len(getattr(features[name], kind).value)
            if got != size:
                return i, f"feature `{name}` has {got} values, and shape {list(shape)} needs {size}"
    return 0, ""
