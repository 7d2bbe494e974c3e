"""Training data: load arrays, map them onto a model's named inputs and outputs, transform, split,
and check them against the model.

The stages, in order:

1. :func:`graphspec.run.sources.load_source` reads the arrays of each split (`train`, and where the source has them
   `validation` and `test`) by the source's own names (`x`/`y`, npz keys, CSV columns);
2. :func:`prepare` maps them onto the model's inputs and outputs (`data.inputs` /
   `data.outputs`), applies `data.transforms`, holds out test and validation sets, and checks every
   array against the model (GS411: a missing name, a wrong shape or dtype) before any training;
   synthetic data is generated from the model itself;
3. :mod:`graphspec.run.pipeline` feeds the prepared splits to Keras.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from graphspec.analysis import memory
from graphspec.run import checks_values
from graphspec.run import sources
from graphspec.run.sources import SPLITS, Arrays, DataError, Origin, Stream, error as _error, load_source
from graphspec.run.sources import Problem as _Problem
from graphspec.spec.schema_run import Add, Cast, DataSpec, Divide, OneHot, Reshape, Scale, SyntheticSource

__all__ = ["SPLITS", "Arrays", "DataError", "load_source"]


@dataclasses.dataclass
class Port:
    """One model input or output: the spec's name, the name Keras uses, shape (no batch axis), dtype."""

    name: str
    keras_name: str
    shape: tuple[int | None, ...]
    dtype: str
    loss: Any = None  # outputs: the loss setting for it (name or {type: ...}), if known

    @property
    def names(self) -> list[str]:
        return [self.name] if self.name == self.keras_name else [self.name, self.keras_name]


@dataclasses.dataclass
class ModelIO:
    inputs: list[Port]
    outputs: list[Port]

    def find(self, name: str) -> Port | None:
        for port in self.inputs + self.outputs:
            if name in port.names:
                return port
        return None


@dataclasses.dataclass
class Split:
    """One split's arrays, keyed by the spec's input / output names."""

    inputs: Arrays
    outputs: Arrays
    origins: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> "FILE, array `x`"
    source: str | None = None  # the source's split these samples were read from (`data.source.<split>`)
    rows: np.ndarray | None = None  # each sample's row in that file

    def where(self) -> tuple[Any, ...]:
        """The path (in the spec, or `("inputs",)` for predict's input file) errors about the values point at."""
        if self.source == "inputs":
            return ("inputs",)
        return ("data", "source", self.source) if self.source else ("data", "source")

    def __len__(self) -> int:
        for arr in list(self.inputs.values()) + list(self.outputs.values()):
            return int(arr.shape[0])
        return 0

    def take(self, index: np.ndarray | slice) -> Split:
        return Split({k: v[index] for k, v in self.inputs.items()}, {k: v[index] for k, v in self.outputs.items()},
                     self.origins, self.source, self.rows[index] if self.rows is not None else None)


@dataclasses.dataclass
class Data:
    train: Split | Stream
    validation: Split | Stream | None
    test: Split | Stream | None
    io: ModelIO

    @property
    def classes(self) -> list[str] | None:
        """The class names of a streamed source with classes (class-id order), else None."""
        classes = getattr(self.train.reader, "classes", None) if isinstance(self.train, Stream) else None
        return list(classes) if classes else None

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Files left out (`on_error: skip`): (file, why)."""
        seen: dict[str, str] = {}
        for split in (self.train, self.validation, self.test):
            if isinstance(split, Stream):
                seen.update(split.skipped)
        return sorted(seen.items())

    def split(self, name: str) -> Split | Stream | None:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


# -- the model's side -------------------------------------------------------------------------------
def model_io(keras_model: Any, graph: Any = None, model_name: str | None = None,
             losses: dict[str, Any] | None = None) -> ModelIO:
    """Inputs and outputs of a built Keras model, named as in the spec where the graph is given."""
    from graphspec.analysis.graph import output_names
    from graphspec.analysis.run_checks import input_names

    spec_in: list[str] | None = None
    spec_out: list[str] | None = None
    if graph is not None and model_name is not None:
        gm = graph.models[model_name]
        spec_in = input_names(gm)
        spec_out = output_names(gm)
    ins = []
    for i, t in enumerate(keras_model.inputs):
        name = spec_in[i] if spec_in is not None and len(spec_in) == len(keras_model.inputs) else t.name
        ins.append(Port(name, t.name, tuple(t.shape[1:]), str(t.dtype)))
    outs = []
    keras_names = list(keras_model.output_names)
    for i, t in enumerate(keras_model.outputs):
        kname = keras_names[i] if i < len(keras_names) else f"output_{i}"
        name = spec_out[i] if spec_out is not None and len(spec_out) == len(keras_model.outputs) else kname
        outs.append(Port(name, kname, tuple(t.shape[1:]), str(t.dtype)))
    if losses:
        for port in outs:
            port.loss = losses.get(port.name, losses.get(port.keras_name))
    return ModelIO(ins, outs)


def losses_by_output(loss: Any, outputs: list[str]) -> dict[str, Any]:
    """A compile `loss` setting (one, list or mapping) -> output name -> loss."""
    if loss is None:
        return {}
    if isinstance(loss, dict) and "type" not in loss:
        return dict(loss)
    if isinstance(loss, list):
        return dict(zip(outputs, loss))
    return {o: loss for o in outputs}


def loss_kind(loss: Any) -> str:
    """What targets a loss wants: `sparse` (class ids), `categorical` (one-hot), `binary`, `regression`."""
    name = loss if isinstance(loss, str) else (loss.get("type") if isinstance(loss, dict) else None)
    n = str(name or "").lower().replace("_", "")
    if "sparse" in n:
        return "sparse"
    if "categorical" in n or n in {"kldivergence", "kld", "kl_divergence", "poisson"}:
        return "categorical"
    if "binary" in n or "hinge" in n:
        return "binary"
    return "regression"


# -- mapping and transforms ----------------------------------------------------------------------------------
def _pick(arrays: Arrays, port: Port, mapping: dict[str, Any], section: str, single: bool, default: str,
          split: str, origin: Origin | None = None) -> tuple[np.ndarray, str]:
    """The array for one model input or output, and the name it has in the source."""
    want = mapping.get(port.name, mapping.get(port.keras_name))
    what = "input" if section == "inputs" else "output"
    if want is None:
        for candidate in port.names + ([default] if single else []):
            if candidate in arrays:
                want = candidate
                break
    if want is None:
        raise _error(f"model {what} `{port.name}` has no data: the {split} source provides "
                     f"{_names(arrays, origin)}", ("data", section) if mapping else ("data",),
                     f"map it: `data.{section}: {{{port.name}: NAME}}`")
    cols = [want] if isinstance(want, str) else list(want)
    missing = [c for c in cols if c not in arrays]
    if missing:
        from graphspec.spec.catalog import did_you_mean

        raise _error(f"`data.{section}.{port.name}` names {', '.join(f'`{c}`' for c in missing)}, but the "
                     f"{split} source provides {_names(arrays, origin)}", ("data", section, port.name),
                     did_you_mean(missing[0], list(arrays)) if origin is None or origin.shown else None)
    if isinstance(want, str):
        return np.asarray(arrays[want]), want
    parts = [np.asarray(arrays[c]) for c in cols]
    lengths = {p.shape[0] for p in parts}
    if len(lengths) != 1:
        raise _error(f"`data.{section}.{port.name}`: the columns have different lengths", ("data", section, port.name))
    if any(p.dtype.kind == "f" for p in parts):
        parts = [p.astype(np.float32) for p in parts]
    return np.stack(parts, axis=-1), ", ".join(cols)


def _names(arrays: Arrays, origin: Origin | None = None) -> str:
    if not arrays:
        return "no arrays"
    if origin is not None and not origin.shown:
        return f"{len(arrays)} arrays (names not shown: the file is outside the data roots)"
    shown = [f"`{k if len(k) <= 40 else k[:40] + '...'}` {tuple(v.shape)}" for k, v in list(arrays.items())[:12]]
    return ", ".join(shown) + (" ..." if len(arrays) > 12 else "")


def apply_transforms(arr: np.ndarray, transforms: list[Any], where: tuple[Any, ...], *, scale: int = 1) -> np.ndarray:
    """Apply declarative transforms (reshape, cast, scale, divide, add, one_hot) in order. `scale`: `arr` stands
    for `scale` times as many rows (a pre-flight check transforms one row of the split; the memory a one-hot
    transform will need is counted for all of them)."""
    for i, t in enumerate(transforms):
        path = where + (i,)
        if isinstance(t, Reshape):
            try:
                arr = arr.reshape((arr.shape[0], *t.reshape))
            except ValueError:
                raise _error(f"cannot reshape samples of shape {tuple(arr.shape[1:])} to {tuple(t.reshape)}",
                             path) from None
        elif isinstance(t, Cast):
            arr = arr.astype(t.cast)
        elif isinstance(t, (Scale, Divide, Add)):
            if not np.issubdtype(arr.dtype, np.floating):
                arr = arr.astype(np.float32)
            if isinstance(t, Scale):
                arr = arr * np.asarray(t.scale, dtype=arr.dtype)
            elif isinstance(t, Divide):
                if t.divide == 0:
                    raise _error("`divide: 0` divides by zero", path)
                arr = arr / np.asarray(t.divide, dtype=arr.dtype)
            else:
                arr = arr + np.asarray(t.add, dtype=arr.dtype)
        elif isinstance(t, OneHot):
            ids = arr
            if ids.ndim >= 2 and ids.shape[-1] == 1:
                ids = ids.reshape(ids.shape[:-1])
            if ids.size and (not np.issubdtype(ids.dtype, np.integer)
                             and not np.all(ids == np.round(ids))):
                raise _error("`one_hot` needs integer class ids", path)
            ids = ids.astype(np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= t.one_hot):
                raise _error(f"`one_hot: {t.one_hot}`: class ids range over {int(ids.min())}..{int(ids.max())}",
                             path, f"the number of classes is at least {int(ids.max()) + 1}")
            arr = one_hot(ids, t.one_hot, path, scale=scale)
    return arr


def one_hot(ids: np.ndarray, classes: int, path: tuple[Any, ...], *, scale: int = 1) -> np.ndarray:
    """Class ids -> one-hot float32 vectors, refused (GS502) before allocating beyond the memory budget.

    Built in place: `np.eye(classes)[ids]` would first make a classes x classes matrix.
    """
    labels = ids.size * scale
    need = labels * classes * 4
    budget, what = memory.default_budget()
    if budget is not None and need > budget:
        raise _error(f"one-hot vectors of {classes:,} classes for {labels:,} labels need {memory.human(need)}, "
                     f"more than the memory budget of {memory.human(budget)} ({what})", path,
                     "a sparse loss (`sparse_categorical_crossentropy`) takes the class ids as they are",
                     code="GS502")
    out = np.zeros((*ids.shape, classes), dtype=np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def _map_split(arrays: Arrays, io: ModelIO, data: DataSpec, split: str, origin: Origin) -> Split:
    picked = {p.name: _pick(arrays, p, data.inputs or {}, "inputs", len(io.inputs) == 1, "x", split, origin)
              for p in io.inputs}
    picked.update({p.name: _pick(arrays, p, data.outputs or {}, "outputs", len(io.outputs) == 1, "y", split, origin)
                   for p in io.outputs})
    mapped = Split({p.name: picked[p.name][0] for p in io.inputs}, {p.name: picked[p.name][0] for p in io.outputs},
                   {name: f"{origin.label}, array `{source}`" for name, (_, source) in picked.items()}, split)
    _check_lengths(mapped, split)
    mapped.rows = np.arange(len(mapped))
    return mapped


def _check_lengths(split: Split, name: str) -> None:
    lengths = {k: int(v.shape[0]) if v.ndim else 0 for k, v in {**split.inputs, **split.outputs}.items()}
    if len(set(lengths.values())) > 1:
        raise _error(f"the {name} arrays have different numbers of samples: "
                     + ", ".join(f"`{k}` {n}" for k, n in lengths.items()), ("data",))


def _transform_split(split: Split, io: ModelIO, data: DataSpec, *, scale: int = 1) -> Split:
    out = Split(dict(split.inputs), dict(split.outputs), split.origins, split.source, split.rows)
    for group in (out.inputs, out.outputs):
        for name in list(group):
            port = io.find(name)
            assert port is not None
            key = port.name if port.name in data.transforms else port.keras_name
            if data.transforms.get(key):
                group[name] = apply_transforms(group[name], data.transforms[key], ("data", "transforms", key),
                                               scale=scale)
    return out


# -- checks against the model ----------------------------------------------------------------------------
def _fits(have: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(have) == len(want) and all(w is None or h == w for h, w in zip(have, want))


def _shape(s: tuple[Any, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _check_split(split: Split, io: ModelIO, name: str, data: DataSpec | None) -> None:
    """Raise a GS411 DataError naming both sides if the arrays do not fit the model."""
    _check_lengths(split, name)
    for port in io.inputs:
        arr = split.inputs[port.name]
        tpath = ("data", "transforms", port.name) if data and port.name in data.transforms else (
            "data", "inputs", port.name) if data and data.inputs and port.name in data.inputs else ("data",)
        have = tuple(int(d) for d in arr.shape[1:])
        chain = data.augment.get(port.name) if data is not None else None
        if chain:  # the model takes what the augmentation (a crop) makes of the samples
            from graphspec.analysis.preprocessing_checks import augmented_shape

            have = tuple(d if d is not None else 0 for d in augmented_shape(chain, have))
        if not _fits(have, port.shape):
            hint = None
            if all(d is not None for d in port.shape) and math.prod(have) == math.prod(
                    [d for d in port.shape if d is not None]):
                hint = f"add `{{reshape: {list(port.shape)}}}` to `data.transforms.{port.name}`"
            raise _error(f"{name} data for input `{port.name}` has samples of shape {_shape(have)}, but the "
                         f"model's input `{port.name}` takes {_shape(port.shape)}", tpath, hint)
        want_int = port.dtype.startswith(("int", "uint"))
        if arr.dtype.kind == "f" and want_int:
            raise _error(f"{name} data for input `{port.name}` is {arr.dtype}, but the model's input "
                         f"`{port.name}` takes {port.dtype}", tpath,
                         f"add `{{cast: {port.dtype}}}` to `data.transforms.{port.name}`")
        if arr.dtype.kind not in "biuf":
            raise _error(f"{name} data for input `{port.name}` is {arr.dtype}, not numbers", tpath)
        checks_values.check_finite(arr, f"{name} data for input `{port.name}`{_from(split, port)}", split.where(),
                                   split.rows)
    for port in io.outputs:
        arr = split.outputs[port.name]
        tpath = ("data", "transforms", port.name) if data and port.name in data.transforms else ("data",)
        have = tuple(int(d) for d in arr.shape[1:])
        want = port.shape
        kind = loss_kind(port.loss)
        ok = _fits(have, want) or (len(want) >= 1 and want[-1] == 1 and _fits(have, want[:-1]))
        if not ok and len(want) >= 1 and kind == "sparse":
            ok = _fits(have, want[:-1]) or _fits(have, want[:-1] + (1,))
        if not ok:
            hint = None
            if kind == "categorical" and want and want[-1] and arr.dtype.kind in "iu" and (
                    _fits(have, want[:-1]) or _fits(have, want[:-1] + (1,))):
                hint = f"add `{{one_hot: {want[-1]}}}` to `data.transforms.{port.name}`"
            raise _error(f"{name} targets for output `{port.name}` have samples of shape {_shape(have)}, but the "
                         f"model's output `{port.name}` is {_shape(want)}"
                         + (f" (loss: {kind} targets)" if port.loss is not None else ""), tpath, hint)
        if arr.dtype.kind not in "biuf":
            raise _error(f"{name} targets for output `{port.name}` are {arr.dtype}, not numbers", tpath)
        what = f"{name} targets for output `{port.name}`{_from(split, port)}"
        checks_values.check_finite(arr, what, split.where(), split.rows)
        if kind == "sparse":
            classes = want[-1] if want and want[-1] != 1 else None  # one unit: not a class count
            checks_values.check_class_ids(arr, classes, what, split.where(), split.rows)


def _from(split: Split, port: Port) -> str:
    origin = split.origins.get(port.name)
    return f" ({origin})" if origin else ""


# -- synthetic data ----------------------------------------------------------------------------------------
def int_bounds(graph: Any, io: ModelIO) -> dict[str, int]:
    """For integer inputs: an exclusive upper bound on ids, from the Embedding layers that read them."""
    out: dict[str, int] = {}
    if graph is None:
        return out
    consumers = graph.consumers()
    for port in io.inputs:
        bounds = []
        for c in consumers.get(port.name, []):
            node = graph.nodes[c]
            owner = graph.nodes.get(node.owner) if node.owner else node
            if owner is not None and owner.layer_type in {"Embedding"}:
                dim = owner.args.get("input_dim")
                if isinstance(dim, int) and dim > 0:
                    bounds.append(dim)
        if bounds:
            out[port.name] = min(bounds)
    return out


def synthetic(src: SyntheticSource, io: ModelIO, seed: int, bounds: dict[str, int] | None = None,
              validation_split: float = 0.0) -> tuple[Split, Split | None, Split]:
    """Random train / validation / test splits shaped like the model's inputs and outputs."""
    rng = np.random.default_rng(seed)
    bounds = bounds or {}

    def concrete(shape: tuple[int | None, ...]) -> tuple[int, ...]:
        return tuple(src.sequence_length if d is None else int(d) for d in shape)

    def make(n: int) -> Split:
        ins: Arrays = {}
        for p in io.inputs:
            shape = (n, *concrete(p.shape))
            if p.dtype.startswith(("int", "uint")):
                ins[p.name] = rng.integers(0, bounds.get(p.name, 2), size=shape).astype(p.dtype)
            elif p.dtype == "bool":
                ins[p.name] = rng.integers(0, 2, size=shape).astype(bool)
            elif p.dtype == "string":
                raise _error(f"synthetic data cannot make strings (input `{p.name}`)", ("data", "source"))
            else:
                ins[p.name] = rng.standard_normal(shape).astype(np.float32)
        outs: Arrays = {}
        for p in io.outputs:
            shape = concrete(p.shape)
            kind = loss_kind(p.loss)
            classes = shape[-1] if shape else 2
            if kind == "sparse" and shape:
                outs[p.name] = rng.integers(0, classes, size=(n, *shape[:-1])).astype(np.int32)
            elif kind == "categorical" and shape:
                outs[p.name] = one_hot(rng.integers(0, classes, size=(n, *shape[:-1])), classes, ("data", "source"))
            elif kind == "binary":
                outs[p.name] = rng.integers(0, 2, size=(n, *shape)).astype(np.float32)
            else:
                outs[p.name] = rng.standard_normal((n, *shape)).astype(np.float32)
        return Split(ins, outs)

    train = make(src.samples)
    test = make(src.test_samples)
    validation = None
    if validation_split > 0:
        train, validation = _hold_out(train, validation_split, seed + 1)
    return train, validation, test


# -- preparing all splits -------------------------------------------------------------------------------
def _hold_out(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    n = len(split)
    k = int(round(n * fraction))
    k = min(max(k, 1), n - 1) if n > 1 else 0
    order = np.random.default_rng(seed).permutation(n)
    return split.take(np.sort(order[k:])), split.take(np.sort(order[:k]))


def prepare(data: DataSpec, io: ModelIO, *, base_dir: Path, seed: int, graph: Any = None,
            locate: Any = None, roots: list[Path] | None = None) -> Data:
    """Load, map, transform, split and check: arrays ready for the model, or a located error.

    Data files the spec names must lie inside `roots` (default: `base_dir`), unless given with --set.
    """
    test: Split | None
    if sources.is_streamed(data):
        return _prepare_streams(data, io, base_dir=base_dir, seed=seed, locate=locate, roots=roots)
    try:
        if isinstance(data.source, SyntheticSource):
            train, validation, test = synthetic(data.source, io, seed, int_bounds(graph, io), data.validation_split)
        else:
            raw = load_source(data, base_dir, roots, locate)
            splits = {name: _map_split(arrays, io, data, name, origin) for name, (arrays, origin) in raw.items()}
            train = splits["train"]
            test = splits.get("test")
            if test is None and data.test_split > 0:
                train, test = _hold_out(train, data.test_split, seed)
            validation = splits.get("validation")
            if validation is None and data.validation_split > 0:
                train, validation = _hold_out(train, data.validation_split, seed + 1)
        if data.max_samples is not None:
            train = train.take(slice(0, data.max_samples))
            validation = validation.take(slice(0, data.max_samples)) if validation is not None else None
            test = test.take(slice(0, data.max_samples)) if test is not None else None
        if not isinstance(data.source, SyntheticSource):
            train = _transform_split(train, io, data)
            validation = _transform_split(validation, io, data) if validation is not None else None
            test = _transform_split(test, io, data) if test is not None else None
        for name, split in (("training", train), ("validation", validation), ("test", test)):
            if split is not None:
                _check_split(split, io, name, data)
        if len(train) == 0:
            raise _error("the training set is empty", ("data",))
        return Data(train, validation, test, io)
    except _Problem as p:
        raise p.located(locate) from None


def _prepare_streams(data: DataSpec, io: ModelIO, *, base_dir: Path, seed: int, locate: Any,
                     roots: list[Path] | None) -> Data:
    from graphspec.build import backend

    try:
        streams = sources.open_streams(data, io, base_dir=base_dir, roots=roots or [base_dir.resolve()],
                                       locate=locate, seed=seed, backend_name=backend.active() or "")
        ports = sources.ports.stream_ports(data, io, streams["train"].reader)
        for stream in streams.values():
            stream.ports = ports
            if hasattr(stream.reader, "fed"):  # a table's columns: the ones the model reads are checked for NaN
                stream.reader.fed = frozenset(ports.values())
            stream.transforms = {p.name: data.transforms.get(p.name, data.transforms.get(p.keras_name, []))
                                 for p in io.inputs + io.outputs}
            stream.workers = data.workers
        if data.max_samples is not None:
            streams = {k: v.take(slice(0, data.max_samples)) for k, v in streams.items()}
        if len(streams["train"]) == 0:  # before the shapes: a list column of no rows has no length to check
            raise _error("the training set is empty", ("data",))
        for name, stream in streams.items():
            _check_stream(stream, io, {"train": "training"}.get(name, name), data)
        return Data(streams["train"], streams.get("validation"), streams.get("test"), io)
    except _Problem as p:
        raise p.located(locate) from None


def _check_stream(stream: Stream, io: ModelIO, name: str, data: DataSpec) -> None:
    """The checks of :func:`_check_split` on one made-up sample of the stream's shapes, and its classes
    against the model's outputs."""
    from graphspec.build import backend

    fields = stream.reader.fields
    sample: Arrays = {}
    for field, (shape, dtype) in fields.items():
        sample[field] = np.zeros((1, *(d or 1 for d in shape)), dtype=object if dtype == "string" else dtype)
    classes = stream.reader.classes
    for port in io.outputs:
        field = stream.ports[port.name]
        if classes and field == stream.reader.default_output:
            sample[field] = np.full((1,), len(classes) - 1, dtype=np.int32)
            sources.ports.check_classes(len(classes), port, loss_kind(port.loss), stream.where())
    strings = [p for p in io.inputs if fields[stream.ports[p.name]][1] == "string"]
    for port in strings:
        sources.ports.check_string_input(port, stream.ports[port.name], backend.active() or "")
    numeric = ModelIO([p for p in io.inputs if p not in strings], io.outputs)
    split = Split({p.name: sample[stream.ports[p.name]] for p in numeric.inputs},
                  {p.name: sample[stream.ports[p.name]] for p in io.outputs}, source=stream.source)
    _check_split(_transform_split(split, numeric, data), numeric, name, data)


def inputs_from_arrays(arrays: Arrays, io: ModelIO, data: DataSpec | None, *, transforms: bool = True,
                       locate: Any = None) -> Split:
    """Named arrays (e.g. an .npz given to `predict`) -> the model's inputs, transformed like training data."""
    try:
        return _inputs_from_arrays(arrays, io, data, transforms)
    except _Problem as p:
        raise p.located(locate) from None


def _inputs_from_arrays(arrays: Arrays, io: ModelIO, data: DataSpec | None, transforms: bool) -> Split:
    ins: Arrays = {}
    mapping = (data.inputs or {}) if data is not None else {}
    for port in io.inputs:
        if port.name in arrays or port.keras_name in arrays:
            arr = arrays[port.name if port.name in arrays else port.keras_name]
        elif isinstance(column := mapping.get(port.name), str) and column in arrays:
            arr = arrays[column]
        elif len(io.inputs) == 1 and len(arrays) == 1:
            arr = next(iter(arrays.values()))
        elif len(io.inputs) == 1 and "x" in arrays:
            arr = arrays["x"]
        else:
            raise _error(f"no array for model input `{port.name}`: the file has {_names(arrays)}", ("inputs",),
                         f"save it under the name `{port.name}`")
        arr = np.asarray(arr)
        if transforms and data is not None:
            ts = data.transforms.get(port.name, data.transforms.get(port.keras_name))
            if ts:
                arr = apply_transforms(arr, ts, ("data", "transforms", port.name))
        ins[port.name] = arr
    split = Split(ins, {}, source="inputs")
    no_outputs = ModelIO(io.inputs, [])
    _check_split(split, no_outputs, "input", data)
    return split
