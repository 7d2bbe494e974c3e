"""Paired timing for the benchmarks: graphspec and hand-written Keras, alternately, in one process."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


def once(fn: Callable[[], Any]) -> float:
    """Seconds for one call, from a clean Keras session and a collected heap."""
    from graphspec.build.backend import keras

    keras.backend.clear_session()
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def paired(ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Alternate the two sides so that drift of the machine hits both alike; medians."""
    a, b = [], []
    for i in range(repeat):
        if i % 2:
            a.append(once(ours))
            b.append(once(theirs))
        else:
            b.append(once(theirs))
            a.append(once(ours))
    return statistics.median(a), statistics.median(b)
