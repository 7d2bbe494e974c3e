"""graphspec: declarative YAML graph specs compiled to Keras functional models.

The public Python API, for scripts that drive experiments around specs::

    import graphspec

    checked = graphspec.check("specs/mnist_mlp.yaml", sets=["nodes.dense_1.units=128"])
    for d in checked.diagnostics:            # graphspec.Diagnostic: code, severity, message, location, hint
        print(d.code, d.location, d.message)
    models = graphspec.build(checked)        # {name: compiled keras.Model}
    models = graphspec.load("specs/mnist_mlp.yaml")   # check + build in one call

Importing graphspec is cheap: Keras (and its backend) is imported only when a model is built.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import GraphSpecError, SpecError, UsageError

if TYPE_CHECKING:
    from graphspec.compiler import Checked

# TensorFlow's C++ start-up chatter is noise for a command-line tool.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
__all__ = [
    "Diagnostic", "GraphSpecError", "Location", "Severity", "SpecError", "UsageError",
    "__version__", "build", "check", "load",
]


def check(path: str | Path, *, sets: list[str] | None = None, plugins: list[str] | None = None) -> Checked:
    """Validate a spec without a backend: every stage up to static shapes and cross-field checks.

    ``sets`` are ``--set`` overrides (``"nodes.dense_1.units=128"``); ``plugins`` are
    read statically, never imported. The result's ``diagnostics`` list every problem
    (:class:`Diagnostic`); ``ok`` says whether there are errors. Never raises for a bad spec.
    """
    from graphspec.compiler import check as _check

    from graphspec.spec.plugins import all_plugins

    return _check(path, sets=sets, plugins=all_plugins(plugins))


def build(checked: Checked, *, models: list[str] | None = None, compile: bool = True) -> dict[str, Any]:
    """Build the models of a checked spec: name -> ``keras.Model`` (compiled unless ``compile=False``).

    Imports Keras and the plugins. Raises :class:`SpecError` (with its diagnostics)
    when the spec has errors or Keras rejects it.
    """
    from graphspec.compiler import build as _build

    return _build(checked, models=models, compile=compile)


def load(path: str | Path, *, sets: list[str] | None = None, plugins: list[str] | None = None,
         models: list[str] | None = None) -> dict[str, Any]:
    """Check and build a spec file in one call: name -> compiled ``keras.Model``; raises :class:`SpecError`.

    Plugins named here and in ``[tool.graphspec] plugins`` of the nearest pyproject.toml are imported.
    """
    from graphspec.compiler import load as _load

    return _load(path, plugins=plugins, sets=sets, models=models)


class _Package(types.ModuleType):
    """Keeps ``graphspec.build`` the API function after the stage package ``graphspec/build/`` is imported.

    Importing a subpackage sets it as an attribute of its parent; the package stays
    reachable as ``sys.modules["graphspec.build"]`` (``from graphspec.build import emit``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "build" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
