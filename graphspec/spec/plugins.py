"""Custom layers from plugins the user names: `--plugin` or `[tool.graphspec] plugins`.

A spec alone never causes an import: it can only name layer types that a
plugin named on the command line or in project configuration provides.
``lint`` does not even import those plugins: it reads their source with
:mod:`ast` to learn the layer classes and their arguments.
"""

from __future__ import annotations

import ast
import functools
import sys
import tomllib
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError

# Where a layer's `call` arguments are kept in a scan (graphspec.spec.calls reads them).
PLUGIN_CALL = "**call"


def project_plugins(start: Path | None = None) -> list[str]:
    """Plugins listed in the nearest pyproject.toml under `[tool.graphspec] plugins`."""
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise UsageError(f"{candidate}: cannot read [tool.graphspec]: {exc}") from None
            entries = data.get("tool", {}).get("graphspec", {}).get("plugins", [])
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise UsageError(f"{candidate}: [tool.graphspec] plugins must be a list of strings")
            return [str(folder / e) if e.endswith(".py") else e for e in entries]
    return []


# graphspec's own plugins, always available: layers keras.applications defines
# outside keras.layers (so that imported ConvNeXt/InceptionResNetV2 specs build).
BUILTIN = ["graphspec.build.app_layers"]


def all_plugins(cli: list[str] | None) -> list[str]:
    return list(dict.fromkeys([*(cli or []), *project_plugins()]))


MAX_PLUGIN_BYTES = 16 * 1024 * 1024  # read statically by lint


def is_path(plugin: str) -> bool:
    """Whether `--plugin` names a file (`x.py`, `dir/x`, an existing file) rather than a module."""
    return plugin.endswith(".py") or "/" in plugin or "\\" in plugin or Path(plugin).is_file()


def check_path(plugin: str) -> Path:
    """The .py file a path-like `--plugin` names; a UsageError that says what is wrong with it."""
    path = Path(plugin)
    if not path.exists():
        raise UsageError(f"plugin file {plugin!r} not found")
    if path.is_dir():
        raise UsageError(f"plugin {plugin!r} is a folder: name a .py file, or a module on the Python path")
    if not path.is_file():
        raise UsageError(f"plugin {plugin!r} is not a regular file")
    if path.suffix != ".py":
        raise UsageError(f"plugin {plugin!r} is not a Python file: a plugin is a .py file or a module name")
    return path


def _source_path(plugin: str) -> Path | None:
    if is_path(plugin):
        return check_path(plugin)
    # Find a module's file without importing it (find_spec would import parents).
    parts = plugin.split(".")
    for base in sys.path:
        candidate = Path(base or ".").joinpath(*parts)
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if path.is_file():
                return path
    # A module of a package that is already imported (e.g. graphspec.build.app_layers
    # under an editable install, whose folder is not on sys.path).
    package = sys.modules.get(parts[0]) if len(parts) > 1 else None
    for base in getattr(package, "__path__", None) or []:
        candidate = Path(base).joinpath(*parts[1:])
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if path.is_file():
                return path
    return None


def scan(plugin: str) -> dict[str, dict[str, Any]]:
    """Layer classes a plugin defines, read statically: name -> {arg: {...}}."""
    path = _source_path(plugin)
    if path is None or not path.is_file():
        raise UsageError(f"plugin {plugin!r} not found (neither a .py file nor a module on the Python path)")
    try:
        st = path.stat()
    except OSError as exc:
        raise UsageError(f"plugin {plugin!r} cannot be read: {exc}") from None
    if st.st_size > MAX_PLUGIN_BYTES:
        raise UsageError(f"plugin {plugin!r} is {st.st_size:,} bytes; lint reads plugins up to "
                         f"{MAX_PLUGIN_BYTES:,} bytes")
    # Parsed once per file version: commands and tests check many specs per process.
    found = _scan_file(str(path.resolve()), st.st_mtime_ns, st.st_size)
    if isinstance(found, str):
        raise UsageError(f"plugin {plugin!r} cannot be read: {found}")
    return {name: dict(params) for name, params in found.items()}


@functools.lru_cache(maxsize=64)
def _scan_file(path: str, mtime_ns: int, size: int) -> dict[str, dict[str, Any]] | str:
    """The classes of one plugin file, or the error text; keyed by the file's version."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        return str(exc)
    except (RecursionError, MemoryError):
        # CPython's parser recurses on long chains (`x = 1 + 1 + ...`); importing it would fail too.
        return "it is nested too deeply for Python's parser (a very long expression or deep brackets)"
    out: dict[str, dict[str, Any]] = {}
    for item in tree.body:
        if not isinstance(item, ast.ClassDef):
            continue
        bases = [ast.unparse(b) for b in item.bases]
        if not any(b.endswith(("Layer", "Model")) for b in bases):
            continue
        params: dict[str, Any] = {}
        for fn in item.body:
            if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                args = fn.args.args[1:] + fn.args.kwonlyargs
                n_required = len(fn.args.args[1:]) - len(fn.args.defaults)
                for i, a in enumerate(args):
                    params[a.arg] = {"required": i < n_required}
                if fn.args.kwarg is not None:
                    params["**kwargs"] = {}
            elif isinstance(fn, ast.FunctionDef) and fn.name == "call":
                params[PLUGIN_CALL] = _call_params(fn.args)
        out[item.name] = params
    return out


def _call_params(args: ast.arguments) -> dict[str, Any]:
    """A plugin layer's `call` arguments after `self` and the inputs: name -> {default: constant}."""
    positional = args.args[2:]
    defaults: list[ast.expr | None] = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    out: dict[str, Any] = {}
    for a, d in [*zip(positional, defaults[2:]), *zip(args.kwonlyargs, args.kw_defaults)]:
        entry: dict[str, Any] = {"required": d is None}
        if isinstance(d, ast.Constant):
            entry["default"] = d.value
        out[a.arg] = entry
    if args.kwarg is not None:
        out["**kwargs"] = {}
    return out


def scan_all(plugins: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in plugins:
        out.update(scan(p))
    return out
