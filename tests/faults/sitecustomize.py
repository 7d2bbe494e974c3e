"""Injected write faults for graphspec's fault tests (imported at start-up when this folder is on PYTHONPATH).

``GRAPHSPEC_FAULT=ERRNO:PATTERN[,ERRNO:PATTERN...]`` makes opening a file whose name matches the
shell pattern for writing fail with that errno, as a full disk (ENOSPC), a read-only file system
(EROFS) or a failing device (EIO) would. Reading is never affected.
"""

import builtins
import errno
import fnmatch
import io
import os

_SPEC = os.environ.get("GRAPHSPEC_FAULT", "")
_RULES = [(getattr(errno, code), pattern) for code, _, pattern in (item.partition(":") for item in _SPEC.split(",") if item)]
_real_open = io.open


def _fault_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
    if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
        name = os.path.basename(os.fsdecode(file))
        for code, pattern in _RULES:
            if fnmatch.fnmatch(name, pattern):
                raise OSError(code, os.strerror(code), os.fsdecode(file))
    return _real_open(file, mode, *args, **kwargs)


if _RULES:
    builtins.open = _fault_open
    io.open = _fault_open
