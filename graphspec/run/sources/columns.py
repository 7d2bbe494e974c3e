"""Sources of named columns (Parquet, Arrow IPC / Feather, Hugging Face datasets): a table's fields from its
schema, and a reader that holds at most a few blocks (row groups, record batches) in memory.

Samples are drawn block by block: an epoch visits the blocks in a seeded order and the rows of each
block in a seeded order (:func:`block_order`), so a shuffled epoch reads every block once.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, overload

from graphspec.run.sources.arrays import Problem, error, lost_in_pipeline

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
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type  # pandas' `category`
    while pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        shape.append(t.list_size if pa.types.is_fixed_size_list(t) else None)  # a list: its length is read
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


def block_order(rows: Any, starts: Sequence[int], seed: int, epoch: int) -> Any:
    """`rows` (a NumPy array of row numbers) shuffled block-wise: the blocks (`starts`: each block's first row) in
    an order drawn from (seed, epoch), each block's rows in one drawn from the same. Vectorized: a Python loop over
    the rows took 2 s an epoch for 5 million."""
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return rows
    blocks = np.searchsorted(np.asarray(starts, dtype=np.int64), rows, side="right") - 1
    rng = np.random.default_rng([int(seed), int(epoch), 0xB10C])
    rank = np.empty(int(blocks.max()) + 1, dtype=np.int64)
    rank[rng.permutation(rank.size)] = np.arange(rank.size)  # each block's place in the epoch
    within = rng.permutation(rows.size)  # each row's place in its block
    return rows[np.lexsort((within, rank[blocks]))]


class RowNames(Sequence[str]):
    """What messages call each row ("FILE, row 12"), made when asked for: a list of them took 420 MB and 0.9 s
    for a table of 5 million rows, before a row was read."""

    def __init__(self, origin: str, rows: int) -> None:
        self.origin, self.rows = origin, rows

    def __len__(self) -> int:
        return self.rows

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.rows))]
        if not -self.rows <= i < self.rows:
            raise IndexError(i)
        return f"{self.origin}, row {i % self.rows + 1}"


class ColumnReader:
    """Row `i` of a table read block by block (`read_block(b)` -> column name -> NumPy array of the block's rows)."""

    def __init__(self, table: Table, starts: list[int], read_block: Callable[[int], dict[str, Any]],
                 labels: list[int] | None = None) -> None:
        self.table, self.starts, self.read_block = table, starts, read_block
        self.fields = dict(table.fields)
        self.files = RowNames(table.origin, table.rows)
        self.classes = table.classes
        self.labels = labels
        names = list(self.fields)
        self.default_output = table.label_column
        rest = [n for n in [*names, *table.skipped_columns] if n != table.label_column]
        # the only other column feeds a one-input model; not when a column no input takes is beside it
        self.default_input = rest[0] if len(rest) == 1 and rest[0] in self.fields else None
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.fed: frozenset[str] = frozenset()  # the columns the model reads: NaN and infinity refused there

    def block_of(self, i: int) -> int:
        return bisect.bisect_right(self.starts, i) - 1

    def _block(self, b: int) -> dict[str, Any]:
        with self._lock:
            if b in self._cache:
                self._cache.move_to_end(b)
                return self._cache[b]
            block = self.read_block(b)
            _finite(block, self.fed, self.table, self.starts[b])
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
            try:
                sample = self.load(int(index))
            except Problem as p:
                raise lost_in_pipeline(p) from None
            return tuple(np.asarray(sample[n], dtype=object if self.fields[n][1] == "string" else self.fields[n][1])
                         if self.fields[n][1] != "string" else np.asarray(str(sample[n]).encode()) for n in names)

        types = [tf.string if self.fields[n][1] == "string" else tf.as_dtype(self.fields[n][1]) for n in names]
        values = tf.numpy_function(one, [i], types, stateful=False)
        out = {}
        for n, v in zip(names, values):
            v.set_shape(self.fields[n][0])
            out[n] = v
        return out


def sample_shape(value: Any, depth: int) -> tuple[int, ...] | None:
    """The lengths of the first `depth` levels of nested lists (a row as Python values); None for a null."""
    shape: list[int] = []
    for _ in range(depth):
        if value is None:
            return None
        shape.append(len(value))
        value = value[0] if len(value) else None
    return tuple(shape)


def _finite(block: dict[str, Any], names: frozenset[str], table: Table, first: int) -> None:
    """GS417 naming the row of the first NaN or infinity in a column the model reads (as the in-memory sources'
    checks do): a NaN target cast to a class id became -9223372036854775808, which only Keras reported."""
    import numpy as np

    for name in sorted(names):
        values = block.get(name)
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "fc" or values.size == 0:
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            at = np.unravel_index(int(np.argmax(bad)), bad.shape)
            raise error(f"{table.origin}, row {first + int(at[0]) + 1}: column `{name}` holds {values[at]} "
                        f"({int(bad.sum()):,} non-finite values in rows {first + 1} to {first + len(values)})",
                        table.where, "drop or fill those rows: a NaN or infinity in the data makes the loss NaN "
                        "whatever the learning rate", code="GS417")


def pin_lengths(table: Table, first_row: Callable[[list[str]], dict[str, Any]]) -> Table:
    """The table with each list column's lengths (`None` in its shape: Parquet and Arrow `list`, a `Sequence`
    without a length) read from its first row (`first_row(columns)` -> column -> that row's value as Python
    values); :func:`numpy_columns` then requires every row to hold as many. A table of no rows is left as it is."""
    ragged = [n for n, (shape, _) in table.fields.items() if None in shape]
    if not ragged or table.rows == 0:
        return table
    row = first_row(ragged)
    fields = dict(table.fields)
    for name in ragged:
        shape, dtype = fields[name]
        found = sample_shape(row[name], len(shape))
        if found is None:
            raise error(f"{table.origin}, row 1: column `{name}` holds a null", table.where,
                        "every row of a column that feeds the model needs a value", code="GS417")
        fields[name] = (tuple(d if d is not None else f for d, f in zip(shape, found)), dtype)
    return dataclasses.replace(table, fields=fields)


def numpy_columns(table: Any, fields: dict[str, Field], origin: str = "", first: int = 0,
                  where: tuple[Any, ...] = ("data", "source")) -> dict[str, Any]:
    """An Arrow table's (or record batch's) columns as NumPy arrays of one row per sample.

    A null (a row without a value, or a null inside a list) is GS417, and a list of another length than the
    column's (its fixed size, or the length :func:`pin_lengths` read) GS411, each naming the row: row
    `first` + 1 is the block's first. Before, a null became NaN (or, in an integer column, an arbitrary
    integer), and lists of uneven lengths were cut into rows at the wrong places. `where` locates them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, Any] = {}
    for name, (shape, dtype) in fields.items():
        column = table.column(name)
        values = column.combine_chunks() if hasattr(column, "combine_chunks") else column
        if hasattr(values, "dictionary_decode"):  # a dictionary-encoded column (pandas' `category`): its values
            values = values.dictionary_decode()
        if isinstance(values.type, pa.ExtensionType):  # e.g. `datasets`' Array2D: nested lists underneath
            values = values.storage
        per_row = 1  # values of the current level per row
        for level in range(len(shape) + 1):
            if values.null_count:
                row = int(np.flatnonzero(~np.asarray(values.is_valid().to_numpy(zero_copy_only=False)))[0])
                raise error(f"{origin}, row {first + row // per_row + 1}: column `{name}` holds a null"
                            + (" inside a list" if level else ""), where,
                            "every row of a column that feeds the model needs a value", code="GS417")
            if level == len(shape):
                break
            lengths = np.asarray(pc.list_value_length(values).to_numpy(zero_copy_only=False))
            fixed = shape[level]
            expected = fixed if fixed is not None else int(lengths[0]) if len(lengths) else 0
            wrong = np.flatnonzero(lengths != expected)
            if wrong.size:
                i = int(wrong[0])
                raise error(f"{origin}, row {first + i // per_row + 1}: column `{name}` holds a list of "
                            f"{int(lengths[i])} values where its rows hold {expected}", where,
                            "every row of a vector column must hold the same number of values", code="GS411")
            per_row *= max(expected, 1)
            values = values.flatten()
        if dtype == "string":
            out[name] = np.asarray(values.to_pylist(), dtype=object).reshape(
                (len(column), *[d or -1 for d in shape]))
            continue
        arr = np.asarray(values.to_numpy(zero_copy_only=False))
        out[name] = arr.reshape((len(column), *[d or -1 for d in shape])).astype(dtype, copy=False)
    return out
