"""One process owns a run folder: an exclusive claim taken before anything is written in it.

The claim is ``R/.claim``, held with ``fcntl.flock`` while the owner runs and
holding the owner's pid, host and start time. The kernel drops a ``flock`` when
its process dies, however it dies, so on one host a claim can never outlive its
owner: a second process that gets the lock while the file still names an owner
knows that owner is gone (a ``kill -9``) and takes the claim over, with a note.
A claim written on another host (a shared file system, where ``flock`` may not
reach across machines) is never broken silently: ``--force-unlock`` takes it.

Released on every exit path (the context manager, and the kernel on a crash);
a released claim is an empty file, so two processes never race on the file's
existence, only on the lock.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphspec.errors import GraphSpecError
from graphspec.run import folder_guard

CLAIM = ".claim"


class RunInUse(GraphSpecError):
    """Another process owns the run folder (exit 1)."""


@dataclass(frozen=True)
class Owner:
    """Who holds (or held) a claim."""

    pid: int
    host: str
    since: str
    command: str = ""

    def text(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.since}"


def _me(command: str) -> Owner:
    now = datetime.datetime.now(datetime.UTC).astimezone().isoformat(timespec="seconds")
    return Owner(os.getpid(), socket.gethostname(), now, command)


def _read(fd: int) -> Owner | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
        if len(raw) > 1 << 20:
            break
    if not raw.strip():
        return None
    try:
        data: Any = json.loads(raw.decode("utf-8"))
        return Owner(int(data["pid"]), str(data["host"]), str(data["since"]), str(data.get("command", "")))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return Owner(0, "?", "?", "an unreadable claim file")


def _write(fd: int, owner: Owner | None) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    if owner is not None:
        os.write(fd, json.dumps(owner.__dict__).encode("utf-8") + b"\n")
    os.fsync(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def claim(run_dir: str | Path, *, command: str = "train", force_unlock: bool = False,
          note: Callable[[str], None] | None = None) -> Iterator[Owner]:
    """Own ``run_dir`` for the ``with`` block, or raise :class:`RunInUse` at once, before anything is built."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM
    try:  # never through a link, and nothing truncated before the lock is ours (a link to ~/.bashrc is refused)
        fd = folder_guard.open_nofollow(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunInUse(f"cannot claim run folder {folder}: {exc.strerror or exc} ({path})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunInUse(f"cannot claim run folder {folder}: {exc.strerror or exc}") from None
            holder = _read(fd)
            deadline = time.monotonic() + 2.0
            while holder is None and time.monotonic() < deadline:  # the owner writes who it is right after locking
                time.sleep(0.01)
                holder = _read(fd)
            who = holder.text() if holder is not None else "another process"
            raise RunInUse(f"{folder} is in use by {who}") from None
        me = _me(command)
        previous = _read(fd)
        if previous is not None:
            _take_over(folder, previous, me, force_unlock, note)
        _write(fd, me)
        try:
            yield me
        finally:
            with contextlib.suppress(OSError):
                _write(fd, None)
            # closing the descriptor below releases the lock
    finally:
        os.close(fd)


def _take_over(folder: Path, previous: Owner, me: Owner, force: bool, note: Callable[[str], None] | None) -> None:
    """The lock was free but the file names an owner: decide whether that claim is stale."""
    say = note or (lambda _text: None)
    if previous.pid <= 0:  # unreadable, and the lock is free: nobody is holding it
        say(f"note: replacing an unreadable claim file in {folder}")
        return
    if previous.host != me.host and not force:
        raise RunInUse(
            f"{folder} is claimed by {previous.text()}; graphspec cannot tell from here whether that run "
            "is still going. If it is not, pass --force-unlock to take the claim")
    if previous.host == me.host and previous.pid != me.pid and previous.pid > 0 and _alive(previous.pid) and not force:
        # The lock is free, so the process named is not holding it: a reused pid or a claim made
        # without flock. Still, a live process by that pid is reason enough to ask.
        raise RunInUse(
            f"{folder} is claimed by {previous.text()}, and a process with that pid is running; "
            "if it is not the run's owner, pass --force-unlock")
    why = "forced with --force-unlock" if force else "its process is gone"
    say(f"note: taking over the claim on {folder} from {previous.text()} ({why})")
