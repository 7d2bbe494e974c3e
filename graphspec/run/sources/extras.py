"""Optional packages a source needs (pyarrow, Pillow, datasets, TensorFlow), imported when used."""

from __future__ import annotations

import importlib
from typing import Any

from graphspec.run.sources.arrays import error

EXTRA = "pip install 'keras-graphspec[data]'"


def need(module: str, what: str, where: tuple[Any, ...], hint: str = EXTRA) -> Any:
    """`module`, imported; a located GS443 naming the extra if it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        package = {"PIL": "Pillow"}.get(top, top)
        raise error(f"{what} needs {package}, which is not installed", where, hint, code="GS443") from None
