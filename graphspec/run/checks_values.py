"""Values the model or its loss cannot take, found before training starts (GS417).

Shapes and dtypes are checked in :mod:`graphspec.run.data`; these checks look at the numbers:
NaN or infinity anywhere in the inputs or targets (Keras would report a NaN loss, which looks like
a learning rate that is too high), and class ids a sparse loss cannot take (an id past the last
class, a negative id, a fraction, an id past int64). Each message names the data file and array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphspec.run.sources import error


def _at(index: tuple[int, ...], rows: np.ndarray | None) -> str:
    """Where a value is: the sample's row in the file it was read from (0-based), and the position in it."""
    row = int(rows[index[0]]) if rows is not None and index[0] < len(rows) else index[0]
    return f"sample {row}" + (" of the file" if rows is not None else "") + (
        f", position {tuple(index[1:])}" if len(index) > 1 else "")


def check_finite(arr: np.ndarray, what: str, path: tuple[Any, ...], rows: np.ndarray | None = None) -> None:
    """Raise GS417 if a floating-point array holds NaN or infinity."""
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise error(f"{what}: {arr[first]} at {_at(first, rows)} ({int(bad.sum()):,} non-finite values in all)", path,
                "drop or fill those samples: a NaN or infinity in the data makes the loss NaN whatever the "
                "learning rate", code="GS417")


def check_class_ids(arr: np.ndarray, classes: int | None, what: str, path: tuple[Any, ...],
                    rows: np.ndarray | None = None) -> None:
    """Raise GS417 unless a sparse loss's targets are whole numbers in 0..classes-1."""
    if arr.size == 0 or arr.dtype.kind not in "biuf":
        return
    if arr.dtype.kind == "f":
        check_finite(arr, what, path, rows)
        fractional = arr != np.round(arr)
        if fractional.any():
            first = tuple(int(i) for i in np.argwhere(fractional)[0])
            raise error(f"{what}: {arr[first]} at {_at(first, rows)}: a sparse loss takes whole class ids", path,
                        code="GS417")
    if classes is None:
        return
    out = (arr < 0) | (arr >= classes)
    if out.any():
        first = tuple(int(i) for i in np.argwhere(out)[0])
        value = arr[first]
        shown = int(value) if arr.dtype.kind in "iu" or abs(float(value)) < 2.0**63 else f"{float(value):.6g}"
        raise error(f"{what}: class id {shown} at {_at(first, rows)}, but the model's output has {classes} classes "
                    f"(a sparse loss takes ids 0..{classes - 1}; {int(out.sum()):,} of {arr.size:,} ids are out of "
                    "range)", path,
                    f"the output needs at least {int(np.max(arr)) + 1} units" if np.max(arr) >= classes
                    and float(np.max(arr)) < 2.0**31 else "check the labels", code="GS417")
