"""Learning curves of runs (`graphspec runs DIR --plot val_loss -o curves.png`): one line per run, drawn
with matplotlib from each run's `history.json`, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError
from graphspec.run import artifacts
from graphspec.run.folders import HISTORY

FORMATS = (".png", ".svg", ".pdf")


def _history(path: Path) -> list[dict[str, Any]]:
    try:
        rows = json.loads((path / HISTORY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def plot(rows: list[dict[str, Any]], metric: str, output: Path, *, limit: int = 50) -> int:
    """Draw `metric` per epoch for each run (the first `limit` rows, best first); the number of lines drawn."""
    if output.suffix.lower() not in FORMATS:
        raise UsageError(f"-o {output}: write a {', '.join(FORMATS)} file")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'keras-graphspec[experiments]'") from None
    curves = []
    for r in rows[:limit]:
        points = [(int(h["epoch"]), float(h[metric])) for h in _history(Path(r["path"]))
                  if metric in h and isinstance(h.get("epoch"), int) and isinstance(h[metric], (int, float))]
        if points:
            curves.append((r["name"], points))
    if not curves:
        raise UsageError(f"--plot {metric}: no run logged `{metric}` per epoch")
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for name, points in curves:
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 30 else None,
                label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch")
    ax.grid(True, alpha=0.3)
    if len(curves) <= 20:
        ax.legend(fontsize="small")
    fig.tight_layout()
    with artifacts.atomic_path(output, output.suffix) as tmp:
        fig.savefig(tmp, format=output.suffix[1:])
    plt.close(fig)
    return len(curves)
