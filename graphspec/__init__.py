"""graphspec: declarative YAML graph specs compiled to Keras functional models.

Importing graphspec is cheap: TensorFlow is imported only when a model is built.
"""

from __future__ import annotations

import os
from typing import Any

# TensorFlow's C++ start-up chatter is noise for a command-line tool.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
__all__ = ["__version__", "check", "load"]


def check(path: str, **kwargs: Any) -> Any:
    """Validate a spec without TensorFlow; see :func:`graphspec.compiler.check`."""
    from graphspec.compiler import check as _check

    return _check(path, **kwargs)


def load(path: str, **kwargs: Any) -> dict[str, Any]:
    """Build a spec's models: name -> compiled ``keras.Model``; see :func:`graphspec.compiler.load`."""
    from graphspec.compiler import load as _load

    return _load(path, **kwargs)
