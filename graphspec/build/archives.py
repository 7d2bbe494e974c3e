"""Zip archives from anyone (`.keras` models, `.npz` data): their inflated sizes are checked from the
zip's directory before a byte is inflated.

A zip states each member's stored and inflated size, and Python's :mod:`zipfile` never yields more
than the stated inflated size, so checking the directory bounds what reading can cost:

* a member that inflates to over :data:`BOMB_FLOOR` and to more than :data:`MAX_EXPANSION` times
  its stored size is a zip bomb (honest data rarely compresses 100:1; Keras's own loader uses the
  same ratio);
* the JSON members of a `.keras` file (its config and metadata) are capped at :data:`MAX_JSON`;
* all members together must fit in this machine's memory (:func:`memory_bytes`).

No backend is imported here: the importer and the run stage both use it before loading anything.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

MAX_EXPANSION = 100
BOMB_FLOOR = 64 << 20
MAX_JSON = 64 << 20
MAX_MEMBERS = 100_000
KERAS_JSON = ("config.json", "metadata.json")


class ArchiveProblem(Exception):
    """The archive is unreadable or inflates past a cap; the message says which member and why."""


def memory_bytes() -> int:
    """This machine's physical memory (a generous default where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def size_text(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} bytes"


def _shown(name: str, limit: int = 80) -> str:
    text = name.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


def check_zip(path: str | Path, *, json_members: tuple[str, ...] = (), budget: int | None = None) -> list[zipfile.ZipInfo]:
    """The archive's members, once their stated sizes pass the caps; else :class:`ArchiveProblem`."""
    budget = memory_bytes() // 2 if budget is None else budget
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise ArchiveProblem(f"not a zip archive ({exc})") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ArchiveProblem(f"cannot read the archive ({getattr(exc, 'strerror', None) or exc})") from None
    if len(infos) > MAX_MEMBERS:
        raise ArchiveProblem(f"the archive has {len(infos):,} members (the cap is {MAX_MEMBERS:,})")
    total = 0
    for info in infos:
        size, stored = info.file_size, max(info.compress_size, 1)
        if size > BOMB_FLOOR and size > MAX_EXPANSION * stored:
            raise ArchiveProblem(
                f"member {_shown(info.filename)} inflates to {size_text(size)} from {size_text(stored)} "
                f"(over {MAX_EXPANSION}:1): a zip bomb, not read")
        if info.filename in json_members and size > MAX_JSON:
            raise ArchiveProblem(f"member {_shown(info.filename)} is {size_text(size)} of JSON "
                                 f"(the cap is {size_text(MAX_JSON)}), not read")
        total += size
    if total > budget:
        raise ArchiveProblem(f"the archive inflates to {size_text(total)}, over the {size_text(budget)} "
                             "graphspec reads at once (half of this machine's memory)")
    return infos
