"""Custom layers from plugins the user names: `--plugin` or `[tool.graphspec] plugins`.

A spec alone never causes an import: it can only name layer types that a
plugin named on the command line or in project configuration provides.
``lint`` does not even import those plugins: it reads their source with
:mod:`ast` to learn the layer classes, their arguments, and the static shapes a
class may declare for lint in a ``graphspec_shapes`` dict of expressions
(:class:`Declaration`, evaluated by :mod:`graphspec.analysis.shapes.declared`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import os
import stat
import sys
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError

# Where a layer's `call` arguments are kept in a scan (graphspec.spec.calls reads them).
PLUGIN_CALL = "**call"


def project_plugins(start: Path | None = None) -> list[str]:
    """Plugins listed under `[tool.graphspec] plugins` in the project's configuration (:mod:`graphspec.spec.project`)."""
    from graphspec.spec import project

    return project.project_plugins(start)


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
    try:  # one stat for the usual case, a .py file; the others say what is wrong below
        if path.suffix == ".py" and stat.S_ISREG(os.stat(path).st_mode):
            return path
    except (OSError, ValueError):
        pass
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
    # Where a module's file is, remembered for this sys.path: every check of every spec asks again (the
    # built-in plugin module, a project's plugins), and the walk over sys.path is a few stats per entry.
    # Only what was found is remembered (a module may appear later, never silently vanish: checked here).
    key = (plugin, os.getcwd(), tuple(sys.path))
    found = _MODULE_FILES.get(key)
    if found is not None and found.is_file():
        return found
    found = _module_source(plugin)
    if found is not None:
        if len(_MODULE_FILES) > 256:
            _MODULE_FILES.clear()
        _MODULE_FILES[key] = found
    return found


_MODULE_FILES: dict[tuple[str, str, tuple[str, ...]], Path] = {}


def _module_source(plugin: str) -> Path | None:
    """A module's file, found without importing it (find_spec would import parents)."""
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


# The class attribute a plugin layer declares its static shapes in, and its keys.
DECLARATION = "graphspec_shapes"
DECLARATION_KEYS = ("output", "outputs", "params", "trainable_params", "macs")


@dataclasses.dataclass(frozen=True)
class Declaration:
    """A plugin layer's ``graphspec_shapes``: expressions that lint evaluates, never runs.

    ``exprs`` maps a key of :data:`DECLARATION_KEYS` to its expression text and
    ``positions`` to where that text is (line, column, 1-based); ``defaults`` are the
    literal defaults of the class's ``__init__``; ``problem`` says why the declaration
    cannot be used at all (not a dict of strings, an unknown key).
    """

    layer: str
    file: str
    line: int
    col: int
    exprs: dict[str, str]
    positions: dict[str, tuple[int, int]]
    defaults: dict[str, Any]
    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class _Scanned:
    classes: dict[str, dict[str, Any]]
    declarations: dict[str, Declaration]


def scan(plugin: str) -> dict[str, dict[str, Any]]:
    """Layer classes a plugin defines, read statically: name -> {arg: {...}}."""
    return {name: dict(params) for name, params in _scanned(plugin).classes.items()}


def declarations(plugins: list[str]) -> dict[str, Declaration]:
    """The ``graphspec_shapes`` declarations of the plugins' layer classes, by class name.

    A plugin that cannot be read has none (:func:`scan_all` reports it).
    """
    out: dict[str, Declaration] = {}
    for p in plugins:
        try:
            out.update(_scanned(p).declarations)
        except UsageError:
            continue
    return out


def _scanned(plugin: str) -> _Scanned:
    path = _source_path(plugin)
    try:
        st = os.stat(path) if path is not None else None
    except OSError as exc:
        raise UsageError(f"plugin {plugin!r} cannot be read: {exc}") from None
    if path is None or st is None or not stat.S_ISREG(st.st_mode):
        raise UsageError(f"plugin {plugin!r} not found (neither a .py file nor a module on the Python path)")
    if st.st_size > MAX_PLUGIN_BYTES:
        raise UsageError(f"plugin {plugin!r} is {st.st_size:,} bytes; lint reads plugins up to "
                         f"{MAX_PLUGIN_BYTES:,} bytes")
    # Parsed once per file version: commands and tests check many specs per process.
    resolved = _resolved((str(path), os.getcwd(), st.st_dev, st.st_ino))
    found = _scan_file(resolved, st.st_mtime_ns, st.st_size, str(path))
    if isinstance(found, str):
        raise UsageError(f"plugin {plugin!r} cannot be read: {found}")
    return found


@functools.lru_cache(maxsize=256)
def _resolved(key: tuple[str, str, int, int]) -> str:
    """A path with its links resolved, once per (path, working folder, device, inode): the file it names."""
    path, cwd = key[0], key[1]
    return str(Path(cwd, path).resolve())


@functools.lru_cache(maxsize=64)
def _scan_file(path: str, mtime_ns: int, size: int, shown: str) -> _Scanned | str:
    """The classes of one plugin file, or the error text; keyed by the file's version."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        return str(exc)
    except (RecursionError, MemoryError):
        # CPython's parser recurses on long chains (`x = 1 + 1 + ...`); importing it would fail too.
        return "it is nested too deeply for Python's parser (a very long expression or deep brackets)"
    out: dict[str, dict[str, Any]] = {}
    decls: dict[str, Declaration] = {}
    for item in tree.body:
        if not isinstance(item, ast.ClassDef):
            continue
        bases = [ast.unparse(b) for b in item.bases]
        if not any(b.endswith(("Layer", "Model")) for b in bases):
            continue
        params: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        for fn in item.body:
            if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                positional = fn.args.args[1:]
                n_required = len(positional) - len(fn.args.defaults)
                for i, a in enumerate(positional + fn.args.kwonlyargs):
                    params[a.arg] = {"required": i < n_required}
                given = list(zip(positional[n_required:], fn.args.defaults))
                given += [(a, d) for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None]
                for a, d in given:
                    try:
                        defaults[a.arg] = ast.literal_eval(d)
                    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                        continue  # not a literal: the spec must give the argument
                if fn.args.kwarg is not None:
                    params["**kwargs"] = {}
            elif isinstance(fn, ast.FunctionDef) and fn.name == "call":
                params[PLUGIN_CALL] = _call_params(fn.args)
        out[item.name] = params
        decl = _declaration(item, shown, defaults)
        if decl is not None:
            decls[item.name] = decl
    return _Scanned(out, decls)


def _declaration(cls: ast.ClassDef, file: str, defaults: dict[str, Any]) -> Declaration | None:
    """The class's ``graphspec_shapes = {...}``, read as data (its strings are never run here)."""
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if not (isinstance(target, ast.Name) and target.id == DECLARATION):
            continue
        exprs: dict[str, str] = {}
        positions: dict[str, tuple[int, int]] = {}
        problem = None
        if not isinstance(value, ast.Dict):
            problem = "must be a dict literal of expression strings"
        else:
            for k, v in zip(value.keys, value.values):
                if not (isinstance(k, ast.Constant) and isinstance(k.value, str)
                        and isinstance(v, ast.Constant) and isinstance(v.value, str)):
                    problem = "must map string keys to expression strings"
                    break
                if k.value not in DECLARATION_KEYS:
                    problem = f"unknown key {k.value!r}; the keys are {', '.join(DECLARATION_KEYS)}"
                    break
                exprs[k.value] = v.value
                positions[k.value] = (v.lineno, v.col_offset + 1)
            if problem is None and ("output" in exprs) == ("outputs" in exprs):
                problem = "needs exactly one of 'output' (one tensor) and 'outputs' (a list of shapes)"
            if problem is None and "params" not in exprs:
                problem = "needs 'params'"
        return Declaration(cls.name, file, stmt.lineno, stmt.col_offset + 1, exprs, positions,
                           dict(defaults), problem)
    return None


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


def read_all(plugins: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Declaration], UsageError | None]:
    """Each plugin read once: its layer classes (see :func:`scan`), their declarations, and the first
    plugin that could not be read (whose classes are then not listed; the others' declarations are)."""
    classes: dict[str, dict[str, Any]] = {}
    decls: dict[str, Declaration] = {}
    problem: UsageError | None = None
    for p in plugins:
        try:
            found = _scanned(p)
        except UsageError as exc:
            problem = problem or exc
            continue
        classes.update((name, dict(params)) for name, params in found.classes.items())
        decls.update(found.declarations)
    return classes, decls, problem


def scan_all(plugins: list[str]) -> dict[str, dict[str, Any]]:
    """The layer classes of every plugin (see :func:`scan`)."""
    out: dict[str, dict[str, Any]] = {}
    for p in plugins:
        out.update(scan(p))
    return out
