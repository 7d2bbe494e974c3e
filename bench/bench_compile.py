"""Time compiling each example spec against the hand-written Keras code, in one process.

For every spec of the functional API guide: the median time of
`graphspec` (check + build, uncompiled, like the hand-written code) and of
the guide's hand-written Keras code building the same models, and their
ratio. Target: ratio <= 1.10 (graphspec adds under 10% to Keras's own build).

The sides alternate round by round (which goes first, too), each from a clean
Keras session and a collected heap. Beside the headline (median over median,
wall clock) the table shows the median of the rounds' own ratios, the CPU-time
ratio (which other processes on a shared machine do not move), and the part of
graphspec's time spent in `check` (the static stages, before Keras is called).
Small specs get more rounds, up to `--budget` seconds a spec.

    .venv/bin/python bench/bench_compile.py [--repeat N] [--budget S] [--skip-vgg]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphspec import compiler  # noqa: E402
from graphspec.build.backend import keras  # noqa: E402
from bench.timing import rounds, timed  # noqa: E402
from tests.guide import CASES, PLUGIN  # noqa: E402

TARGET = 1.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=21, help="rounds at least (VGG19: 5)")
    parser.add_argument("--budget", type=float, default=6.0,
                        help="seconds a spec may take: small specs get more rounds, up to 4x --repeat")
    parser.add_argument("--skip-vgg", action="store_true", help="skip the 143M-parameter VGG19 spec")
    args = parser.parse_args()
    rows = []
    for spec, (hand, _) in sorted(CASES.items()):
        if args.skip_vgg and spec.startswith("vgg19"):
            continue
        path = ROOT / "specs" / spec
        plugins = [str(PLUGIN)]
        checks: list[float] = []

        def ours(path: Path = path, plugins: list[str] = plugins, checks: list[float] = checks) -> None:
            t0 = time.perf_counter()
            checked = compiler.check(path, plugins=plugins)
            checks.append(time.perf_counter() - t0)
            compiler.build(checked, compile=False)

        def theirs(hand=hand) -> None:  # type: ignore[no-untyped-def]
            hand(keras)

        ours()
        t0 = time.perf_counter()
        timed(theirs)  # warm-up: imports, plugin load, first-call caches; and the size of a round
        one = time.perf_counter() - t0  # with the clean session and the collection before it
        checks.clear()
        if spec.startswith("vgg19"):
            repeat = 5  # 1.2 s a build: a median of 3 is one loaded round away from noise
        else:
            repeat = max(args.repeat, min(4 * args.repeat, int(args.budget / (2 * one))))
            repeat += repeat % 2  # even: each side goes first as often
        r = rounds(ours, theirs, repeat)
        rows.append((spec, repeat, r, statistics.median(checks)))
    print(f"{'spec':<26} {'rounds':>6} {'graphspec':>11} {'hand Keras':>11} {'ratio':>7} {'paired':>7} "
          f"{'CPU':>7} {'check':>9}")
    for spec, repeat, r, check_s in rows:
        a, b = statistics.median(r.ours), statistics.median(r.theirs)
        print(f"{spec:<26} {repeat:>6} {a * 1000:9.1f}ms {b * 1000:9.1f}ms {r.ratio:7.3f} {r.paired_ratio:7.3f} "
              f"{r.cpu_ratio:7.3f} {check_s * 1000:7.2f}ms")
    worst = max(r.ratio for _, _, r, _ in rows)
    worst_cpu = max(r.cpu_ratio for _, _, r, _ in rows)
    print(f"worst ratio {worst:.3f} (target <= {TARGET:.2f}); worst CPU-time ratio {worst_cpu:.3f}")
    from figures import record

    record("compile", "worst ratio graphspec / hand-written build", worst, f"<= {TARGET:.2f}", met=worst <= TARGET)
    record("compile", "worst CPU-time ratio (same rounds)", worst_cpu, f"<= {TARGET:.2f}", met=worst_cpu <= TARGET)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
