"""Importing the plugins a user named: the only place graphspec runs a plugin's code.

:mod:`graphspec.spec.plugins` reads plugin files statically for lint; the
commands that build models import them here.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from typing import Any

from graphspec.errors import UsageError
from graphspec.spec.plugins import check_path, is_path


def load(plugin: str) -> Any:
    """Import a plugin (a module name or a .py file)."""
    if is_path(plugin):
        path = check_path(plugin).resolve()
        name = f"graphspec_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"plugin file {plugin!r} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise UsageError(f"plugin {plugin!r} failed to import: {type(exc).__name__}: {exc}") from None
        return module
    try:
        return importlib.import_module(plugin)
    except Exception as exc:
        raise UsageError(f"plugin {plugin!r} failed to import: {type(exc).__name__}: {exc}") from None


def load_all(plugins: list[str]) -> dict[str, type]:
    """Import plugins; return the Keras layer classes they define by class name."""
    from graphspec.build.backend import keras
    from graphspec.spec import project

    project.announce_imports(plugins)  # a plugin named by a configuration file: say which file, before running it
    out: dict[str, type] = {}
    for p in plugins:
        module = load(p)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, keras.layers.Layer)
                    and value.__module__ == module.__name__):
                if keras.saving.get_registered_object(keras.saving.get_registered_name(value)) is None:
                    keras.saving.register_keras_serializable(package="graphspec_plugins")(value)
                out[value.__name__] = value
    return out
