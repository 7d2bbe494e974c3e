"""`graphspec predict RUN --input PATH` on files: an image or text file, a folder of them, or a manifest,
decoded like the run's training data and written as a CSV with one row per file (file, class name,
probability, the raw outputs), or as today's .npz of outputs when `--output` ends in `.npz`. Without
`--output`, the CSV goes to standard output.

The files were named on the command line, so they may be anywhere; they are checked as training
files are (headers, size, encoding) before any is decoded.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from graphspec.errors import UsageError
from graphspec.render.escape import csv_cell
from graphspec.run import artifacts, sources
from graphspec.run.sources import images, listing, text
from graphspec.run.sources.stream import Stream
from graphspec.spec.schema_run import DataSpec, ImagesSource, TextSource


def is_files_input(inputs: str | Path, data: DataSpec | None) -> bool:
    """Whether `--input` names files of a streamed source (not an .npz of arrays)."""
    return (data is not None and isinstance(data.source, (ImagesSource, TextSource))
            and not str(inputs).lower().endswith(".npz"))


def list_inputs(inputs: Path, suffixes: tuple[str, ...], src: Any) -> list[str]:
    """The files `--input` names: itself, a folder's (recursively, sorted), or a manifest's."""
    if not inputs.exists():
        raise UsageError(f"{inputs}: no such file or folder")
    if inputs.is_dir():
        found = sorted(str(Path(d) / f) for d, _, fs in os.walk(inputs) for f in fs if f.lower().endswith(suffixes))
        if not found:
            raise UsageError(f"{inputs}: no {'/'.join(suffixes)} files in the folder")
        return found
    if inputs.suffix.lower() in listing.MANIFESTS:
        try:
            rows = listing._manifest_rows(inputs, _NoLabel(src), str(inputs), ("inputs",))
        except sources.Problem as p:
            raise UsageError(p.message) from None
        return [str(Path(p) if Path(p).is_absolute() else inputs.parent / p) for p, _ in rows]
    if not inputs.name.lower().endswith(suffixes):
        raise UsageError(f"{inputs}: not a {'/'.join(suffixes)} file, a folder of them, or a manifest (.csv)")
    return [str(inputs)]


class _NoLabel:
    """A manifest for predict needs its path column only."""

    def __init__(self, src: Any) -> None:
        self.path_column = src.path_column
        self.label_column = src.path_column


def predict_files(loaded: Any, inputs: Path, output: Path | None, *, batch_size: int, transforms: bool,
                  force: bool, note: Any, classes: list[str] | None) -> dict[str, tuple[int, ...]]:
    """Predict for the files `inputs` names; write the CSV (or .npz) `output`, or the CSV to standard output;
    output name -> shape."""
    from graphspec.build import backend
    from graphspec.run import streams

    spec = loaded.checked.spec
    data: DataSpec = spec.data
    src: Any = data.source
    io_ = loaded.io
    mode = "images" if isinstance(src, ImagesSource) else "text"
    files = list_inputs(inputs, images.SUFFIXES if mode == "images" else text.SUFFIXES, src)
    strict = src.model_copy(update={"on_error": "error"})
    try:
        if isinstance(strict, ImagesSource):
            port = sources.ports.input_for(data, io_, "image")
            h, w, color = images.settings(strict, port.shape if port is not None else None)
            _, _, gray16 = images.check_files(files, strict, ("inputs",))
            if backend.active() != "tensorflow":
                sources.extras.need("PIL.Image", "reading images without TensorFlow", ("inputs",))
            reader: Any = images.ImageReader(files, [0] * len(files), (), (h, w), color, strict.interpolation,
                                             strict.crop_to_aspect_ratio, gray16)
        else:
            assert isinstance(strict, TextSource)
            text.check_files(files, strict, ("inputs",))
            reader = text.TextReader(files, [0] * len(files), (), strict.encoding)
        ports = {p.name: sources.ports.stream_ports(data, io_, reader)[p.name] for p in io_.inputs}
    except sources.Problem as p:
        raise UsageError(p.message) from None
    stream = Stream(reader, list(range(len(files))), "inputs", ports=ports, workers=data.workers,
                    transforms={p.name: data.transforms.get(p.name, []) if transforms else [] for p in io_.inputs})
    ds = streams.eval_dataset(stream, io_, batch_size=batch_size, targets=False)
    from graphspec.run.augment import for_inference

    augment = for_inference(loaded.checked.spec.data if loaded.checked.spec else None, io_) if transforms else None
    ds = augment.evaluation(ds, targets=False) if augment else ds
    from graphspec.run.callbacks import step_callbacks
    from graphspec.run.pipeline import known_batches

    with step_callbacks(loaded.model, epochs=1) as callbacks:
        preds = loaded.model.predict(ds, steps=known_batches(ds), verbose=0, callbacks=callbacks)
    outs = [preds[p.keras_name] for p in io_.outputs] if isinstance(preds, dict) else \
        list(preds) if isinstance(preds, (list, tuple)) else [preds]
    named = {p.name: np.asarray(o) for p, o in zip(io_.outputs, outs)}
    if output is None:
        sys.stdout.write(rows_csv(files, named, classes))
        sys.stdout.flush()
    elif output.suffix.lower() == ".npz":
        artifacts.save_npz(output, named, force=force, note=note)
    else:
        artifacts.atomic_write_text(output, rows_csv(files, named, classes))
    return {k: tuple(v.shape) for k, v in named.items()}


def _probabilities(values: np.ndarray) -> np.ndarray:
    """Class probabilities: the outputs if they already are (softmax / sigmoid), else from logits."""
    if values.shape[-1] == 1:
        p = values if np.all((values >= 0) & (values <= 1)) else 1 / (1 + np.exp(-values))
        return np.concatenate([1 - p, p], axis=-1)
    if np.all(values >= 0) and np.allclose(values.sum(axis=-1), 1.0, atol=1e-3):
        return np.asarray(values)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


def rows_csv(files: list[str], named: dict[str, np.ndarray], classes: list[str] | None) -> str:
    """One row per file: file, class, probability (of the first output), then every raw output value."""
    first = next(iter(named.values()))
    flat = first.reshape(len(files), -1)
    probs = _probabilities(flat.astype(np.float64))
    best = probs.argmax(axis=-1)
    header = ["file", "class", "probability"]
    for name, values in named.items():
        width = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
        header.extend(f"{name}_{j}" for j in range(width))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    for i, f in enumerate(files):
        k = int(best[i])
        name = classes[k] if classes and k < len(classes) else str(k)
        raw = [float(v) for values in named.values() for v in np.asarray(values[i]).reshape(-1)]  # numbers stay
        # File and class names are anyone's (a folder of uploads, the training data's class folders): a name that
        # starts like a formula would run as one in a spreadsheet.
        writer.writerow([csv_cell(f), csv_cell(name), f"{probs[i, k]:.6g}", *raw])
    return buf.getvalue()
