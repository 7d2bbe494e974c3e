"""How fast is `graphspec lint specs/` next to `import tensorflow`, and how does lint scale?

Both are timed in the same run, as fresh processes (best of N wall-clock
times), and the ratio is printed. The target: linting every example spec takes
under a tenth of TensorFlow's import alone.

Scale: generated chains of 1, 2,000 and 10,000 Dense nodes are linted the same
way. The front end is everything lint does after start-up: the time for N nodes
minus the time for 1. Targets: under 0.5 s for 10,000 nodes, and at most 6x the
2,000-node front end for 10,000 nodes (linear would be 5x).

    .venv/bin/python bench/bench_lint.py            # N=7
    .venv/bin/python bench/bench_lint.py -n 15 --json
    .venv/bin/python bench/bench_lint.py --scale-only

Python's bytecode cache is enabled for the timed processes (as it is for an
installed package) with a private cache folder, and one untimed warm-up run of
each command fills it and the OS file cache.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.10
CHAIN_SIZES = (1, 2_000, 10_000)
FRONT_END_TARGET_S = 0.5  # for 10,000 nodes
GROWTH_TARGET = 6.0  # front end at 10,000 nodes / at 2,000 nodes


def chain_spec(n: int) -> str:
    """A spec whose graph is a chain of `n` Dense nodes."""
    lines = ["graphspec: 1", f"name: chain_{n}", "inputs:", "  x: {shape: [8]}", "nodes:"]
    lines += [f"  dense_{i}: {{type: Dense, units: 8}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def scale(n_runs: int, env: dict[str, str], folder: Path) -> dict[str, object]:
    """Best-of-N lint times of the chains, the front ends and how they grow."""
    py = sys.executable
    times: dict[int, float] = {}
    cpu_times: dict[int, float] = {}
    for n in CHAIN_SIZES:
        spec = folder / f"chain_{n}.yaml"
        spec.write_text(chain_spec(n), encoding="utf-8")
        cpu: list[float] = []
        times[n], _ = best_of([py, "-m", "graphspec", "lint", str(spec), "--quiet"], n_runs, env, {0}, cpu)
        cpu_times[n] = min(cpu)
    front = {n: times[n] - times[1] for n in CHAIN_SIZES[1:]}
    cpu_front = {n: cpu_times[n] - cpu_times[1] for n in CHAIN_SIZES[1:]}
    growth = front[10_000] / front[2_000] if front[2_000] > 0 else float("inf")
    return {
        "lint_s": {str(n): round(t, 4) for n, t in times.items()},
        "front_end_s": {str(n): round(t, 4) for n, t in front.items()},
        "cpu_s": {str(n): round(t, 4) for n, t in cpu_times.items()},
        "cpu_front_end_s": {str(n): round(t, 4) for n, t in cpu_front.items()},
        "growth_10k_over_2k": round(growth, 2),
        "front_end_target_s": FRONT_END_TARGET_S,
        "growth_target": GROWTH_TARGET,
        "ok": front[10_000] < FRONT_END_TARGET_S and growth <= GROWTH_TARGET,
    }


def _print_scale(result: dict[str, object], n_runs: int) -> None:
    lint_s = result["lint_s"]
    front = result["front_end_s"]
    assert isinstance(lint_s, dict) and isinstance(front, dict)
    cpu_front = result["cpu_front_end_s"]
    assert isinstance(cpu_front, dict)
    for n in CHAIN_SIZES:
        extra = (f"  front end {front[str(n)] * 1000:7.1f} ms (CPU {cpu_front[str(n)] * 1000:6.1f} ms)"
                 if str(n) in front else "")
        print(f"lint chain of {n:>6,} Dense nodes: {lint_s[str(n)] * 1000:7.1f} ms{extra}  (best of {n_runs})")
    print(f"front end 10,000 / 2,000 nodes:  {result['growth_10k_over_2k']}x  (target <= {GROWTH_TARGET}x; "
          f"10,000 nodes < {FRONT_END_TARGET_S} s)  {'ok' if result['ok'] else 'MISSED'}")


def _env(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["NO_COLOR"] = "1"
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def best_of(cmd: list[str], n: int, env: dict[str, str], ok: set[int],
            cpu: list[float] | None = None) -> tuple[float, list[float]]:
    """Best wall-clock time of `n` runs (and, into `cpu`, the CPU time of each: steadier on a busy machine)."""
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)  # warm-up
    times = []
    for _ in range(n):
        cpu_before = _children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(_children_cpu() - cpu_before)
        if proc.returncode not in ok:
            sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}")
    return min(times), times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=7, help="runs of each command (best is reported)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--scale-only", action="store_true", help="only the generated chains (no TensorFlow)")
    args = ap.parse_args()
    if args.scale_only:
        with tempfile.TemporaryDirectory(prefix="graphspec-bench-") as tmp:
            env = _env(str(Path(tmp) / "cache"))
            result = scale(args.n, env, Path(tmp))
        if args.json:
            print(json.dumps({"scale": result}, indent=2))
        else:
            _print_scale(result, args.n)
        return 0 if result["ok"] else 1

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
        scaled = scale(args.n, env, Path(cache))
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
        "scale": scaled,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"graphspec lint specs/ ({len(specs)} specs): {t_lint * 1000:7.1f} ms  (best of {args.n})")
        print(f"python -c 'import tensorflow':   {t_tf * 1000:7.1f} ms  (best of {len(tf_all)})")
        print(f"python -c 'pass' (start-up):     {t_start * 1000:7.1f} ms")
        print(f"ratio lint / import tensorflow:  {ratio:.3f}  (target < {TARGET})  {'ok' if ratio < TARGET else 'MISSED'}")
        from figures import record

        record("lint", "lint specs/ / import tensorflow", ratio, f"< {TARGET}", met=ratio < TARGET)
        _print_scale(scaled, args.n)
    return 0 if ratio < TARGET and scaled["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
