"""How fast is `graphspec lint specs/` next to `import tensorflow`?

Both are timed in the same run, as fresh processes (best of N wall-clock
times), and the ratio is printed. The target: linting every example spec takes
under a tenth of TensorFlow's import alone.

    .venv/bin/python bench/bench_lint.py            # N=7
    .venv/bin/python bench/bench_lint.py -n 15 --json

Python's bytecode cache is enabled for the timed processes (as it is for an
installed package) with a private cache folder, and one untimed warm-up run of
each command fills it and the OS file cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.10


def _env(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["NO_COLOR"] = "1"
    return env


def best_of(cmd: list[str], n: int, env: dict[str, str], ok: set[int]) -> tuple[float, list[float]]:
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)  # warm-up
    times = []
    for _ in range(n):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in ok:
            sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}")
    return min(times), times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=7, help="runs of each command (best is reported)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    py = sys.executable
    specs = sorted(p for p in (ROOT / "specs").rglob("*.y*ml"))
    lint = [py, "-m", "graphspec", "lint", "specs/", "--quiet", "--plugin", "specs/plugins/custom_dense.py"]
    startup = [py, "-c", "pass"]
    tf = [py, "-c", "import tensorflow"]
    with tempfile.TemporaryDirectory(prefix="graphspec-bench-") as cache:
        env = _env(cache)
        t_start, _ = best_of(startup, args.n, env, {0})
        t_lint, lint_all = best_of(lint, args.n, env, {0})
        t_tf, tf_all = best_of(tf, max(3, args.n // 2), env, {0})
    ratio = t_lint / t_tf
    result = {
        "specs": len(specs),
        "lint_s": round(t_lint, 4),
        "import_tensorflow_s": round(t_tf, 4),
        "python_startup_s": round(t_start, 4),
        "ratio": round(ratio, 4),
        "target_ratio": TARGET,
        "ok": ratio < TARGET,
        "lint_runs_s": [round(t, 4) for t in lint_all],
        "tf_runs_s": [round(t, 4) for t in tf_all],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"graphspec lint specs/ ({len(specs)} specs): {t_lint * 1000:7.1f} ms  (best of {args.n})")
        print(f"python -c 'import tensorflow':   {t_tf * 1000:7.1f} ms  (best of {len(tf_all)})")
        print(f"python -c 'pass' (start-up):     {t_start * 1000:7.1f} ms")
        print(f"ratio lint / import tensorflow:  {ratio:.3f}  (target < {TARGET})  {'ok' if ratio < TARGET else 'MISSED'}")
    return 0 if ratio < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
