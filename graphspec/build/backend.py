"""Import Keras (and TensorFlow) once, without TensorFlow's C++ start-up chatter.

TensorFlow writes log lines straight to file descriptor 2 while it loads and
while it looks for GPUs; for a command-line tool that is noise around the real
output, so both happen with descriptor 2 pointed at /dev/null. Set
GRAPHSPEC_TF_LOGS=1 to see them. Use it as ``from graphspec.build.backend import keras``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    if os.environ.get("GRAPHSPEC_TF_LOGS") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load() -> Any:
    """The keras module, imported quietly."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _quiet_fd2():
            import tensorflow as tf
            import keras as _keras

            try:
                tf.config.list_physical_devices()
            except Exception:  # device discovery problems surface later, when used
                pass
    except ImportError as exc:
        from graphspec.errors import UsageError

        raise UsageError(
            f"this command builds Keras models and needs TensorFlow, which cannot be imported ({exc}); "
            "install it with `pip install tensorflow` (lint, schema and plot work without it)"
        ) from None
    return _keras


def __getattr__(name: str) -> Any:
    # `from graphspec.build.backend import keras` imports Keras on first use, quietly.
    if name == "keras":
        return load()
    raise AttributeError(name)


# Keras walks a functional graph recursively (keras/src/ops/function.py, `_build_map_helper`):
# one Python frame per layer on a chain, so Python's default limit of 1,000 stops a
# 1,000-layer chain that lint accepts. The limit is raised to what the graph needs, for the
# duration of the work only; Python 3.11 keeps these Python-to-Python frames off the C stack.
FRAMES_PER_NODE = 8
RECURSION_CEILING = 1_000_000


@contextlib.contextmanager
def deep_graphs(nodes: int) -> Iterator[None]:
    """Let Keras build, compile, train or save a graph of `nodes` layers without a RecursionError."""
    old = sys.getrecursionlimit()
    need = min(RECURSION_CEILING, old + FRAMES_PER_NODE * nodes)
    if need > old:
        sys.setrecursionlimit(need)
    try:
        yield
    finally:
        if need > old:
            sys.setrecursionlimit(old)

