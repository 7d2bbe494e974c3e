"""One table of every benchmark's headline figures, for `make bench` (and docs/performance.md).

Each bench calls :func:`record` with its figure and target; with GRAPHSPEC_BENCH_SUMMARY naming a file, the
figures are appended there as JSON lines. `python bench/figures.py FILE [--markdown OUT]` prints the table
(and writes it, with the date and the machine, as Markdown).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path


def record(bench: str, figure: str, value: float, target: str = "", *, met: bool | None = None) -> None:
    """Add one figure to the run's summary (nothing without GRAPHSPEC_BENCH_SUMMARY)."""
    path = os.environ.get("GRAPHSPEC_BENCH_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"bench": bench, "figure": figure, "value": value, "target": target, "met": met}) + "\n")


def _rows(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        load = f" (load average {os.getloadavg()[0]:.1f} when the table was written)"
    except OSError:
        load = ""
    return (f"{cpu}, {os.cpu_count()} cores{load}, Python {platform.python_version()}, "
            f"{platform.system()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--markdown", type=Path, help="also write the table here, with the date and the machine")
    parser.add_argument("--note", default="", help="a paragraph for the Markdown, under the table")
    parser.add_argument("--how", default="`make bench`", help="what produced the figures, for the Markdown")
    args = parser.parse_args()
    rows = _rows(args.file)
    status = {True: "met", False: "MISSED", None: ""}
    print(f"\n{'bench':<12} {'figure':<64} {'value':>10} {'target':<10} status")
    for r in rows:
        print(f"{r['bench']!s:<12} {r['figure']!s:<64} {float(r['value']):>10.3f} {r['target']!s:<10} "  # type: ignore[arg-type]
              f"{status[r['met']]}")  # type: ignore[index]
    if args.markdown:
        lines = ["# Performance: the latest figures", "",
                 f"Measured {datetime.date.today().isoformat()} on {_machine()} ({args.how}).", "",
                 "| bench | figure | value | target | status |", "|---|---|---|---|---|"]
        lines += [f"| {r['bench']} | {r['figure']} | {float(r['value']):.3f} | {r['target']} | "  # type: ignore[arg-type]
                  f"{status[r['met']]} |" for r in rows]  # type: ignore[index]
        if args.note:
            lines += ["", args.note]
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
