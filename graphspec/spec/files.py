"""Files that layer arguments name: only regular files inside the spec's folder or a data root.

Keras reads some arguments as file paths when they are strings: the `vocabulary` of
`StringLookup`, `IntegerLookup` and `TextVectorization` (through `tf.io.gfile`, which
also reads `gs://` and other URLs, devices and pipes). A spec from a pull request could
so read `/etc/passwd` into a model (and `save` would embed it), exhaust memory with
`/dev/zero`, or hang on a FIFO. Here such a path must name a regular file, inside the
spec's folder or a folder given on the command line (`--data-root`), at most
:data:`MAX_BYTES` long.

:func:`check_spec` checks a spec statically (lint: `stat` only, never `open`);
:func:`read_vocabulary` is what the builder uses: it opens the file itself, checks the
opened file again (so swapping the file for a link between check and use gains
nothing), and hands Keras the vocabulary as a list instead of the path.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.spec.source import Source

MAX_BYTES = 32 * 1024 * 1024
# Layer arguments Keras reads as a file path when given a string (the catalog holds no others:
# an application's `weights` is restricted to null or "imagenet" in graphspec.spec.layers).
FILE_ARGS: dict[str, tuple[str, ...]] = {
    "StringLookup": ("vocabulary",),
    "IntegerLookup": ("vocabulary",),
    "TextVectorization": ("vocabulary",),
}
_NESTED = ("layer", "backward_layer")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclasses.dataclass(frozen=True)
class Roots:
    """Where files named in a spec may be: relative paths start at `base`; all must be under one of `allowed`."""

    base: Path
    allowed: tuple[Path, ...]

    def describe(self) -> str:
        extra = [str(r) for r in self.allowed[1:]]
        return "the spec's folder" + (f" or the data roots ({', '.join(extra)})" if extra else "")


def roots_for(spec_file: str | None, data_roots: list[str] | None = None) -> Roots:
    """The spec's folder (the working folder for text without a file) and the `--data-root` folders."""
    named = spec_file if spec_file and not spec_file.startswith("<") else None
    base = Path(os.path.realpath(Path(named).parent if named else Path.cwd()))
    extra = tuple(Path(os.path.realpath(r)) for r in data_roots or [])
    return Roots(base, (base, *dict.fromkeys(e for e in extra if e != base)))


class FileProblem(Exception):
    """A file argument that cannot be used: a message and a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _inside(path: Path, roots: Roots) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots.allowed)


def resolve(value: str, roots: Roots) -> Path:
    """The real path of a file argument, checked without opening it; FileProblem if it cannot be used."""
    if _URL.match(value):
        raise FileProblem(f"{value!r} is a URL: only local files can be named",
                          "download it into the spec's folder and name it there")
    if "\x00" in value:
        raise FileProblem("the path contains a NUL character")
    given = Path(value)
    real = Path(os.path.realpath(given if given.is_absolute() else roots.base / given))
    if not _inside(real, roots):
        raise FileProblem(f"{value!r} is outside {roots.describe()}",
                          "put the file beside the spec, or name its folder with --data-root")
    try:
        st = os.stat(real)
    except OSError as exc:
        raise FileProblem(f"{value!r} cannot be read: {exc.strerror or exc}") from None
    _check_stat(value, st)
    return real


def _check_stat(value: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise FileProblem(f"{value!r} is not a regular file (a folder, a device or a pipe)")
    if st.st_size > MAX_BYTES:
        raise FileProblem(f"{value!r} is {st.st_size:,} bytes; the limit is {MAX_BYTES:,}")


def _opened_path(fd: int) -> Path | None:
    """Where an open file really is, from the system (Linux), or None where it cannot say."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def read_bytes(value: str, roots: Roots) -> bytes:
    """The content of a file argument, read through the same checks, applied to the opened file."""
    real = resolve(value, roots)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise FileProblem(f"{value!r} cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        _check_stat(value, st)  # a pipe or device swapped in after the check is refused here
        where = _opened_path(fd)
        if where is not None and not _inside(where, roots):
            raise FileProblem(f"{value!r} changed while being opened: it is now outside {roots.describe()}")
        if where is None:
            now = os.stat(os.path.realpath(real))
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise FileProblem(f"{value!r} changed while being opened")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            raise FileProblem(f"{value!r} grew past the limit of {MAX_BYTES:,} bytes while being read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_vocabulary(value: str, roots: Roots, *, integers: bool) -> list[Any]:
    """A vocabulary file as Keras reads it (one term per line), as a list: strings, or integers."""
    try:
        text = read_bytes(value, roots).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"{value!r} is not UTF-8 text (byte {exc.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not integers:
        return lines
    out: list[Any] = []
    for i, line in enumerate(lines, 1):
        try:
            out.append(int(line.strip()))
        except ValueError:
            raise FileProblem(f"{value!r} line {i}: {line[:40]!r} is not an integer",
                              "an IntegerLookup vocabulary file has one integer per line") from None
    return out


def file_args(layer: str, args: dict[str, Any], path: PathKey) -> Iterator[tuple[PathKey, str]]:
    """(path, value) of every string file argument of a layer and the layers it wraps."""
    for key in FILE_ARGS.get(layer, ()):
        value = args.get(key)
        if isinstance(value, str):
            yield path + (key,), value
    for key in _NESTED:
        sub = args.get(key)
        if isinstance(sub, dict) and isinstance(sub.get("type"), str):
            yield from file_args(sub["type"], sub, path + (key,))


def check_spec(src: Source, nodes: dict[str, Any], roots: Roots) -> list[Diagnostic]:
    """GS119 for every file argument of the spec's nodes that cannot be used."""
    out: list[Diagnostic] = []
    for name, node in nodes.items():
        layer = getattr(node, "type", None)
        if not isinstance(layer, str):
            continue
        for path, value in file_args(layer, node.args, ("nodes", name)):
            try:
                resolve(value, roots)
            except FileProblem as exc:
                out.append(Diagnostic("GS119", Severity.ERROR, exc.message, src.location(path), exc.hint))
    return out


# -- values of the `sweep:` section -----------------------------------------------------------------------------
_VAR_USE = r"\$\{{\s*{name}\b|\${name}\b"


def project_data_roots(start: Path) -> list[Path]:
    """Folders under `[tool.graphspec] data_roots` of the nearest pyproject.toml (as the run reads them)."""
    import tomllib

    here = start.resolve()
    for folder in [here, *here.parents]:
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return []
        entries = data.get("tool", {}).get("graphspec", {}).get("data_roots", [])
        entries = [entries] if isinstance(entries, str) else entries
        return [Path(os.path.realpath(folder / e)) for e in entries if isinstance(e, str)] if isinstance(
            entries, list) else []
    return []


def _swept_paths(src: Source, sweep: Any) -> Iterator[tuple[str, PathKey, str]]:
    """(kind, where, value) for each string a sweep may put where a file is named: `data.*` paths,
    file arguments of nodes (`vocabulary`), and variables the spec's text uses."""
    from graphspec.spec.schema_sweep import Choice

    file_args = {a for args in FILE_ARGS.values() for a in args}
    for text, param in sweep.params.items():
        if not isinstance(param, Choice):
            continue
        parts = text.split(".")
        if parts[0] == "data":
            kind = "data"
        elif parts[0] == "nodes" and parts[-1] in file_args:
            kind = "file"
        elif parts[0] == "vars" and len(parts) == 2 and re.search(_VAR_USE.format(name=re.escape(parts[1])), src.text):
            kind = "data"
        else:
            continue
        for i, value in enumerate(param.choice):
            if isinstance(value, str):
                yield kind, ("sweep", "params", text, "choice", i), value


def check_sweep(src: Source, sweep: Any, roots: Roots) -> list[Diagnostic]:
    """The files a sweep's values name follow the spec's own rules: a data path inside the data roots
    (GS415), a file argument a regular file inside them (GS119). Only paths typed on the command line
    (`--set`) are exempt, and a sweep's values are written in the spec."""
    out: list[Diagnostic] = []
    project: list[Path] | None = None
    for kind, where, value in _swept_paths(src, sweep):
        if kind == "file":
            try:
                resolve(value, roots)
            except FileProblem as exc:
                out.append(Diagnostic("GS119", Severity.ERROR, exc.message, src.location(where), exc.hint))
            continue
        if "\x00" in value or _URL.match(value):
            continue  # not a local path (a dataset name, a URL): the data section's own checks apply
        real = Path(os.path.realpath(value if os.path.isabs(value) else roots.base / value))
        if _inside(real, roots):
            continue
        if project is None:
            project = project_data_roots(roots.base)
        if any(real == r or real.is_relative_to(r) for r in project):
            continue
        out.append(Diagnostic(
            "GS415", Severity.ERROR, f"the swept value {value!r} of `{where[2]}` is outside the data roots "
            f"({roots.describe()}): a value in the spec's `sweep:` section follows the spec's rules",
            src.location(where), "put the file under the spec's folder or a data root (--data-root, "
            "[tool.graphspec] data_roots); only a path you give yourself with --set may be anywhere"))
    return out
