"""The `parquet` source: Parquet, Arrow IPC (file format) and Feather v2 files, columns by name like `csv`.

`describe` reads the schema and the row counts from the file's footer; the reader reads one row group
(Parquet) or record batch (Arrow) at a time, never the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphspec.run.sources import extras
from graphspec.run.sources.arrays import _resolve, error
from graphspec.run.sources.columns import ColumnReader, Table, arrow_field, numpy_columns, pin_lengths
from graphspec.spec.schema_run import ParquetSource


def _format(src: ParquetSource, path: Path) -> str:
    if src.format != "auto":
        return "arrow" if src.format == "feather" else src.format
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "arrow"


def _open(src: ParquetSource, path: Path, where: tuple[Any, ...]) -> tuple[Any, list[int], Any]:
    """(schema, rows per block, a function reading block b as an Arrow table)."""
    extras.need("pyarrow", "a Parquet or Arrow file", where)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if _format(src, path) == "parquet":
            pf = pq.ParquetFile(path)
            meta = pf.metadata
            sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            return pf.schema_arrow, sizes, lambda g, columns=None: pf.read_row_group(g, columns=columns)
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        sizes = [reader.get_batch(b).num_rows for b in range(reader.num_record_batches)]
        return reader.schema, sizes, lambda b, columns=None: reader.get_batch(b)
    except (pa.ArrowException, OSError) as exc:
        raise error(f"cannot read {path}: {exc}", where, "Arrow IPC streams must be in the file format "
                    "(pyarrow.ipc.new_file / feather.write_feather)", code="GS441") from None


def describe(src: ParquetSource, split: str, base_dir: Path, roots: list[Path], locate: Any) -> Table:
    """The split's columns (name -> per-sample shape, dtype) and row count, from the file's footer."""
    path, origin = _resolve(getattr(src, split), split, base_dir, roots, locate)
    where = ("data", "source", split)
    schema, sizes, _ = _open(src, path, where)
    fields: dict[str, Any] = {}
    skipped: list[str] = []
    for f in schema:
        kind = arrow_field(f.type)
        if kind is None:
            skipped.append(f.name)
        else:
            fields[f.name] = kind
    return Table(fields, sum(sizes), origin.label, where, tuple(skipped))


def open_split(src: ParquetSource, split: str, base_dir: Path, roots: list[Path], locate: Any) -> ColumnReader:
    """A reader of the split's rows, one block at a time."""
    path, _ = _resolve(getattr(src, split), split, base_dir, roots, locate)
    table = describe(src, split, base_dir, roots, locate)
    _, sizes, read = _open(src, path, table.where)
    starts = [0]
    for n in sizes:
        starts.append(starts[-1] + n)

    def rows(b: int, columns: list[str]) -> Any:
        import pyarrow as pa

        try:
            return read(b, columns=columns)
        except (pa.ArrowException, OSError) as exc:  # a footer that reads, over data that does not (corrupt)
            why = " ".join(str(exc).replace("\\n", "\n").split())  # Thrift's messages hold escaped newlines
            raise error(f"cannot read rows {starts[b] + 1} to {starts[b + 1]} of {table.origin}: {why}",
                        table.where, code="GS441") from None

    first_block = next((b for b, n in enumerate(sizes) if n), 0)
    table = pin_lengths(table, lambda columns: rows(first_block, columns).slice(0, 1).to_pylist()[0])
    names = list(table.fields)

    def block(b: int) -> dict[str, Any]:
        return numpy_columns(rows(b, names), table.fields, table.origin, starts[b])

    return ColumnReader(table, starts[:-1] or [0], block)
