"""In-memory data sources: each split's arrays read from `.npz` / CSV files, `keras.datasets` or scikit-learn;
and what every source shares: the data roots, located problems.

NumPy is imported inside the readers: lint describes sources with the lean install.

Files named in a spec are the spec author's choice, not the user's, so:

* a data path written in a spec must resolve (symbolic links followed) inside a data root: the
  spec's folder (for a run folder: the current folder), a `--data-root`, or a folder listed under
  `[tool.graphspec] data_roots` in the project's pyproject.toml (GS415). A path given on the command
  line (`--set data.source.train=...`) may be anywhere: the user typed it;
* only regular files are read (never a FIFO or a device), and sizes are checked before reading:
  `.npz` members through their zip directory and their array headers
  (:mod:`graphspec.build.archives`), CSV files by size and a 128 KiB field limit (GS416);
* messages quote file content (column names, cell values, member names) truncated, and never
  for a file outside the data roots.
"""

from __future__ import annotations

import csv
import io
import dataclasses
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphspec.build import archives
from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError
from graphspec.spec.schema_run import CsvSource, DataSpec, KerasSource, NpzSource, SklearnSource

if TYPE_CHECKING:
    import numpy as np

Arrays = dict[str, "np.ndarray"]
SPLITS = ("train", "validation", "test")
MAX_QUOTE = 40
CSV_FIELD_LIMIT = 128 << 10


class Problem(Exception):
    """A data problem at a path of the spec; turned into a located DataError at the module's boundary."""

    def __init__(self, message: str, path: tuple[Any, ...], hint: str | None = None, code: str = "GS411") -> None:
        super().__init__(message)
        self.message, self.path, self.hint, self.code = message, path, hint, code

    def located(self, locate: Any) -> DataError:
        where = Location("<data>") if locate is None else locate(self.path)
        return DataError([Diagnostic(self.code, Severity.ERROR, self.message, where, self.hint)])


class DataError(SpecError):
    """The data does not fit the model (or cannot be read); located at the spec's data section."""


def error(message: str, path: tuple[Any, ...], hint: str | None = None, *, code: str = "GS411") -> Problem:
    return Problem(message, path, hint, code)


# A Problem raised inside TensorFlow's `tf.numpy_function` (a column source's reader on TensorFlow) reaches `fit`
# as `UnknownError: <stack traces unavailable>`; the reader keeps it here for graphspec.run.failures.fit_failed.
_LOST: list[Problem] = []


def lost_in_pipeline(problem: Problem) -> Problem:
    """Keep `problem` (raised where TensorFlow drops it) for :func:`take_lost`; returns it, to raise."""
    _LOST[:] = [problem]
    return problem


def take_lost() -> Problem | None:
    """The problem a reader kept since the last call, if any (and forget it)."""
    found = _LOST[0] if _LOST else None
    _LOST.clear()
    return found


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a split's arrays come from, and whether messages may quote the file's content."""

    label: str
    shown: bool = True

    def quote(self, text: str) -> str:
        """`text` from the file, truncated; nothing for a file outside the data roots."""
        if not self.shown:
            return "(not shown: the file is outside the data roots)"
        text = text.encode("ascii", "backslashreplace").decode("ascii")
        return repr(text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + "...")


# -- data roots ----------------------------------------------------------------------------------------------
def project_data_roots(start: Path | None = None) -> list[Path]:
    """Folders under `[tool.graphspec] data_roots` of the project's configuration (:mod:`graphspec.spec.project`)."""
    from graphspec.spec import project

    return project.data_roots(start)


def data_roots(given: list[Path] | list[str] | None, default: Path) -> list[Path]:
    """The folders data files named in a spec may come from: `--data-root`, the project's, and `default`."""
    return list(dict.fromkeys([*(Path(p).resolve() for p in given or []), *project_data_roots(), default.resolve()]))


def _resolve(rel: str, split: str, base_dir: Path, roots: list[Path], locate: Any, *,
             folder: bool = False) -> tuple[Path, Origin]:
    where = ("data", "source", split)
    path = Path(rel) if Path(rel).is_absolute() else base_dir / rel
    resolved = path.resolve()
    inside = any(resolved.is_relative_to(r) for r in roots)
    on_command_line = locate is not None and str(locate(where).file).startswith("--set ")
    if not inside and not on_command_line:
        raise error(f"the {split} data {rel} is outside the data roots ({', '.join(str(r) for r in roots)}): a "
                    "spec reads data only from there", where,
                    f"if you mean it, pass --data-root FOLDER, or give the file yourself: "
                    f"--set data.source.{split}=PATH", code="GS415")
    if not resolved.exists():
        raise error(f"cannot read the {split} data {path}: no such {'folder' if folder else 'file'}", where)
    if folder and resolved.is_dir():
        return resolved, Origin(str(path), inside)
    if not resolved.is_file():
        raise error(f"the {split} data {path} is not a regular file (a folder, a FIFO or a device)", where,
                    code="GS416")
    return resolved, Origin(str(path), inside)


def preflight(data: DataSpec, base_dir: Path, roots: list[Path], locate: Any) -> None:
    """What can be checked of the data files without reading them (and without a model): where they are,
    that they are regular files, and an .npz file's zip directory. Raises a located DataError."""
    src = data.source
    if not isinstance(src, (NpzSource, CsvSource)):
        return
    try:
        for split in SPLITS:
            rel = getattr(src, split)
            if rel is None:
                continue
            path, origin = _resolve(rel, split, base_dir, roots, locate)
            if isinstance(src, NpzSource):
                try:
                    archives.check_zip(path)
                except archives.ArchiveProblem as exc:
                    raise error(f"the data {origin.label}: {exc}", ("data", "source", split), code="GS416") from None
    except Problem as p:
        raise p.located(locate) from None


# -- sources -------------------------------------------------------------------------------------------------
def load_source(data: DataSpec, base_dir: Path, roots: list[Path] | None = None,
                locate: Any = None) -> dict[str, tuple[Arrays, Origin]]:
    """The source's arrays per split, by the source's own names, and where each split comes from."""
    src = data.source
    if isinstance(src, KerasSource):
        return {k: (v, Origin(f"keras.datasets.{src.name}")) for k, v in _keras_dataset(src).items()}
    if isinstance(src, SklearnSource):
        return {k: (v, Origin(f"sklearn {src.name}")) for k, v in _sklearn_dataset(src).items()}
    if isinstance(src, (NpzSource, CsvSource)):
        out: dict[str, tuple[Arrays, Origin]] = {}
        for split in SPLITS:
            rel = getattr(src, split)
            if rel is None:
                continue
            path, origin = _resolve(rel, split, base_dir, roots if roots is not None else [base_dir.resolve()],
                                    locate)
            where = ("data", "source", split)
            try:
                arrays = read_npz(path, origin, where) if isinstance(src, NpzSource) else read_csv(path, src, origin)
            except OSError as exc:
                raise error(f"cannot read the {split} data {origin.label}: {exc.strerror or exc}", where) from None
            except MemoryError:
                raise error(f"the {split} data {origin.label} does not fit in memory", where, code="GS416") from None
            except ValueError as exc:
                raise error(f"cannot read the {split} data {origin.label}: {exc}", where) from None
            out[split] = (arrays, origin)
        return out
    raise AssertionError(f"no loader for {type(src).__name__}")


def _keras_dataset(src: KerasSource) -> dict[str, Arrays]:
    import numpy as np

    from graphspec.build.backend import keras

    module = getattr(keras.datasets, src.name)
    kwargs: dict[str, Any] = {}
    if src.num_words is not None:
        kwargs["num_words"] = src.num_words
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
    except Exception as exc:  # network, corrupt cache
        raise error(f"keras.datasets.{src.name} could not be loaded: {exc}", ("data", "source"),
                    "it downloads on first use into ~/.keras/datasets (or $KERAS_HOME/datasets)") from None
    if src.maxlen is not None:
        x_train = keras.utils.pad_sequences(x_train, maxlen=src.maxlen)
        x_test = keras.utils.pad_sequences(x_test, maxlen=src.maxlen)
    return {"train": {"x": np.asarray(x_train), "y": np.asarray(y_train)},
            "test": {"x": np.asarray(x_test), "y": np.asarray(y_test)}}


def _sklearn_dataset(src: SklearnSource) -> dict[str, Arrays]:
    try:
        import sklearn.datasets
    except ImportError:
        raise error(f"`sklearn:{src.name}` needs scikit-learn, which is not installed", ("data", "source"),
                    "pip install scikit-learn (every keras-graphspec backend extra brings it)") from None

    import numpy as np

    x, y = getattr(sklearn.datasets, f"load_{src.name}")(return_X_y=True)
    return {"train": {"x": np.asarray(x), "y": np.asarray(y)}}


# -- .npz ------------------------------------------------------------------------------------------------------
def _npy_header(fp: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    import numpy as np

    fmt = np.lib.format
    version = fmt.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(fp)
    else:
        shape, _, dtype = fmt.read_array_header_2_0(fp)
    return tuple(int(d) for d in shape), dtype


def npz_headers(path: Path, origin: Origin, where: tuple[Any, ...]) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Each array's shape and dtype in an .npz file, read from its zip directory and .npy headers only (no array
    is loaded); raises GS416 for a file that is not an .npz of plain arrays, or states more than it holds."""
    label = origin.label

    def bad(message: str) -> Problem:
        return error(f"the data {label}: {message}", where, code="GS416")

    if not zipfile.is_zipfile(path):
        raise bad("not an .npz archive (a zip of .npy arrays)")
    try:
        infos = archives.check_zip(path)
    except archives.ArchiveProblem as exc:
        raise bad(str(exc)) from None
    found: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {}
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise bad(f"member {origin.quote(name)} is not an array (.npy)")
            try:
                with zf.open(info) as fp:
                    shape, dtype = _npy_header(fp)
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise bad(f"member {origin.quote(name)} is not a readable .npy array ({exc})") from None
            if dtype.hasobject:
                raise bad(f"array {origin.quote(name[:-4])} holds Python objects, which graphspec never unpickles")
            if not shape:
                raise bad(f"array {origin.quote(name[:-4])} is 0-d (a single value): data arrays hold one sample "
                          "per row")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > info.file_size:
                raise bad(f"array {origin.quote(name[:-4])} states shape {shape} ({archives.size_text(nbytes)}) but "
                          f"holds {archives.size_text(info.file_size)}")
            found[name[:-4]] = (shape, dtype)
    return found


def read_npz(path: Path, origin: Origin, where: tuple[Any, ...]) -> Arrays:
    """The arrays of an .npz file, once its zip directory and every array header pass the checks (GS416)."""
    import numpy as np

    npz_headers(path, origin, where)
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def stand_ins(headers: dict[str, tuple[tuple[int, ...], Any]]) -> Arrays:
    """Read-only arrays of the stated shapes and dtypes that take no memory (every element is the one zero):
    what the checks against a model need of arrays that were not loaded."""
    import numpy as np

    return {name: np.broadcast_to(np.zeros((), dtype=dtype), shape) for name, (shape, dtype) in headers.items()}


def describe_arrays(data: DataSpec, base_dir: Path, roots: list[Path], locate: Any) -> dict[str, tuple[Arrays, Origin]]:
    """An .npz or CSV source's splits as :func:`stand_ins`, from the .npz headers or the CSV header line: the
    names, shapes and dtypes :func:`load_source` would give, without reading the data. Other sources: {}."""
    src = data.source
    if not isinstance(src, (NpzSource, CsvSource)):
        return {}
    out: dict[str, tuple[Arrays, Origin]] = {}
    try:
        for split in SPLITS:
            rel = getattr(src, split)
            if rel is None:
                continue
            path, origin = _resolve(rel, split, base_dir, roots, locate)
            where = ("data", "source", split)
            try:
                found = npz_headers(path, origin, where) if isinstance(src, NpzSource) else _csv_header(path, src)
            except OSError as exc:
                raise error(f"cannot read the {split} data {origin.label}: {exc.strerror or exc}", where) from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise error(f"cannot read the {split} data {origin.label}: {exc}", where) from None
            out[split] = (stand_ins(found), origin)
    except Problem as p:
        raise p.located(locate) from None
    return out


# -- CSV -------------------------------------------------------------------------------------------------------
def read_csv(path: Path, src: CsvSource, origin: Origin) -> Arrays:
    """Columns of numbers; the header's names (or `0`, `1`, ...) name them."""
    import numpy as np

    budget = archives.memory_bytes() // 16  # Python's rows take about ten times the file's size
    size = path.stat().st_size
    if size > budget:
        raise ValueError(f"the file is {archives.size_text(size)}, over the {archives.size_text(budget)} a CSV "
                         "may have on this machine (convert it to .npz)")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet's byte-order mark is no part of a name
    except UnicodeDecodeError:
        raise ValueError(f"it is {not_utf8(path)}") from None
    old_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=src.delimiter)
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise ValueError(f"row {reader.line_num}: {_csv_problem(exc)}") from None
    finally:
        csv.field_size_limit(old_limit)
    del text
    rows = [r for r in rows if r]
    if src.header:
        if not rows:
            raise ValueError("the file is empty")
        names, rows = [c.strip() for c in rows[0]], rows[1:]
    else:
        names = [str(i) for i in range(len(rows[0]) if rows else 0)]
    columns: Arrays = {}
    for j, name in enumerate(names):
        try:
            values = np.array([float(r[j]) for r in rows], dtype=np.float64)
        except (ValueError, IndexError):
            bad = next((i for i, r in enumerate(rows) if len(r) <= j or not _is_number(r[j])), 0)
            column = repr(name) if origin.shown and len(name) <= MAX_QUOTE else str(j + 1)
            cell = rows[bad][j] if len(rows[bad]) > j else None
            what = "missing" if cell is None else f"not a number: {origin.quote(cell)}"
            raise ValueError(f"column {column}, row {bad + 1 + int(src.header)}: {what}") from None
        integral = (values.size > 0 and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values)))
                    and bool(np.all(np.abs(values) < 2.0**63)))
        columns[name] = values.astype(np.int64) if integral else values.astype(np.float32)
    return columns


def _csv_header(path: Path, src: CsvSource) -> dict[str, tuple[tuple[int, ...], Any]]:
    """A CSV file's columns as :func:`read_csv` names them, each stated as (rows,) int64 (the dtype that no
    model input refuses), from the header line and a count of the lines."""
    old_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # as read_csv reads it
            reader = csv.reader(fh, delimiter=src.delimiter)
            try:
                first = next((r for r in reader if r), None)
            except csv.Error as exc:
                raise ValueError(f"row {reader.line_num}: {_csv_problem(exc)}") from None
            except UnicodeDecodeError:
                raise ValueError(f"it is {not_utf8(path)}") from None
    finally:
        csv.field_size_limit(old_limit)
    if first is None:
        if src.header:
            raise ValueError("the file is empty")
        return {}
    lines, last = 0, b"\n"
    with open(path, "rb") as fb:
        for chunk in iter(lambda: fb.read(1 << 20), b""):
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    lines += last != b"\n"  # a last line without its newline
    names = [c.strip() for c in first] if src.header else [str(i) for i in range(len(first))]
    rows = max(0, lines - int(src.header))
    return {name: ((rows,), "int64") for name in names}


def not_utf8(path: Path) -> str:
    """Where a file stops being UTF-8, for a message: "not UTF-8 text: byte 0xe9 on line 2"."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: byte 0x{data[exc.start]:02x} on line {data[:exc.start].count(10) + 1}"
    return "not UTF-8 text"


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a field is over {CSV_FIELD_LIMIT >> 10} KiB"
    return text[:200]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
