"""Time building an imported ResNet-50 spec against keras.Model.from_config, in one run.

`graphspec import` turns keras.applications.ResNet50 (weights=None) into a
spec; this script then times, alternately and in one process:

* graphspec: check the spec text (parse, schema, graph, static shapes) and
  build it (uncompiled);
* Keras: `keras.Model.from_config(config)` on the same architecture's config;

and prints the medians and their ratio. Target: ratio <= 1.10.

    .venv/bin/python bench/bench_import.py [--repeat N] [--app ResNet50]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphspec import compiler  # noqa: E402
from graphspec import importer  # noqa: E402
from graphspec.build.backend import keras  # noqa: E402
from bench.timing import paired  # noqa: E402

TARGET = 1.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="timed builds per side (default 7)")
    parser.add_argument("--app", default="ResNet50", help="keras.applications model (default ResNet50)")
    args = parser.parse_args()

    original = getattr(keras.applications, args.app)(weights=None)
    config = original.get_config()
    t0 = time.perf_counter()
    imported = importer.import_model(original, source=f"keras.applications.{args.app}")
    t_import = time.perf_counter() - t0
    text, plugins = imported.text, imported.plugins
    params = original.count_params()
    del original

    def ours() -> Any:
        checked = compiler.check(None, text=text, plugins=plugins)
        model = compiler.build(checked, compile=False)
        assert next(iter(model.values())).count_params() == params
        return model

    # from_config consumes its argument: one deep copy per build, made outside the timing.
    configs = [copy.deepcopy(config) for _ in range(args.repeat + 1)]

    def theirs() -> Any:
        model = keras.Model.from_config(configs.pop())
        assert model.count_params() == params
        return model

    ours()  # warm up both paths (imports, caches)
    theirs()
    t_ours, t_theirs = paired(ours, theirs, args.repeat)
    ratio = t_ours / t_theirs
    print(f"{args.app}: {imported.nodes} nodes, {params:,} parameters; import (with its round-trip check) "
          f"{t_import:.2f} s")
    print(f"  graphspec check + build of the imported spec: {t_ours * 1000:8.1f} ms (median of {args.repeat})")
    print(f"  keras.Model.from_config:                      {t_theirs * 1000:8.1f} ms (median of {args.repeat})")
    print(f"  ratio {ratio:.3f} (target <= {TARGET:.2f}): {'ok' if ratio <= TARGET else 'OVER TARGET'}")
    from figures import record

    record("import", f"{args.app}: check+build / from_config", ratio, f"<= {TARGET:.2f}", met=ratio <= TARGET)
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
