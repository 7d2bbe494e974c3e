"""Training throughput on every installed Keras backend: `graphspec train` against hand-written `model.fit`.

Runs bench/bench_train.py once per installed backend (tensorflow, jax, torch), each in its own
process (a process has one Keras backend), and prints each run's figures and a summary: samples
per second of `graphspec train` and of the fastest hand-written `model.fit` on that backend, and
their ratio (target >= 1.0 on each backend). Arguments are passed on to bench_train.py.

    .venv/bin/python bench/bench_backends.py [--samples 60000] [--epochs 3] [--rounds 3]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphspec.build import backend  # noqa: E402  (imports no backend)


def main() -> int:
    if "-h" in sys.argv or "--help" in sys.argv:
        print(__doc__)
        return 0
    rows: list[tuple[str, float | None, float | None, float | None]] = []
    for name in backend.installed():
        env = dict(os.environ, KERAS_BACKEND=name, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_train.py"), "--backend", name,
                               *sys.argv[1:]], capture_output=True, text=True, env=env)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            print(f"{name}: failed (exit {proc.returncode})\n{proc.stderr[-2000:]}")
            rows.append((name, None, None, None))
            continue
        rates = dict(re.findall(r"^\s+(graphspec train|model\.fit \(verbose=\w+\))\s+[\d.]+ s\s+(\d+) samples/s",
                                proc.stdout, re.M))
        rate = float(rates["graphspec train"])
        fastest = max(float(v) for k, v in rates.items() if k.startswith("model.fit"))
        rows.append((name, rate, fastest, rate / fastest))
    print("\nbackend      graphspec train   fastest model.fit   ratio (target >= 1.0)")
    for name, ours, hand, ratio in rows:
        if ours is None or hand is None or ratio is None:
            print(f"{name:<12} failed")
        else:
            print(f"{name:<12} {ours:12.0f}/s   {hand:14.0f}/s   {ratio:8.3f}")
            from figures import record

            record("backends", f"{name}: train / fastest model.fit", ratio, ">= 1.0", met=ratio >= 1.0)
    return 0 if all(r[1] is not None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
