"""Build the example specs on one Keras backend and check them on another (a process has one backend).

`dump(specs, folder)` runs in the test process: it builds every model of each spec, gives it weights,
and writes per model its parameter count, random inputs and outputs. The weights of two or more
dimensions (kernels, embeddings) are drawn from a NumPy generator that both sides seed alike, so
only the small one-dimensional ones (biases, normalization statistics) travel in the files. `python tests/backend_twin.py FOLDER`,
run with another KERAS_BACKEND, builds the same specs there, checks the parameter counts, loads the
same weights and compares the outputs (atol 1e-5); it prints one JSON line of what it compared.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "specs" / "plugins" / "custom_dense.py"


class _ZeroRandom:
    """Keras's backend `random` module as its random initializers see it, drawing zeros (fast) instead."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _zeros(self, shape: Any, *args: Any, dtype: Any = None, **kwargs: Any) -> Any:
        from graphspec.build.backend import keras

        return keras.ops.zeros(shape, dtype=dtype)

    normal = truncated_normal = uniform = _zeros


@contextlib.contextmanager
def zero_initializers() -> Iterator[None]:
    """Keras's random initializers (Glorot, He, normal, uniform, ...) fill weights with zeros inside the block.

    For building models whose weights are then set (here) or never read (shapes, counts): drawing random weights
    is about half of building a large keras.applications model. Where Keras moves its initializers, nothing
    changes (slower, never wrong)."""
    try:
        module: Any = importlib.import_module("keras.src.initializers.random_initializers")
    except ImportError:
        module = None
    real = getattr(module, "random", None)
    if real is None:
        yield
        return
    module.random = _ZeroRandom(real)
    try:
        yield
    finally:
        module.random = real


def _build(spec: str) -> dict[str, Any]:
    from graphspec import compiler

    checked = compiler.check(ROOT / "specs" / spec, plugins=[str(PLUGIN)])
    assert checked.ok, [str(d) for d in checked.diagnostics.errors]
    with zero_initializers():  # every kernel is set from a seeded generator afterwards
        return compiler.build(checked, compile=False)


def _inputs(model: Any, seed: int) -> list[Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for t in model.inputs:
        shape = [1] + [d if d is not None else 7 for d in t.shape[1:]]
        if "int" in str(t.dtype):
            out.append(rng.integers(0, 1000, size=shape).astype(str(t.dtype)))
        else:
            out.append(rng.standard_normal(shape).astype("float32"))
    return out


def _outputs(model: Any, x: list[Any]) -> list[Any]:
    from graphspec.build.backend import keras

    y = model(x[0] if len(x) == 1 else x, training=False)
    return [keras.ops.convert_to_numpy(v) for v in (y if isinstance(y, (list, tuple)) else [y])]


def _weights(model: Any, seed: int, vectors: list[Any] | None = None) -> list[Any]:
    """Weights for `model`: kernels uniform in +-sqrt(3 / fan_in) from `seed`; vectors its own (or given)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    own = iter(vectors) if vectors is not None else None
    out = []
    for v in model.weights:  # shapes from the variables: copying every value out (get_weights) is 0.6 GB for VGG19
        shape = tuple(int(d) for d in v.shape)
        if len(shape) >= 2:
            bound = float(np.sqrt(3.0 / max(1, int(np.prod(shape[:-1])))))
            kernel = rng.random(size=shape, dtype=np.float32)  # float32 drawn, scaled in place: 4x faster than
            kernel *= 2 * bound  # uniform()'s float64 and a copy (VGG19's 143M weights: 2.2 s -> 0.5 s)
            kernel -= bound
            out.append(kernel.astype(str(v.dtype), copy=False))
        else:
            out.append(next(own) if own is not None else np.asarray(v.numpy()))
    return out


def dump(specs: list[str], folder: Path) -> None:
    """Build each spec here; write what the other backend must reproduce."""
    import numpy as np

    from graphspec.build.backend import keras

    index = []
    for spec in specs:
        keras.backend.clear_session(free_memory=False)  # names as in a new process
        keras.utils.set_random_seed(0)
        for name, model in _build(spec).items():
            key = f"{spec.removesuffix('.yaml')}.{name}"
            x = _inputs(model, len(index))
            weights = _weights(model, len(index))
            model.set_weights(weights)
            arrays = {f"w{i}": w for i, w in enumerate(w for w in weights if w.ndim < 2)}
            arrays.update({f"x{i}": v for i, v in enumerate(x)})
            arrays.update({f"y{i}": v for i, v in enumerate(_outputs(model, x))})
            np.savez(folder / f"{key}.npz", **arrays)
            index.append({"spec": spec, "model": name, "key": key, "params": int(model.count_params()),
                          "seed": len(index)})
    (folder / "index.json").write_text(json.dumps(index))


def check(folder: Path) -> dict[str, Any]:
    """Build each spec on this process's backend; compare with what `dump` wrote."""
    import numpy as np

    from graphspec.build.backend import keras

    index = json.loads((folder / "index.json").read_text())
    compared: dict[str, Any] = {"backend": keras.backend.backend(), "models": {}}
    for spec in dict.fromkeys(e["spec"] for e in index):
        keras.backend.clear_session(free_memory=False)  # names as in a new process
        built = _build(spec)
        for entry in (e for e in index if e["spec"] == spec):
            model = built[entry["model"]]
            assert model.count_params() == entry["params"], (entry, model.count_params())
            with np.load(folder / f"{entry['key']}.npz") as npz:
                vectors = [npz[f"w{i}"] for i in range(sum(k.startswith("w") for k in npz.files))]
                x = [npz[f"x{i}"] for i in range(sum(k.startswith("x") for k in npz.files))]
                want = [npz[f"y{i}"] for i in range(sum(k.startswith("y") for k in npz.files))]
            model.set_weights(_weights(model, entry["seed"], vectors))
            got = _outputs(model, x)
            assert len(got) == len(want), entry
            worst = 0.0
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=entry["key"])
                worst = max(worst, float(np.max(np.abs(g - w))) if g.size else 0.0)
            compared["models"][entry["key"]] = {"params": entry["params"], "max_abs_diff": worst}
    return compared


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(check(Path(sys.argv[1]))))
