"""Time compiling each example spec against the hand-written Keras code, in one process.

For every spec of the functional API guide: the median time of
`graphspec` (check + build, uncompiled, like the hand-written code) and of
the guide's hand-written Keras code building the same models, and their
ratio. Target: ratio <= 1.10 (graphspec adds under 10% to Keras's own build).

    .venv/bin/python bench/bench_compile.py [--repeat N] [--skip-vgg]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphspec import compiler  # noqa: E402
from graphspec.build.backend import keras  # noqa: E402
from bench.timing import paired  # noqa: E402
from tests.guide import CASES, PLUGIN  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--skip-vgg", action="store_true", help="skip the 143M-parameter VGG19 spec")
    args = parser.parse_args()
    rows = []
    for spec, (hand, _) in sorted(CASES.items()):
        if args.skip_vgg and spec.startswith("vgg19"):
            continue
        path = ROOT / "specs" / spec
        plugins = [str(PLUGIN)]

        def ours(path: Path = path, plugins: list[str] = plugins) -> None:
            compiler.build(compiler.check(path, plugins=plugins), compile=False)

        def theirs(hand=hand) -> None:  # type: ignore[no-untyped-def]
            hand(keras)

        ours()
        theirs()  # warm-up: imports, plugin load, first-call caches
        repeat = 3 if spec.startswith("vgg19") else args.repeat
        t_ours, t_theirs = paired(ours, theirs, repeat)
        rows.append((spec, t_ours, t_theirs, t_ours / t_theirs))
    print(f"{'spec':<26} {'graphspec':>11} {'hand Keras':>11} {'ratio':>7}")
    for spec, a, b, r in rows:
        print(f"{spec:<26} {a * 1000:9.1f}ms {b * 1000:9.1f}ms {r:7.3f}")
    worst = max(r for *_, r in rows)
    print(f"worst ratio {worst:.3f} (target <= 1.10)")
    from figures import record

    record("compile", "worst ratio graphspec / hand-written build", worst, "<= 1.10", met=worst <= 1.10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
