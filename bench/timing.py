"""Paired timing for the benchmarks: graphspec and hand-written Keras, alternately, in one process."""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass
class Rounds:
    """Both sides' times, round by round: wall-clock seconds and CPU seconds (this process, all threads)."""

    ours: list[float] = dataclasses.field(default_factory=list)
    theirs: list[float] = dataclasses.field(default_factory=list)
    ours_cpu: list[float] = dataclasses.field(default_factory=list)
    theirs_cpu: list[float] = dataclasses.field(default_factory=list)

    @property
    def ratio(self) -> float:
        """The headline: median wall time of ours over median wall time of theirs."""
        return statistics.median(self.ours) / statistics.median(self.theirs)

    @property
    def paired_ratio(self) -> float:
        """The median of the rounds' own ratios: drift of a shared machine between rounds cancels."""
        return statistics.median(a / b for a, b in zip(self.ours, self.theirs))

    @property
    def cpu_ratio(self) -> float:
        """Median CPU time over median CPU time: what other processes on the machine do not change."""
        return statistics.median(self.ours_cpu) / statistics.median(self.theirs_cpu)


def once(fn: Callable[[], Any]) -> float:
    """Seconds for one call, from a clean Keras session and a collected heap."""
    return timed(fn)[0]


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, CPU) seconds for one call, from a clean Keras session and a collected heap."""
    from graphspec.build.backend import keras

    keras.backend.clear_session()
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def rounds(ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int) -> Rounds:
    """Alternate the two sides (which goes first, too) so that drift of the machine hits both alike."""
    r = Rounds()

    def side(fn: Callable[[], Any], wall: list[float], cpu: list[float]) -> None:
        w, c = timed(fn)
        wall.append(w)
        cpu.append(c)

    for i in range(repeat):
        if i % 2:
            side(ours, r.ours, r.ours_cpu)
            side(theirs, r.theirs, r.theirs_cpu)
        else:
            side(theirs, r.theirs, r.theirs_cpu)
            side(ours, r.ours, r.ours_cpu)
    return r


def paired(ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Alternate the two sides so that drift of the machine hits both alike; medians."""
    r = rounds(ours, theirs, repeat)
    return statistics.median(r.ours), statistics.median(r.theirs)
