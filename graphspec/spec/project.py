"""The project a command runs in: its repository, and its configuration (`[tool.graphspec]` in pyproject.toml).

One reader for every setting there (`plugins`, `data_roots`, `[tool.graphspec.lint]`), with one rule:

* the search starts in the current folder and goes up to the repository root (the nearest folder
  holding `.git`), never past it; outside a repository only the current folder is read. A
  `pyproject.toml` in a parent folder of the repository (a shared temporary folder, a home folder)
  is never read;
* a configuration file that others could have written is ignored, with one warning line: one whose
  mode lets its group or everyone write it, or whose owner is another user (a `pyproject.toml` that
  someone else left in a shared folder). What a trusted file names is then used as written: its
  plugins are imported by the commands that build models, and each such command says so on stderr
  (``graphspec: importing plugins from /repo/pyproject.toml: layers.py``).

:func:`repository_root` is also what bounds `extends` (:mod:`graphspec.spec.extends`).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError

CONFIG = "pyproject.toml"
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_warned: set[str] = set()


def say(text: str) -> None:
    """One line on stderr, once per process for the same text (warnings and notices of this module)."""
    if text in _warned:
        return
    _warned.add(text)
    sys.stderr.write(f"graphspec: {text}\n")
    sys.stderr.flush()


def repository_root(start: str | Path) -> Path | None:
    """The nearest folder at or above `start` (its real path) holding `.git` (a folder, or a worktree's file)."""
    here = Path(os.path.realpath(start))
    if not here.is_dir():
        here = here.parent
    for folder in [here, *here.parents]:
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def search_folders(start: str | Path | None = None) -> list[Path]:
    """Where configuration is looked for, nearest first: `start` (the current folder) up to its repository's
    root; outside a repository, `start` alone."""
    here = Path(os.path.realpath(start if start is not None else Path.cwd()))
    root = repository_root(here)
    if root is None:
        return [here]
    return [here, *[p for p in here.parents if p.is_relative_to(root)]]


def untrusted(st: os.stat_result) -> str | None:
    """Why a configuration file with this status may not be trusted, or None."""
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'} " \
               f"(mode {stat.S_IMODE(st.st_mode):04o})"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"it is owned by another user (uid {st.st_uid})"
    return None


@dataclasses.dataclass(frozen=True)
class Config:
    """A trusted pyproject.toml and its `[tool.graphspec]` table (empty without one)."""

    file: Path
    table: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.file.parent


def _read(path: Path) -> Config | None:
    """The file parsed, or None when it is missing or ignored (untrusted: warned once)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if not os.path.lexists(path):
            return None
        raise UsageError(f"{path}: cannot read [tool.graphspec]: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)  # the file opened, not the path: a swap after the check gains nothing
        if not stat.S_ISREG(st.st_mode):
            return None
        why = untrusted(st)
        if why is not None:
            say(f"warning: ignoring {path}: {why}; graphspec reads no configuration others can write")
            return None
        raw = os.read(fd, MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:
        raise UsageError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it for [tool.graphspec]: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("graphspec", {}) if isinstance(tool, dict) else {}
    return Config(path, table if isinstance(table, dict) else {})


def configs(start: str | Path | None = None) -> Iterator[Config]:
    """The trusted pyproject.toml files of the search (:func:`search_folders`), nearest first."""
    for folder in search_folders(start):
        found = _read(folder / CONFIG)
        if found is not None:
            yield found


def nearest(start: str | Path | None = None) -> Config | None:
    """The nearest trusted pyproject.toml (its `[tool.graphspec]` may be empty): where plugins and data roots
    come from."""
    return next(configs(start), None)


def plugins_from(config: Config) -> list[str]:
    """`[tool.graphspec] plugins` of a configuration, files made absolute (relative to it)."""
    entries = config.table.get("plugins", [])
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise UsageError(f"{config.file}: [tool.graphspec] plugins must be a list of strings")
    return [str(config.folder / e) if e.endswith(".py") else e for e in entries]


# Which configuration file each project plugin came from: announced when it is imported.
_ORIGIN: dict[str, Path] = {}


def project_plugins(start: str | Path | None = None) -> list[str]:
    """The plugins of the nearest trusted pyproject.toml (remembering where each came from)."""
    config = nearest(start)
    if config is None:
        return []
    found = plugins_from(config)
    for plugin in found:
        _ORIGIN.setdefault(plugin, config.file)
        if plugin.endswith(".py"):
            _ORIGIN.setdefault(os.path.realpath(plugin), config.file)
    return found


def announce_imports(plugins: list[str]) -> None:
    """Say which configuration file's plugins are about to be imported (once per process and file)."""
    by_file: dict[Path, list[str]] = {}
    for plugin in plugins:
        if plugin in _ORIGIN:
            by_file.setdefault(_ORIGIN[plugin], []).append(plugin)
    for file, names in by_file.items():
        shown = [os.path.relpath(n, file.parent) if os.path.isabs(n) else n for n in names]
        say(f"importing plugins from {file}: {', '.join(shown)}")


def data_roots(start: str | Path | None = None) -> list[Path]:
    """`[tool.graphspec] data_roots` of the nearest trusted pyproject.toml, relative to it."""
    try:
        config = nearest(start)
    except UsageError:
        return []  # reported by the plugin settings' reader; data roots just stay the defaults
    if config is None:
        return []
    entries = config.table.get("data_roots", [])
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list):
        return []
    return [(config.folder / e).resolve() for e in entries if isinstance(e, str)]


def lint_table(start: str | Path | None = None) -> tuple[Any, Path] | None:
    """`[tool.graphspec.lint]` of the nearest trusted pyproject.toml that has one, and that file."""
    for config in configs(start):
        if "lint" in config.table:
            return config.table["lint"], config.file
    return None
