"""Files of a folder-per-class dataset or a manifest, listed once (paths and class ids, never contents).

What every file source shares: `describe` lists a split's files and classes without opening one
(lint does it with the lean install: no NumPy, no backend); :func:`split_by_file` holds out a
seeded, stratified part of a listing; :func:`local_order` is one process's part of an epoch.

Files are listed as their real paths: a link is followed only to a file inside the data roots
(GS415 otherwise); linked sub-folders are not descended into (as `image_dataset_from_directory`).
"""

from __future__ import annotations

import csv
import io
import dataclasses
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphspec.run.sources.arrays import MAX_QUOTE, _resolve, error, not_utf8

MANIFESTS = (".csv", ".parquet")
MAX_MANIFEST_BYTES = 256 << 20


@dataclasses.dataclass(frozen=True)
class Listing:
    """One split's files (real paths), their class ids, and the class names (in id order)."""

    files: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    origin: str  # the split's folder or manifest, as written in the spec
    where: tuple[Any, ...]  # the spec path errors about it point at

    def __len__(self) -> int:
        return len(self.files)

    def counts(self) -> list[int]:
        """Files per class, in class-id order."""
        out = [0] * len(self.classes)
        for label in self.labels:
            out[label] += 1
        return out


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _quote(name: str) -> str:
    name = name.encode("ascii", "backslashreplace").decode("ascii")
    return repr(name if len(name) <= MAX_QUOTE else name[:MAX_QUOTE] + "...")


def describe(src: Any, split: str, base_dir: Path, roots: list[Path], locate: Any,
             suffixes: tuple[str, ...], *, strict_roots: bool = True) -> Listing:
    """The files of split `split` of an `images` / `text` source: a class-per-folder tree or a manifest."""
    rel = getattr(src, split)
    where = ("data", "source", split)
    path, origin = _resolve(rel, split, base_dir, roots, locate, folder=True)
    file_roots = roots if origin.shown else [*roots, path if path.is_dir() else path.parent]
    if path.is_dir():
        return _folder(path, origin.label, src.classes, suffixes, file_roots, where)
    if path.suffix.lower() not in MANIFESTS:
        raise error(f"the {split} data {origin.label} is neither a folder nor a manifest (.csv, .parquet)", where,
                    "name a folder with one sub-folder per class, or a CSV/Parquet file of path,label rows",
                    code="GS410")
    return _manifest(path, origin.label, src, suffixes, file_roots, where)


def _folder(root: Path, label: str, classes: list[str] | None, suffixes: tuple[str, ...], roots: list[Path],
            where: tuple[Any, ...]) -> Listing:
    found = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=True))
    if classes is None:
        names = found
        if not names:
            raise error(f"the data folder {label} has no class folders: it holds one sub-folder per class",
                        where, "put the images of each class in a sub-folder named after it", code="GS440")
    else:
        names = list(classes)
        missing = [c for c in names if c not in found]
        if missing:
            raise error(f"`classes` names {', '.join(_quote(c) for c in missing[:5])}, which the data folder "
                        f"{label} has no sub-folder for", where[:-1] + ("classes",),
                        f"its sub-folders: {', '.join(_quote(c) for c in found[:10]) or 'none'}", code="GS440")
    files: list[str] = []
    labels: list[int] = []
    for class_id, name in enumerate(names):
        folder = root / name
        real_folder = Path(os.path.realpath(folder))
        if not _inside(real_folder, roots):
            raise error(f"the class folder {_quote(name)} of {label} links outside the data roots", where,
                        "a spec reads data only from the data roots (--data-root adds one)", code="GS415")
        before = len(files)
        for dirpath, dirnames, filenames in os.walk(real_folder):
            dirnames.sort()
            for fname in sorted(filenames):
                if not fname.lower().endswith(suffixes):
                    continue
                files.append(_file(Path(dirpath) / fname, label, roots, where))
                labels.append(class_id)
        if len(files) == before:
            raise error(f"the class folder {_quote(name)} of {label} has no {'/'.join(suffixes)} files", where,
                        "remove the empty folder, or list the classes to use in `classes:`", code="GS440")
    return Listing(tuple(files), tuple(labels), tuple(names), label, where)


def _file(path: Path, label: str, roots: list[Path], where: tuple[Any, ...]) -> str:
    real = Path(os.path.realpath(path))
    if not _inside(real, roots):
        how = "links" if _inside(Path(os.path.abspath(path)), roots) else "lies"  # a link, or a path written so
        raise error(f"{_quote(path.name)} in {label} {how} outside the data roots", where,
                    "a spec reads data only from the data roots (--data-root adds one)", code="GS415")
    if not real.is_file():
        raise error(f"{_quote(path.name)} in {label} is not a regular file (a broken link, a FIFO or a device)",
                    where, code="GS416")
    return str(real)


def _manifest_rows(path: Path, src: Any, label: str, where: tuple[Any, ...]) -> list[tuple[str, str]]:
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise error(f"the manifest {label} is {size:,} bytes, over {MAX_MANIFEST_BYTES:,}", where, code="GS416")
    columns = (src.path_column, src.label_column)
    if path.suffix.lower() == ".parquet":
        from graphspec.run.sources import extras

        pq = extras.need("pyarrow.parquet", "a Parquet manifest", where)
        import pyarrow as pa

        try:
            _has_columns(pq.read_schema(path).names, columns, label, where)
            table = pq.read_table(path, columns=list(columns))
        except (OSError, pa.ArrowException) as exc:
            raise error(f"cannot read the manifest {label}: {' '.join(str(exc).split())}", where,
                        code="GS441") from None
        return [("" if p is None else str(p), "" if c is None else str(c))  # a null is a missing cell, as in CSV
                for p, c in zip(table.column(0).to_pylist(), table.column(1).to_pylist())]
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet's byte-order mark is no part of a name
    except UnicodeDecodeError:
        raise error(f"the manifest {label} is {not_utf8(path)}", where, "save it as UTF-8", code="GS441") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _has_columns(list(reader.fieldnames or []), columns, label, where)
    return [(row[columns[0]] or "", row[columns[1]] or "") for row in reader]


def _has_columns(fields: list[str], columns: tuple[str, str], label: str, where: tuple[Any, ...]) -> None:
    absent = [c for c in columns if c not in fields]
    if absent:
        raise error(f"the manifest {label} has no column {', '.join(_quote(c) for c in absent)} (it has "
                    f"{', '.join(_quote(f) for f in fields[:10]) or 'no header'})", where,
                    "set `path_column` / `label_column`", code="GS440")


def _manifest(path: Path, label: str, src: Any, suffixes: tuple[str, ...], roots: list[Path],
              where: tuple[Any, ...]) -> Listing:
    rows = _manifest_rows(path, src, label, where)
    if not rows:
        raise error(f"the manifest {label} lists no files", where, code="GS440")
    first = 1 if path.suffix.lower() == ".parquet" else 2  # the row number of the first entry (CSV: the header's next)
    unlabelled = next((i for i, (_, c) in enumerate(rows) if not c.strip()), None)
    if unlabelled is not None:  # it would have made a class named ''
        raise error(f"the manifest {label}, row {unlabelled + first}: no label", where,
                    f"give every row a `{src.label_column}`, or leave the row out", code="GS440")
    names = sorted({c for _, c in rows}, key=lambda c: (0, int(c), c) if c.lstrip("-").isdigit() else (1, 0, c))
    if src.classes is not None:
        unknown = sorted({c for _, c in rows} - set(src.classes))
        if unknown:
            raise error(f"the manifest {label} has labels that `classes` does not list: "
                        f"{', '.join(_quote(c) for c in unknown[:5])}", where, code="GS440")
        names = list(src.classes)
    ids = {c: i for i, c in enumerate(names)}
    files: list[str] = []
    for i, (rel, _) in enumerate(rows):
        if not rel:
            raise error(f"the manifest {label}, row {i + first}: no path", where, code="GS440")
        if not rel.lower().endswith(suffixes):
            raise error(f"the manifest {label}, row {i + first}: {_quote(rel)} is not a {'/'.join(suffixes)} file",
                        where, code="GS440")
        p = Path(rel)
        p = p if p.is_absolute() else path.parent / p
        if not p.exists():
            raise error(f"the manifest {label}, row {i + first}: {_quote(rel)} does not exist", where, code="GS440")
        files.append(_file(p, label, roots, where))
    return Listing(tuple(files), tuple(ids[c] for _, c in rows), tuple(names), label, where)


# -- splits and shards ---------------------------------------------------------------------------------
def split_by_file(labels: Sequence[int], fraction: float, seed: int) -> tuple[Any, Any]:
    """(kept, held out) positions, as int64 NumPy arrays: `fraction` of every class's files, drawn from `seed`, in
    listing order. Each class draws with `random.Random(f"{seed}:{label}").sample` over its positions' indices,
    so the split is the one graphspec has always drawn; the positions themselves stay in NumPy (Python lists
    of them took about 400 MB at once for a table of 5 million rows)."""
    import numpy as np

    values = np.asarray(labels, dtype=np.int64)
    held: list[Any] = []
    for label in np.unique(values).tolist():
        members = np.flatnonzero(values == label)
        k = int(round(len(members) * fraction))
        k = min(max(k, 1), len(members) - 1) if len(members) > 1 and fraction > 0 else 0
        rng = random.Random(f"{seed}:{label}")
        held.append(members[np.asarray(rng.sample(range(len(members)), k), dtype=np.int64)])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.ones(len(values), dtype=bool)
    keep[out] = False
    return np.flatnonzero(keep), out


def local_order(order: Sequence[int], batch_size: int, index: int = 0, count: int = 1,
                replicas: int = 1) -> tuple[Sequence[int], int]:
    """One process's samples of an epoch drawn in `order`, and its batch size.

    Every global batch of `batch_size` is trimmed to a multiple of `replicas` and cut into `count`
    equal parts; process `index` takes part `index` (:class:`graphspec.run.distribute.Shard`).
    The parts of processes 0..count-1 of each batch, concatenated, are that batch of one process.
    """
    if count == 1 and replicas == 1:
        return order, batch_size  # as it is (a NumPy array of millions of rows stays one)
    out: list[int] = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        k = (len(batch) - len(batch) % replicas) // count
        out.extend(batch[index * k:(index + 1) * k])
    return out, batch_size // count
