"""`graphspec launch --local N -- train SPEC ...`: N training processes on this host, joined on loopback.

Each worker is `python -m graphspec train ...` with Keras's own distribution variables
(``KERAS_DISTRIBUTION_JOB_ADDRESSES`` = 127.0.0.1 and a free port, ``..._NUM_PROCESSES``,
``..._PROCESS_ID``) and `--distribute data-parallel` unless the command names a strategy. Before
any worker starts, the spec is checked and its global batch must split over the replicas (GS414).

Output of each worker comes through line by line, prefixed with its id (``[0] ...``); only process
0 shows progress. When a worker fails, the others are stopped (they stop by themselves when their next
collective misses it; else SIGTERM after `PEER_GRACE_S`, then SIGKILL) and the launcher exits with the
first failure's code. A worker that fails alone exits at
once, without JAX's shutdown barrier (which would wait minutes for the others, blocked in a collective
that waits for it), so a failure ends the launch in seconds; the others report the lost peer (GS432). Ctrl-C (SIGINT) or SIGTERM to
the launcher is passed on to every worker once, so they stop together after a completed epoch;
a second Ctrl-C kills them. Workers run in sessions of their own so that a terminal's Ctrl-C
reaches them only through the launcher.

Nothing here imports Keras: the launcher is a plain process supervisor.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from graphspec.diagnostics import Diagnostic, Severity
from graphspec.errors import SpecError, UsageError
from graphspec.run import distribute

# `train` options that take a value (to find SPEC and the --set overrides among the arguments).
_VALUED = {"--set", "-s", "--epochs", "-e", "--run-dir", "-r", "--seed", "--model", "-m", "--plugin", "-p",
           "--backend", "-b", "--distribute", "--devices", "--coordinator", "--num-processes", "--process-id",
           "--track", "--experiment"}
_ORDERLY = {130, 143}  # a worker stopped by SIGINT / SIGTERM after a completed epoch: the others follow
KILL_GRACE_S = 5.0
# After a worker failed, the time the others have to notice on their own (their next collective fails:
# they report the lost peer and mark the run failed) before they are sent SIGTERM.
PEER_GRACE_S = 10.0
ORDERLY_GRACE_S = 120.0


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _options(args: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(positional arguments, option -> values) of a `train` command line."""
    positional: list[str] = []
    values: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and "=" in a and a.split("=", 1)[0] in _VALUED:
            key, value = a.split("=", 1)
            values.setdefault(key, []).append(value)
        elif a in _VALUED and i + 1 < len(args):
            values.setdefault(a, []).append(args[i + 1])
            i += 1
        elif a.startswith("-"):
            values.setdefault(a, []).append("")
        else:
            positional.append(a)
        i += 1
    return positional, values


def _get(values: dict[str, list[str]], *names: str) -> list[str]:
    return [v for n in names for v in values.get(n, [])]


def preflight(train_args: list[str], workers: int, devices_per_process: int | None) -> None:
    """Check the spec and that its global batch splits over the replicas, before any worker starts."""
    from graphspec import compiler
    from graphspec.run import folders
    from graphspec.spec import plugins as plugins_mod

    if not train_args or train_args[0] != "train":
        raise UsageError("graphspec launch runs `train`: graphspec launch --local N -- train SPEC [options]")
    positional, values = _options(train_args[1:])
    if not positional:
        raise UsageError("graphspec launch: the train command names no SPEC")
    for taken in ("--num-processes", "--process-id", "--coordinator"):
        if taken in values:
            raise UsageError(f"graphspec launch sets {taken} for each worker; leave it out of the train command")
    spec = Path(positional[0])
    if "--resume" in values:
        run_dirs = _get(values, "--run-dir", "-r")
        spec = folders.resume_target(spec, run_dirs[-1] if run_dirs else None) / folders.SPEC
    sets = _get(values, "--set", "-s")
    checked = compiler.check(spec, plugins=plugins_mod.all_plugins(_get(values, "--plugin", "-p")), sets=sets)
    checked.raise_for_errors()
    devices = _get(values, "--devices")
    per = int(devices[-1]) if devices and devices[-1].isdigit() else (devices_per_process or 1)
    replicas = workers * per
    data = checked.spec.data if checked.spec is not None else None
    if data is None or data.batch_size % replicas == 0:
        return
    assert checked.source is not None
    where = checked.source.location(("data", "batch_size"), key=True)
    message = (f"data.batch_size {data.batch_size} (the global batch) does not split evenly over {replicas} "
               f"replicas ({workers} processes x {per} device(s))")
    raise SpecError([Diagnostic("GS414", Severity.ERROR, message, where,
                                distribute.batch_hint(data.batch_size, replicas))],
                    {checked.file: checked.source.text})


def worker_command(train_args: list[str], devices_per_process: int | None, python: str = sys.executable) -> list[str]:
    """The command line of one worker."""
    _, values = _options(train_args[1:])
    cmd = [python, "-m", "graphspec", *train_args]
    if "--distribute" not in values:
        cmd += ["--distribute", "data-parallel"]
    if devices_per_process is not None and "--devices" not in values:
        cmd += ["--devices", str(devices_per_process)]
    return cmd


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def launch(train_args: list[str], *, workers: int, devices_per_process: int | None = None,
           out: IO[str] | None = None, python: str = sys.executable, env: dict[str, str] | None = None,
           on_start: Callable[[list[subprocess.Popen[str]]], None] | None = None) -> int:
    """Run `workers` processes of `train_args` on loopback; the exit code of the first failure (0 if none)."""
    if workers < 1:
        raise UsageError(f"--local must be at least 1, got {workers}")
    preflight(train_args, workers, devices_per_process)
    stream = out or sys.stdout
    port = free_port()
    base = dict(os.environ if env is None else env)
    base.update({distribute.ENV_ADDRESSES: f"127.0.0.1:{port}", distribute.ENV_PROCESSES: str(workers),
                 "PYTHONUNBUFFERED": "1"})
    cmd = worker_command(train_args, devices_per_process, python)
    with tempfile.TemporaryDirectory(prefix="graphspec-launch-", ignore_cleanup_errors=True) as scratch:
        base[distribute.ENV_SCRATCH] = scratch  # the workers' scratch folders, removed with it at the end
        return _run_workers(cmd, base, workers, stream, on_start)


def _run_workers(cmd: list[str], base: dict[str, str], workers: int, stream: IO[str],
                 on_start: Callable[[list[subprocess.Popen[str]]], None] | None) -> int:
    lock = threading.Lock()
    procs: list[subprocess.Popen[str]] = []
    pumps: list[threading.Thread] = []
    for i in range(workers):
        worker_env = {**base, distribute.ENV_PROCESS_ID: str(i)}
        p = subprocess.Popen(cmd, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             bufsize=1, start_new_session=True)
        procs.append(p)
        t = threading.Thread(target=_pump, args=(p, f"[{i}] ", stream, lock), daemon=True)
        t.start()
        pumps.append(t)
    if on_start is not None:
        on_start(procs)
    code = _supervise(procs, stream, lock)
    for t in pumps:
        t.join(timeout=5)
    return code


# The start-up lines TensorFlow, XLA and gloo write from C++ (absl's info and warning records, absl's
# preamble, gloo's peer count): `train` hides them by muting fd 2 while it imports, which a worker's
# later imports (the collectives, tf.data on JAX) escape. GRAPHSPEC_TF_LOGS=1 shows them, as for train.
_NOISE = re.compile(r"^(?:[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
                    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                    r"|\[Gloo\] Rank \d+ is connected to"
                    r"|\*\*\* Check failure stack trace: \*\*\*|\s+@\s+0x[0-9a-f]+\s)")


def is_noise(line: str) -> bool:
    """Whether a worker's output line is back-end start-up chatter (hidden unless GRAPHSPEC_TF_LOGS=1)."""
    return os.environ.get("GRAPHSPEC_TF_LOGS") != "1" and _NOISE.match(line) is not None


def _pump(p: subprocess.Popen[str], prefix: str, stream: IO[str], lock: threading.Lock) -> None:
    assert p.stdout is not None
    for line in p.stdout:
        if is_noise(line):
            continue
        with lock:
            stream.write(prefix + line.rstrip("\r\n").split("\r")[-1] + "\n")
            stream.flush()


def _signal_all(procs: list[subprocess.Popen[str]], signum: int) -> None:
    for p in procs:
        if p.returncode is None:  # (reaped by its waiting thread in _supervise)
            try:
                os.kill(p.pid, signum)
            except ProcessLookupError:
                pass


def _supervise(procs: list[subprocess.Popen[str]], stream: IO[str], lock: threading.Lock) -> int:
    first: int | None = None
    deadline: float | None = None
    term_at: float | None = None
    forwarded: list[int] = []

    def note(text: str) -> None:
        with lock:
            stream.write(f"[launch] {text}\n")
            stream.flush()

    def handler(signum: int, frame: Any) -> None:
        if forwarded and signum == signal.SIGINT:
            note("killing every worker")
            _signal_all(procs, signal.SIGKILL)
            return
        forwarded.append(signum)
        note(f"{signal.Signals(signum).name}: passed on to every worker (they stop after a completed epoch)")
        _signal_all(procs, signum)

    # The workers in the order they exited: a worker that failed first and the peer that failed on missing it
    # may both be gone by the next look, and the first failure's code is the launch's.
    ended: list[int] = []

    def wait(i: int) -> None:
        procs[i].wait()
        ended.append(i)

    for i in range(len(procs)):
        threading.Thread(target=wait, args=(i,), daemon=True).start()
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    for s in old:
        signal.signal(s, handler)
    try:
        while len(ended) < len(procs):
            for i in list(ended):
                rc = procs[i].returncode
                if rc is None or rc == 0 or first is not None:
                    continue
                first = _exit_code(rc)
                orderly = first in _ORDERLY
                note(f"worker {i} exited with code {first}; "
                     + ("waiting for the others to stop" if orderly else "stopping the others"))
                now = time.monotonic()
                if not orderly:
                    term_at = now + PEER_GRACE_S
                deadline = now + (ORDERLY_GRACE_S if orderly else PEER_GRACE_S + KILL_GRACE_S)
            if term_at is not None and time.monotonic() > term_at:
                _signal_all(procs, signal.SIGTERM)
                term_at = None
            if deadline is not None and time.monotonic() > deadline:
                _signal_all(procs, signal.SIGKILL)
                deadline = None
            time.sleep(0.1)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if first is None:
        codes = [_exit_code(procs[i].returncode) for i in ended if procs[i].returncode]
        first = codes[0] if codes else 0
    return first
