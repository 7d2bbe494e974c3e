"""The run-folder claim (graphspec.run.lock): exactly one owner, stale claims taken over, other hosts respected."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphspec.run.lock import CLAIM, RunInUse, claim


def _contender(folder: str, barrier: mp.synchronize.Barrier, results: mp.Queue, rounds: int) -> None:  # type: ignore[type-arg]
    for i in range(rounds):
        barrier.wait()
        try:
            with claim(Path(folder) / f"r{i}"):
                results.put((i, os.getpid(), "won"))
                barrier.wait()  # hold the claim until the other contender has tried
        except RunInUse as exc:
            results.put((i, os.getpid(), str(exc)))
            barrier.wait()


def test_two_processes_racing_for_a_folder_twenty_times_exactly_one_wins_each_time(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    rounds = 20
    procs = [ctx.Process(target=_contender, args=(str(tmp_path), barrier, results, rounds)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    outcomes: dict[int, list[tuple[int, str]]] = {}
    while not results.empty():
        i, pid, what = results.get()
        outcomes.setdefault(i, []).append((pid, what))
    assert sorted(outcomes) == list(range(rounds))
    for _i, pair in outcomes.items():
        winners = [pid for pid, what in pair if what == "won"]
        losers = [what for _pid, what in pair if what != "won"]
        assert len(winners) == 1 and len(losers) == 1
        assert f"is in use by pid {winners[0]} on host " in losers[0] and " since " in losers[0]


def test_claim_is_released_on_exit_and_on_error(tmp_path: Path) -> None:
    with claim(tmp_path):
        data = json.loads((tmp_path / CLAIM).read_text())
        assert data["pid"] == os.getpid()
    assert (tmp_path / CLAIM).read_text() == ""
    with pytest.raises(ValueError), claim(tmp_path):
        raise ValueError("boom")
    with claim(tmp_path):  # free again
        pass


def test_a_killed_owners_claim_is_taken_over_with_a_note(tmp_path: Path) -> None:
    code = ("import sys, time\nfrom graphspec.run.lock import claim\n"
            f"with claim({str(tmp_path)!r}):\n    print('ready', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    with pytest.raises(RunInUse, match=f"in use by pid {proc.pid}"), claim(tmp_path):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    notes: list[str] = []
    with claim(tmp_path, note=notes.append):
        pass
    assert notes and f"from pid {proc.pid}" in notes[0] and "its process is gone" in notes[0]


def test_a_claim_from_another_host_is_never_broken_silently(tmp_path: Path) -> None:
    (tmp_path / CLAIM).write_text(json.dumps({"pid": 4242, "host": "gpu-node-7", "since": "2026-01-01T00:00:00"}))
    with pytest.raises(RunInUse, match="claimed by pid 4242 on host gpu-node-7.*--force-unlock"), claim(tmp_path):
        pass
    notes: list[str] = []
    with claim(tmp_path, force_unlock=True, note=notes.append):
        pass
    assert "forced with --force-unlock" in notes[0]


def test_a_corrupt_claim_file_is_reported_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / CLAIM).write_text("{not json")
    notes: list[str] = []
    with claim(tmp_path, note=notes.append):  # the lock is free: the writer is gone
        pass
    assert notes == [f"note: replacing an unreadable claim file in {tmp_path}"]


def test_claim_reports_time_bound(tmp_path: Path) -> None:
    with claim(tmp_path):
        start = time.monotonic()
        with pytest.raises(RunInUse), claim(tmp_path):
            pass
        assert time.monotonic() - start < 5  # refused at once, never waiting
