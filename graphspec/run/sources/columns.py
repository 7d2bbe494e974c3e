"""Sources of named columns (Parquet, Arrow IPC / Feather, Hugging Face datasets): a table's fields from its
schema, and a reader that holds at most a few blocks (row groups, record batches) in memory.

Samples are drawn block by block: an epoch visits the blocks in a seeded order and the rows of each
block in a seeded order (:func:`block_order`), so a shuffled epoch reads every block once.
"""

from __future__ import annotations

import bisect
import dataclasses
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

Field = tuple[tuple[int | None, ...], str]
CACHED_BLOCKS = 2


@dataclasses.dataclass(frozen=True)
class Table:
    """One split of a column source: its fields (name -> per-sample shape, dtype), rows, blocks, classes."""

    fields: dict[str, Field]
    rows: int
    origin: str
    where: tuple[Any, ...]
    skipped_columns: tuple[str, ...] = ()  # columns whose type no model input takes (variable lists, structs)
    classes: tuple[str, ...] | None = None  # a class-label column's names (Hugging Face ClassLabel)
    label_column: str | None = None
    files: tuple[str, ...] = ()  # TFRecord: the files of the split


def arrow_field(arrow_type: Any) -> Field | None:
    """(per-sample shape, dtype) of an Arrow column type; None for a type no model input takes."""
    import pyarrow as pa

    shape: list[int | None] = []
    t = arrow_type
    while pa.types.is_fixed_size_list(t):
        shape.append(t.list_size)
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return (tuple(shape), "string")
    if pa.types.is_boolean(t):
        return (tuple(shape), "bool")
    if pa.types.is_floating(t):
        return (tuple(shape), "float32")
    if pa.types.is_integer(t):
        return (tuple(shape), str(t.to_pandas_dtype().__name__) if hasattr(t, "to_pandas_dtype") else "int64")
    return None


def block_order(rows: Sequence[int], block_of: Callable[[int], int], seed: int, epoch: int) -> list[int]:
    """`rows` shuffled block-wise: the blocks in a seeded order, each block's rows in a seeded order."""
    groups: dict[int, list[int]] = {}
    for r in rows:
        groups.setdefault(block_of(r), []).append(r)
    rng = random.Random(f"{seed}:{epoch}")
    keys = sorted(groups)
    rng.shuffle(keys)
    out: list[int] = []
    for k in keys:
        members = groups[k]
        rng.shuffle(members)
        out.extend(members)
    return out


class ColumnReader:
    """Row `i` of a table read block by block (`read_block(b)` -> column name -> NumPy array of the block's rows)."""

    def __init__(self, table: Table, starts: list[int], read_block: Callable[[int], dict[str, Any]],
                 labels: list[int] | None = None) -> None:
        self.table, self.starts, self.read_block = table, starts, read_block
        self.fields = dict(table.fields)
        self.files = [f"{table.origin}, row {i + 1}" for i in range(table.rows)]
        self.classes = table.classes
        self.labels = labels
        names = list(self.fields)
        self.default_output = table.label_column
        rest = [n for n in names if n != table.label_column]
        self.default_input = rest[0] if len(rest) == 1 else None
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def block_of(self, i: int) -> int:
        return bisect.bisect_right(self.starts, i) - 1

    def _block(self, b: int) -> dict[str, Any]:
        with self._lock:
            if b in self._cache:
                self._cache.move_to_end(b)
                return self._cache[b]
            block = self.read_block(b)
            self._cache[b] = block
            while len(self._cache) > CACHED_BLOCKS:
                self._cache.popitem(last=False)
            return block

    def load(self, i: int) -> dict[str, Any]:
        b = self.block_of(i)
        block = self._block(b)
        return {name: block[name][i - self.starts[b]] for name in self.fields}

    def tf_load(self, i: Any) -> dict[str, Any]:
        import numpy as np
        import tensorflow as tf

        names = list(self.fields)

        def one(index: Any) -> tuple[Any, ...]:
            sample = self.load(int(index))
            return tuple(np.asarray(sample[n], dtype=object if self.fields[n][1] == "string" else self.fields[n][1])
                         if self.fields[n][1] != "string" else np.asarray(str(sample[n]).encode()) for n in names)

        types = [tf.string if self.fields[n][1] == "string" else tf.as_dtype(self.fields[n][1]) for n in names]
        values = tf.numpy_function(one, [i], types, stateful=False)
        out = {}
        for n, v in zip(names, values):
            v.set_shape(self.fields[n][0])
            out[n] = v
        return out


def numpy_columns(table: Any, fields: dict[str, Field]) -> dict[str, Any]:
    """An Arrow table's (or record batch's) columns as NumPy arrays of one row per sample."""
    import numpy as np

    out: dict[str, Any] = {}
    for name, (shape, dtype) in fields.items():
        column = table.column(name)
        if dtype == "string":
            out[name] = np.asarray(column.to_pylist(), dtype=object)
            continue
        values = column.combine_chunks() if hasattr(column, "combine_chunks") else column
        for _ in shape:
            values = values.flatten()
        arr = np.asarray(values.to_numpy(zero_copy_only=False))
        out[name] = arr.reshape((len(column), *[d or -1 for d in shape])).astype(dtype, copy=False)
    return out
