"""The `huggingface` source: a dataset saved with `datasets.save_to_disk`, or local Parquet / CSV / JSON files
read through `datasets`; never a download (`HF_DATASETS_OFFLINE=1`, and the path must exist in a data root).

`describe` reads a saved dataset's JSON metadata (splits, features, a `ClassLabel`'s names) without
importing `datasets`; the reader reads rows a block at a time from the memory-mapped Arrow files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from graphspec.run.sources import extras
from graphspec.run.sources.arrays import SPLITS, _resolve, error
from graphspec.run.sources.columns import ColumnReader, Field, Table, numpy_columns, pin_lengths
from graphspec.spec.schema_run import HuggingFaceSource

BLOCK_ROWS = 1024
FILE_FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}


def _where() -> tuple[Any, ...]:
    return ("data", "source", "path")


def _format(src: HuggingFaceSource, path: Path) -> str:
    if src.format != "auto":
        return src.format
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()):
        return "disk"
    if path.is_file() and path.suffix.lower() in FILE_FORMATS:
        return FILE_FORMATS[path.suffix.lower()]
    if path.is_dir():
        found = {FILE_FORMATS[p.suffix.lower()] for p in path.rglob("*") if p.suffix.lower() in FILE_FORMATS}
        if len(found) == 1:
            return found.pop()
    raise error(f"cannot tell how to read {path}: not a folder saved with save_to_disk, nor Parquet/CSV/JSON "
                "files", _where(), "set `format:`", code="GS440")


def fields_of(features: dict[str, Any]) -> tuple[dict[str, Field], tuple[str, ...], str | None, tuple[str, ...]]:
    """(fields, class names, the class-label column, columns no input takes) of a `Features` dict."""
    fields: dict[str, Field] = {}
    classes: tuple[str, ...] = ()
    label: str | None = None
    skipped: list[str] = []
    for name, f in features.items():
        kind = f.get("_type") if isinstance(f, dict) else None
        shape: list[int | None] = []
        while kind in ("Sequence", "List", "LargeList"):
            length = f.get("length")
            shape.append(length if isinstance(length, int) and length > 0 else None)  # None: read (pin_lengths)
            f = f.get("feature")
            kind = f.get("_type") if isinstance(f, dict) else None
        if kind == "Value":
            dtype = str(f.get("dtype"))
            dtype = "string" if dtype in ("string", "large_string") else "float32" if dtype.startswith("float") \
                else dtype
            fields[name] = (tuple(shape), dtype)
        elif kind == "ClassLabel" and not shape:
            fields[name] = ((), "int64")
            classes, label = tuple(str(n) for n in f.get("names") or ()), name
        elif kind in ("Array2D", "Array3D", "Array4D", "Array5D"):
            fields[name] = ((*shape, *f["shape"]), "float32" if str(f["dtype"]).startswith("float") else f["dtype"])
        else:
            skipped.append(name)
    return fields, classes, label, tuple(skipped)


def describe(src: HuggingFaceSource, base_dir: Path, roots: list[Path], locate: Any) -> dict[str, Table]:
    """Each split's fields and rows, from a saved dataset's JSON metadata (files: only that they exist)."""
    path, origin = _resolve(src.path, "path", base_dir, roots, locate, folder=True)
    fmt = _format(src, path)
    if fmt != "disk":
        return {"train": Table({}, 0, origin.label, _where())}
    names: list[Any] = [None]
    if (path / "dataset_dict.json").is_file():
        names = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
    out: dict[str, Table] = {}
    for split in SPLITS:
        theirs = {str(k): v for k, v in src.splits.items()}.get(split, split)
        if names != [None] and theirs not in names:
            if split in src.splits or split == "train":
                raise error(f"the dataset {origin.label} has no split {theirs!r} (it has {', '.join(str(n) for n in names)})",
                            _where(), "map the splits: `splits: {train: NAME}`", code="GS440")
            continue
        folder = path if names == [None] else path / theirs
        info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
        fields, classes, label, skipped = fields_of(info.get("features") or {})
        rows = sum(int(s.get("num_examples", 0)) for s in (info.get("splits") or {}).values())
        out[split] = Table(fields, rows, f"{origin.label} [{theirs}]", _where(), skipped, classes or None, label)
        if names == [None]:
            break
    return out


def _load(src: HuggingFaceSource, path: Path, split: str) -> Any:
    os.environ["HF_DATASETS_OFFLINE"] = "1"  # never a download, whatever the path looks like
    datasets = extras.need("datasets", "`kind: huggingface`", _where())
    # `datasets` reads that variable when it is imported: in a process that imported it before (a plugin, a
    # sweep's callback, a notebook), its flag is set for this load and given back afterwards.
    previous = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        return _load_offline(datasets, src, path, split)
    except _unreadable() as exc:  # corrupt Arrow files, malformed JSON or CSV
        raise error(f"cannot read the dataset {path}: {_why(exc)}", _where(), code="GS441") from None
    finally:
        datasets.config.HF_HUB_OFFLINE = previous


def _unreadable() -> tuple[type[BaseException], ...]:
    """What `datasets` and pyarrow raise for files they cannot read (a graphspec Problem is none of these); only
    called once `datasets` is imported."""
    import datasets
    import pyarrow as pa

    return OSError, ValueError, pa.ArrowException, datasets.exceptions.DatasetsError


def _why(exc: BaseException) -> str:
    """The first line of an exception's message, its cause's where `datasets` wraps one."""
    cause = exc.__cause__ if exc.__cause__ is not None and "generating the dataset" in str(exc) else exc
    text = str(cause).strip() or type(cause).__name__
    return " ".join(text.replace("\\n", "\n").splitlines()[0].split())


def _load_offline(datasets: Any, src: HuggingFaceSource, path: Path, split: str) -> Any:
    fmt = _format(src, path)
    theirs = {str(k): v for k, v in src.splits.items()}.get(split, split)
    if fmt == "disk":
        ds = datasets.load_from_disk(str(path))
        return ds[theirs] if isinstance(ds, datasets.DatasetDict) else ds
    files = str(path) if path.is_file() else None
    loaded = datasets.load_dataset(fmt, data_files=files, data_dir=None if files else str(path))
    if theirs not in loaded:
        raise error(f"the data files {path} have no split {theirs!r} (they have {', '.join(loaded)})", _where(),
                    code="GS440")
    return loaded[theirs]


def open_split(src: HuggingFaceSource, split: str, base_dir: Path, roots: list[Path], locate: Any) -> ColumnReader:
    """A reader of the split's rows, `BLOCK_ROWS` at a time from the memory-mapped Arrow files."""
    path, origin = _resolve(src.path, "path", base_dir, roots, locate, folder=True)
    ds = _load(src, path, split)
    fields, classes, label, skipped = fields_of(ds.features.to_dict())
    table = Table(fields, len(ds), f"{origin.label} [{split}]", _where(), skipped, classes or None, label)
    table = pin_lengths(table, lambda columns: ds.select_columns(columns)[0])
    rows = ds.with_format("arrow", columns=list(fields))  # Arrow tables: the same checks and conversions as Parquet
    unreadable = _unreadable()

    def read(b: int) -> dict[str, Any]:
        first, last = b * BLOCK_ROWS, min(len(ds), (b + 1) * BLOCK_ROWS)
        try:
            block = rows[first:last]
        except unreadable as exc:
            raise error(f"cannot read rows {first + 1} to {last} of {table.origin}: {_why(exc)}", _where(),
                        code="GS441") from None
        return numpy_columns(block, table.fields, table.origin, first, where=_where())

    labels = [int(v) for v in ds.with_format("numpy", columns=[label])[label]] if label else None
    return ColumnReader(table, list(range(0, max(1, len(ds)), BLOCK_ROWS)), read, labels)
