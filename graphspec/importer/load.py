"""The model a `graphspec import` SOURCE names: `keras.applications.NAME`, a `.keras` file, or
`module:function`; and importing it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from graphspec.build import archives
from graphspec.diagnostics import Location

from graphspec.spec import catalog
from graphspec.errors import SpecError, UsageError
from graphspec.importer.layer_args import load_plugin_classes
from graphspec.importer.values import diag
from graphspec.importer.assemble import Imported, import_model


def load_source(source: str, *, plugins: list[str] | None = None, args: dict[str, Any] | None = None) -> Any:
    """The model named by SOURCE: `keras.applications.NAME`, a `.keras` file or `module:function`."""
    if source.endswith(".keras") and Path(source).is_file():
        try:  # a .keras file is a zip: its inflated sizes are checked before Keras reads a byte of it
            archives.check_zip(source, json_members=archives.KERAS_JSON)
        except archives.ArchiveProblem as exc:
            raise SpecError([diag("GS416", f"cannot load the model: {exc}", source)]) from None
    _preflight(source, args)  # what needs no Keras, before the backend starts
    from graphspec.build.backend import keras

    load_plugin_classes(list(plugins or []))  # registers the plugins' layers for loading
    args = dict(args or {})
    if source.startswith(("keras.applications.", "applications.")):
        app = source.rsplit(".", 1)[1]
        if app not in catalog.APPLICATIONS or not hasattr(keras.applications, app):
            hint = catalog.did_you_mean(app, list(catalog.APPLICATIONS))
            raise UsageError(f"unknown application {app!r}" + (f" ({hint})" if hint else ""))
        args.setdefault("weights", None)
        try:
            return getattr(keras.applications, app)(**args)
        except Exception as exc:
            raise UsageError(f"keras.applications.{app}({_kwargs_text(args)}) failed: {exc}") from None
    if source.endswith((".keras", ".h5")):
        if args:
            raise UsageError("--arg applies to keras.applications and module:function sources only")
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"{source}: no such file")
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:
            text = str(exc)
            if "Lambda" in text or "lambda" in text:
                raise SpecError([diag("GS701", "the model contains a Lambda layer (Python code), which a spec "
                                      "cannot express", source,
                                      "rewrite it with layers or keras.ops calls, or as a custom layer in a "
                                      "plugin (--plugin)")]) from None
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise SpecError([diag("GS700", f"cannot load the model: {first}", source,
                                  "custom layers need the plugin that defines them (--plugin)")]) from None
    if ":" in source:
        module_name, _, fn_name = source.rpartition(":")
        module = _load_module(module_name)
        fn = getattr(module, fn_name, None)
        if not callable(fn):
            raise UsageError(f"{module_name} has no function {fn_name!r}")
        try:
            return fn(**args)
        except Exception as exc:
            raise UsageError(f"{source}({_kwargs_text(args)}) failed: {type(exc).__name__}: {exc}") from None
    raise UsageError(f"cannot tell what {source!r} is: give a .keras file, keras.applications.NAME or "
                     "module:function")


def _preflight(source: str, args: dict[str, Any] | None) -> None:
    """The mistakes in SOURCE that need no Keras: an unknown application, a model file that is not there,
    `--arg` for a model file, a source of no known form (the same errors :func:`load_source` gives)."""
    if source.startswith(("keras.applications.", "applications.")):
        app = source.rsplit(".", 1)[1]
        if app not in catalog.APPLICATIONS:
            hint = catalog.did_you_mean(app, list(catalog.APPLICATIONS))
            raise UsageError(f"unknown application {app!r}" + (f" ({hint})" if hint else ""))
    elif source.endswith((".keras", ".h5")):
        if args:
            raise UsageError("--arg applies to keras.applications and module:function sources only")
        if not Path(source).is_file():
            raise UsageError(f"{source}: no such file")
    elif ":" not in source:
        raise UsageError(f"cannot tell what {source!r} is: give a .keras file, keras.applications.NAME or "
                         "module:function")


def _kwargs_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _load_module(name: str) -> Any:
    """A module named on the command line (a .py file or a module name)."""
    from graphspec.build import plugins as plugin_loader

    return plugin_loader.load(name)


def import_source(source: str, *, plugins: list[str] | None = None, args: dict[str, Any] | None = None,
                  name: str | None = None, verify: bool = True, blocks: bool = True,
                  expect: bool = False) -> Imported:
    """Load SOURCE and import it; see :func:`load_source` and :func:`import_model`."""
    model = load_source(source, plugins=plugins, args=args)
    from graphspec.importer.compiled import read_config

    compile_config = read_config(source) if source.endswith(".keras") else None  # loaded with compile=False
    try:
        return import_model(model, source=source, plugins=plugins, name=name, verify=verify, blocks=blocks,
                            expect=expect, compile_config=compile_config)
    except SpecError as exc:
        raise _at_function(exc, source) from None


def _at_function(exc: SpecError, source: str) -> SpecError:
    """Diagnostics about a `file.py:function` model located at the function's `def` line."""
    module, _, fn = source.rpartition(":")
    path = Path(module)
    if not (module.endswith(".py") and path.is_file()):
        return exc
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return exc
    found = re.search(rf"^([ \t]*)def {re.escape(fn)}\b", text, re.MULTILINE)
    if found is None:
        return exc
    line = text.count("\n", 0, found.start()) + 1
    at = Location(module, line, len(found.group(1)) + 1, line, len(found.group(1)) + 4 + len(fn))
    moved = [dataclasses.replace(d, location=at) if d.location.file == source else d for d in exc.diagnostics]
    return SpecError(moved, {**exc.sources, module: text})
