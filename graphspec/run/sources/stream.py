"""A streamed split: a reader (one source's files, decoded on demand) and the samples of it this split uses.

The interface every streamed source implements (:class:`Reader`): `fields` (each field's per-sample
shape and dtype, known without decoding), `load` (one sample as NumPy arrays, for Grain-less
Python pipelines: Grain on JAX and PyTorch), and `tf_load` (the same as a `tf.data` map function, on
TensorFlow). Splits and shards select rows; nothing here holds decoded data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol


class Reader(Protocol):
    """One source split's samples, decoded when asked for."""

    files: Sequence[str]  # one per sample: what error messages and predict's CSV name
    labels: Sequence[int] | None
    classes: tuple[str, ...] | None
    fields: dict[str, tuple[tuple[int | None, ...], str]]  # name -> (per-sample shape, dtype)
    default_input: str
    default_output: str | None

    def load(self, i: int) -> dict[str, Any]:
        """Sample `i` as NumPy arrays by field name."""

    def tf_load(self, i: Any) -> dict[str, Any]:
        """Sample `i` (a scalar int64 tensor) as tensors by field name, inside a tf.data map."""


@dataclasses.dataclass
class Stream:
    """The rows of a reader one split uses (`split`: the source's split they come from)."""

    reader: Any
    rows: Any  # the reader's row numbers this split uses: an int64 NumPy array
    source: str
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (file, why)
    ports: dict[str, str] = dataclasses.field(default_factory=dict)  # model input/output name -> field
    transforms: dict[str, list[Any]] = dataclasses.field(default_factory=dict)  # port name -> data.transforms
    workers: int | None = None

    def __post_init__(self) -> None:
        import numpy as np  # (lint imports this module without NumPy; a Stream is only made to read data)

        # one int64 array: a list of row numbers took 36 bytes a row (160 MB for a table of 5 million)
        self.rows = np.asarray(self.rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, index: Sequence[int] | slice) -> Stream:
        import numpy as np

        rows = self.rows[index] if isinstance(index, slice) else self.rows[np.asarray(index, dtype=np.int64)]
        return dataclasses.replace(self, rows=rows)

    @property
    def labels(self) -> list[int] | None:
        labels = self.reader.labels
        return None if labels is None else [labels[r] for r in self.rows.tolist()]

    def where(self) -> tuple[Any, ...]:
        return ("data", "source", self.source)
