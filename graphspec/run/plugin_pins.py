"""Plugins a run was trained with: recorded by path and content hash, and required again to load the run.

A run folder is data: someone else may have written its `state.json`. graphspec never imports
a plugin because a run names it. Training records each plugin it was given (`--plugin` or
`[tool.graphspec] plugins`) as its path and the SHA-256 of its file; `evaluate RUN`,
`predict RUN` and `train --resume` accept the run only if every recorded plugin is given
again, by the person running the command, with the same content. Only the plugins given
are imported (:mod:`graphspec.build.plugins`), never the ones the run names.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError

_MAX_PLUGIN_BYTES = 64 << 20  # hashing reads the whole file: a plugin is source code, not a data set


def plugin_file(plugin: str) -> Path | None:
    """The file a plugin the user gave stands for: the .py file, or the module's own source file.

    Finding a module's file may import its parent packages; only plugins the user named on the
    command line or in project configuration get here, and those are imported to build anyway.
    """
    if plugin.endswith(".py"):
        path = Path(plugin)
        return path.resolve() if path.is_file() else None
    try:
        found = importlib.util.find_spec(plugin)
    except (ImportError, ValueError, AttributeError):
        return None
    origin = getattr(found, "origin", None)
    if not origin or origin in {"built-in", "frozen"} or not Path(origin).is_file():
        return None
    return Path(origin).resolve()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    read = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            read += len(chunk)
            if read > _MAX_PLUGIN_BYTES:
                raise OSError(f"{path} is over {_MAX_PLUGIN_BYTES >> 20} MiB: not a plugin source file")
            h.update(chunk)
    return h.hexdigest()


def record(plugins: list[str]) -> list[dict[str, str]]:
    """What `state.json` stores for the plugins a training was given: name, file and SHA-256 of each."""
    out = []
    for plugin in plugins:
        path = plugin_file(plugin)
        entry = {"plugin": plugin, "path": str(path) if path is not None else ""}
        if path is not None:
            try:
                entry["sha256"] = sha256(path)
            except OSError:
                pass
        out.append(entry)
    return out


def _short_name(plugin: str) -> str:
    return Path(plugin).name if plugin.endswith(".py") else plugin


def _recorded(state: dict[str, Any], state_file: Path) -> list[dict[str, str]]:
    """The run's plugin records; the old form (a list of names) has no hash."""
    value = state.get("plugins", [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise _error(f"`plugins` is {type(value).__name__}, not a list", state_file)
    out = []
    for item in value:
        if isinstance(item, str):
            out.append({"plugin": item, "path": item})
        elif isinstance(item, dict) and isinstance(item.get("plugin"), str) and all(
                isinstance(item.get(k, ""), str) for k in ("path", "sha256")):
            out.append({k: str(v) for k, v in item.items() if k in {"plugin", "path", "sha256"}})
        else:
            raise _error("`plugins` holds an entry that is neither a name nor {plugin, path, sha256}", state_file)
    return out


def _error(message: str, state_file: Path, hint: str | None = None, code: str = "GS420") -> SpecError:
    return SpecError([Diagnostic(code, Severity.ERROR, message, Location(str(state_file)), hint)])


def require(state: dict[str, Any], given: list[str], state_file: Path) -> None:
    """Raise GS421 unless every plugin the run records is among `given` with the same content.

    A record with a hash is matched by hash (the file may have moved); an old record without
    one is matched by name. Nothing is imported here.
    """
    have: dict[str, str] = {}  # sha256 -> the plugin given
    names: dict[str, str] = {}  # short name -> the plugin given
    for plugin in given:
        names[_short_name(plugin)] = plugin
        path = plugin_file(plugin)
        if path is not None:
            try:
                have[sha256(path)] = plugin
            except OSError:
                continue
    for rec in _recorded(state, state_file):
        name = _short_name(rec["plugin"])
        digest = rec.get("sha256", "")
        if digest and digest in have:
            continue
        if not digest and name in names:
            continue
        where = rec.get("path") or rec["plugin"]
        if digest and name in names:
            raise _error(
                f"the run was trained with plugin {name} (sha256 {digest[:12]}), but the {name} given "
                f"({names[name]}) has different content", state_file,
                "give the plugin file the run was trained with; graphspec does not load a run with other code "
                "than it was trained with", code="GS421")
        raise _error(
            f"the run was trained with plugin {name}"
            + (f" ({', '.join(x for x in (where if where != name else '', digest and 'sha256 ' + digest[:12]) if x)})"
               if where != name or digest else "")
            + ", which was not given: graphspec never "
            "imports a plugin because a run folder names it", state_file,
            f"if you trust that code, give it yourself: --plugin {where} (or list it under "
            "[tool.graphspec] plugins)", code="GS421")
