"""References between nodes, and the names Keras gives layers: helpers of the importer's passes.

A node's inputs are one reference, a list or a mapping of them; a reference is a node's name, or
`name.N` for its N-th output.
"""

from __future__ import annotations

import re
from typing import Any


def base(ref: str) -> str:
    return ref.split(".", 1)[0]


def ref_list(refs: Any) -> list[str]:
    """Every reference in a node's inputs (one, a list, or a mapping of them)."""
    if isinstance(refs, str):
        return [refs]
    if isinstance(refs, list):
        return [r for r in refs if isinstance(r, str)]
    if isinstance(refs, dict):
        return [r for v in refs.values() for r in ref_list(v)]
    return []


def map_refs(refs: Any, fn: Any) -> Any:
    """The same inputs with each reference `r` (or `r.N`) replaced by `fn(r)` (keeping `.N`)."""
    if isinstance(refs, str):
        head, dot, tail = refs.partition(".")
        return fn(head) + dot + tail
    if isinstance(refs, list):
        return [map_refs(r, fn) for r in refs]
    if isinstance(refs, dict):
        return {k: map_refs(v, fn) for k, v in refs.items()}
    return refs


def keras_snake(name: str) -> str:
    """A class name as Keras names its layers: `Conv2D` -> `conv2d`, `BatchNormalization` ->
    `batch_normalization`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


__all__ = ["base", "keras_snake", "map_refs", "ref_list"]
