"""Static shape and parameter inference for Keras 3 layers, in pure Python.

``graphspec lint`` runs on machines without TensorFlow, so the output shape,
the parameter count and the multiply-accumulates (docs/lint.md) of every layer
in a spec are computed here by hand-written rules that mirror Keras 3.15
(``compute_output_shape``, ``build`` and the constructor checks of each layer
class).  This package must only import the standard library.

Layout
------
:mod:`._registry` holds the rule registry, :func:`infer` and the helpers the
rules share; each other module registers the rules of one layer family when
this package imports it. :mod:`.applications` runs ports of the
`keras.applications` architectures on these rules, and :mod:`.declared`
evaluates the shapes a plugin layer declares; both are imported on use.

Conventions
-----------
* A :data:`Shape` never contains the batch dimension.  Rules that mirror
  Keras code which indexes the full shape (``axis=-1``, ``axes={1: ...}``,
  ``Permute.dims`` ...) prepend a ``None`` batch dimension internally.
* ``args`` are the constructor arguments as written by the user; Keras's
  defaults are applied for the missing ones.
* A combination that Keras rejects (at construction, build or symbolic call
  time) raises :class:`ShapeError`.  A layer, or an argument, that is not
  modelled raises :class:`NoRule` rather than a guess.
"""

from __future__ import annotations

from graphspec.analysis.shapes._registry import (
    Dim,
    LayerShapes,
    NoRule,
    Shape,
    ShapeError,
    has_rule,
    infer,
    supported_layers,
)

# Importing a family module registers its rules. No rule name is registered twice, so
# the order does not matter; it follows the sections of the former single module.
from graphspec.analysis.shapes import (  # noqa: F401
    core,
    conv,
    pooling,
    reshaping,
    normalization,
    preprocessing,
    lookup,
    merge,
    recurrent,
    attention,
    ops,
    app_layers,
)

__all__ = [
    "Dim",
    "LayerShapes",
    "NoRule",
    "Shape",
    "ShapeError",
    "has_rule",
    "infer",
    "supported_layers",
]
