"""`adapt()`: the state of preprocessing nodes computed from the training data before a fresh run trains.

Which nodes need it is decided statically (:func:`graphspec.analysis.preprocessing_checks.adaptable_nodes`:
a `Normalization` without `mean`/`variance`, a lookup without `vocabulary`, a `Discretization` without
`bin_boundaries`). Each is adapted, in topological order, on the training split streamed batch by batch
(at most `data.adapt_samples` samples, no augmentation); a node deeper in the model is adapted on what
reaches it (the model up to its input, in inference mode, the nodes before it already adapted).

The state is saved with the model: a Normalization's mean and variance are weights of the checkpoints;
a vocabulary or bin boundaries, which `load_weights` does not restore, are also written to the run
folder (`adapted.json`) and set again on the model built for `--resume`, `evaluate` and `predict`
(:func:`restore`). A resumed run never adapts again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from graphspec.analysis.preprocessing_checks import adaptable_nodes
from graphspec.run import artifacts

ADAPTED = "adapted.json"
_KEPT_IN_FILE = {"TextVectorization", "StringLookup", "IntegerLookup", "Discretization"}


def find_layer(model: Any, name: str) -> Any:
    """The layer of node `name` (a layer of the model, or of a model nested in it)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.name == name:
            return layer
    return None


def _x_batches(dataset: Any) -> Iterator[Any]:
    """The inputs of each batch of a tf.data dataset, a Grain dataset or a keras.utils.PyDataset, as NumPy."""
    if hasattr(dataset, "as_numpy_iterator") or not hasattr(dataset, "__getitem__"):  # tf.data, Grain: iterate
        for item in dataset.as_numpy_iterator() if hasattr(dataset, "as_numpy_iterator") else dataset:
            yield item[0] if isinstance(item, tuple) else item
        return
    for i in range(len(dataset)):
        item = dataset[i]
        yield item[0] if isinstance(item, tuple) else item


def _take(batches: Iterable[Any], limit: int | None) -> Iterator[Any]:
    """The batches, cut after `limit` samples."""
    seen = 0
    for x in batches:
        n = len(next(iter(x.values())) if isinstance(x, dict) else x)
        if limit is not None and seen + n > limit:
            keep = limit - seen
            x = {k: v[:keep] for k, v in x.items()} if isinstance(x, dict) else x[:keep]
            n = keep
        if n > 0:
            yield x
        seen += n
        if limit is not None and seen >= limit:
            return


def _feeder(model: Any, layer: Any) -> Callable[[Any], Any]:
    """A function from a batch of model inputs to what reaches `layer`."""
    from graphspec.build.backend import keras

    target = layer.input
    for i, t in enumerate(model.inputs):
        if t is target:
            name = t.name

            def pick(x: Any, i: int = i, name: str = name) -> Any:
                return x[name] if isinstance(x, dict) else (x[i] if isinstance(x, (list, tuple)) else x)
            return pick
    sub = keras.Model(model.inputs, target)

    def run(x: Any) -> Any:
        return keras.ops.convert_to_numpy(sub(x, training=False))
    return run


def adapt_model(model: Any, graph: Any, model_name: str, batches: Callable[[], Any], *,
                limit: int | None, say: Callable[[str], None] | None = None) -> list[str]:
    """Adapt every node that needs it on `batches()` (a tf.data dataset or a keras.utils.PyDataset of input
    batches, made anew for each node); returns the nodes adapted."""
    done = []
    for node in adaptable_nodes(graph, graph.models[model_name]):
        layer = find_layer(model, node)
        if layer is None:
            continue
        feed = _feeder(model, layer)
        layer.adapt(feed(x) for x in _take(_x_batches(batches()), limit))
        done.append(node)
    if done and say is not None:
        what = ", ".join(f"`{n}`" for n in done)
        say(f"adapted {what} on {'the training data' if limit is None else f'{limit:,} training samples'}")
    return done


def adapt_run(trainer: Any) -> None:
    """Adapt a fresh run's nodes (a :class:`graphspec.run.trainer.Trainer`) and save what the weights do not hold.

    The batches are the training split as the model sees it in inference: not augmented, but through a
    crop's centre (:meth:`graphspec.run.augment.Augment.evaluation`)."""
    from graphspec.diagnostics import Diagnostic, Severity
    from graphspec.errors import SpecError
    from graphspec.run import pipeline

    augment = trainer.augment()
    data_spec = trainer.data_spec

    def batches() -> Any:
        ds = pipeline.eval_dataset(trainer.data.train, trainer.io, batch_size=data_spec.batch_size, targets=False,
                                   prefetch=False)
        return augment.evaluation(ds, targets=False) if augment else ds

    try:
        done = adapt_model(trainer.model, trainer.checked.graph, trainer.model_name, batches,
                           limit=data_spec.adapt_samples, say=trainer.say if trainer.runtime.chief else None)
    except (ValueError, TypeError) as exc:  # Keras refusing the data (strings for a Normalization, ...)
        raise SpecError([Diagnostic("GS411", Severity.ERROR, "adapting the preprocessing nodes on the training data "
                                    f"failed: {exc}", trainer.locate(("data",)))]) from None
    save(trainer.run_dir, state(trainer.model, done))


def state(model: Any, nodes: list[str]) -> dict[str, Any]:
    """What `load_weights` would not restore of the adapted nodes: vocabularies and bin boundaries."""
    out: dict[str, Any] = {}
    for node in nodes:
        layer = find_layer(model, node)
        kind = type(layer).__name__
        if kind not in _KEPT_IN_FILE:
            continue
        if kind == "Discretization":
            out[node] = {"type": kind, "bin_boundaries": [float(b) for b in layer.bin_boundaries]}
        else:
            vocab = layer.get_vocabulary(include_special_tokens=False)
            out[node] = {"type": kind, "vocabulary": [v if isinstance(v, (str, int)) else _plain(v) for v in vocab]}
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


def save(run_dir: Path, saved: dict[str, Any]) -> None:
    """Write the adapted state the checkpoints do not hold (nothing when there is none)."""
    if saved:
        artifacts.atomic_write_json(run_dir / ADAPTED, saved)


def restore(model: Any, run_dir: Path | None) -> None:
    """Set the vocabularies and bin boundaries a run adapted on a freshly built model of its spec."""
    path = run_dir / ADAPTED if run_dir is not None else None
    if path is None or not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(saved, dict):
        return
    for node, entry in saved.items():
        layer = find_layer(model, node)
        if layer is None or not isinstance(entry, dict) or entry.get("type") != type(layer).__name__:
            continue
        if "bin_boundaries" in entry and isinstance(entry["bin_boundaries"], list):
            layer.bin_boundaries = [float(b) for b in entry["bin_boundaries"]]
        elif isinstance(entry.get("vocabulary"), list):
            layer.set_vocabulary(entry["vocabulary"])
