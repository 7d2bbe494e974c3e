"""Using a trained model: evaluate it on its spec's test set, predict for input arrays, export it.

The model and its weights come from :func:`graphspec.run.models.load_for_inference`: a run folder's
best (else last) weights, or `--weights`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from graphspec import compiler
from graphspec.run import artifacts
from graphspec.run import data as data_mod
from graphspec.run import failures, preflight, sources, targets
from graphspec.run.folders import is_run_dir, read_state
from graphspec.run.models import compile_settings, load_for_inference, spec_error
from graphspec.diagnostics import Location
from graphspec.errors import UsageError


def evaluate(spec_or_run: str | Path, *, weights: str | Path | None = None, sets: list[str] | None = None,
             plugins: list[str] | None = None, model: str | None = None, runs_root: str | Path = "runs",
             note: Any = None, data_roots: list[Path] | None = None,
             backend_name: str | None = None) -> dict[str, float]:
    """Metrics of the trained model on the test set: metric name -> value."""
    prepared: list[data_mod.Data | None] = [None]  # an in-memory source's data, read before Keras starts

    def before_build(checked: Any, name: str) -> None:  # what needs no model, before Keras starts
        spec = checked.spec
        if spec.data is None:
            raise spec_error("GS410", "the spec has no `data` section: nothing to evaluate on", checked, ())
        if compile_settings(checked, name) is None:
            raise spec_error("GS410", f"model `{name}` has no compile settings (loss, metrics)", checked, ())
        compiler.memory_gate(checked, models=[name])  # build's gate, before the data is read
        if not preflight.has_test_set(spec.data):
            raise spec_error("GS410", "the data has no test set", checked, ("data",),
                             "set `data.test_split`, or a `test` file in the source")
        base = Path(checked.file).resolve().parent
        roots = sources.data_roots(data_roots, Path.cwd() if is_run_dir(spec_or_run) else base)
        preflight.data(checked, name, base, roots, splits=("test",) if getattr(spec.data.source, "test", None)
                       else ("train", "test"))
        prepared[0] = preflight.prepare(checked, name, base, roots, seed=_seed(spec))  # its values too (GS417)

    loaded = load_for_inference(spec_or_run, weights=weights, sets=sets, plugins=plugins, model=model,
                                runs_root=runs_root, note=note, backend_name=backend_name, preflight=before_build)
    spec = loaded.checked.spec
    assert spec is not None and spec.data is not None
    base = Path(loaded.checked.file).resolve().parent

    def locate(path: tuple[Any, ...]) -> Location:
        assert loaded.checked.source is not None
        return loaded.checked.source.location(path, key=True)

    # Data paths in a spec stay inside its folder; a run's spec.yaml (absolute paths) inside the current one.
    roots = sources.data_roots(data_roots, Path.cwd() if is_run_dir(spec_or_run) else base)
    data = preflight.adopt(prepared[0], loaded.io, spec.data, locate) if prepared[0] is not None else None
    prepared[0] = None  # `data` holds it now; or, refused, it is freed before the files are read anew
    data = data or data_mod.prepare(spec.data, loaded.io, base_dir=base, seed=_seed(spec),
                                    graph=loaded.checked.graph, locate=locate, roots=roots)
    if data.test is None:
        raise spec_error("GS410", "the data has no test set", loaded.checked, ("data",),
                         "set `data.test_split`, or a `test` file in the source")
    from graphspec.run import pipeline  # Keras: imported once the run's own checks have passed

    ds = pipeline.eval_dataset(data.test, loaded.io, batch_size=spec.data.batch_size)
    from graphspec.run.augment import for_inference

    augment = for_inference(spec.data, loaded.io)  # a RandomCrop's centre: what the model takes
    ds = augment.evaluation(ds) if augment else ds
    from graphspec.run.callbacks import step_callbacks

    try:
        with step_callbacks(loaded.model, epochs=1) as callbacks:
            result = loaded.model.evaluate(ds, steps=pipeline.known_batches(ds), verbose=0, return_dict=True,
                                           callbacks=callbacks)
    except Exception as exc:  # what only Keras sees
        raise failures.fit_failed(exc, locate(("data",))) from None
    return {k: float(v) for k, v in result.items()}


def _seed(spec: Any) -> int:
    """The seed evaluate holds out a test split with: the spec's, else 0."""
    return int(spec.train.seed) if spec.train is not None and spec.train.seed is not None else 0


def predict(spec_or_run: str | Path, inputs: str | Path, output: str | Path | None, *, weights: str | Path | None = None,
            sets: list[str] | None = None, plugins: list[str] | None = None, model: str | None = None,
            runs_root: str | Path = "runs", transforms: bool = True, batch_size: int | None = None,
            note: Any = None, force: bool = False, backend_name: str | None = None) -> dict[str, tuple[int, ...]]:
    """Predictions for the named input arrays of an .npz file, written to an .npz by output name.

    The input file was given on the command line, so it may be anywhere; its size is checked before reading.
    For a spec whose data are image or text files, `inputs` may name such a file, a folder of them or a
    manifest: see :mod:`graphspec.run.predict_files` (a CSV of one row per file, unless `output` is .npz;
    without `output`, the CSV goes to standard output).
    """
    if output is None and str(inputs).lower().endswith(".npz"):
        raise UsageError("predictions for the arrays of an .npz file are written to an .npz file: name it with "
                         "-o, for instance -o preds.npz (a CSV on standard output is for image or text files)")
    if output is not None:
        csv_out = not str(output).lower().endswith(".npz") and not str(inputs).lower().endswith(".npz")
        targets.check(output, "text" if csv_out else "npz", force=force)  # before anything is loaded

    read: list[sources.Arrays | None] = [None]  # the input arrays, read (and checked) before Keras starts

    def before_build(checked: Any, name: str) -> None:  # the input file, before Keras starts
        from graphspec.run import predict_files

        if output is None and not predict_files.is_files_input(inputs, checked.spec.data if checked.spec else None):
            raise UsageError(f"{inputs}: predictions for arrays are written to an .npz file; name it with -o, for "
                             "instance -o preds.npz (a CSV on standard output is for image or text files)")
        read[0] = preflight.predict_input(checked, name, Path(inputs), transforms=transforms)

    loaded = load_for_inference(spec_or_run, weights=weights, sets=sets, plugins=plugins, model=model,
                                runs_root=runs_root, note=note, backend_name=backend_name, preflight=before_build)
    from graphspec.run import predict_files

    if predict_files.is_files_input(inputs, loaded.checked.spec.data if loaded.checked.spec else None):
        state = read_state(loaded.run_dir) if loaded.run_dir is not None else {}
        classes = state.get("classes") if isinstance(state.get("classes"), list) else None
        spec_data = loaded.checked.spec.data if loaded.checked.spec else None
        bs = batch_size or (spec_data.batch_size if spec_data is not None else 32)
        return predict_files.predict_files(loaded, Path(inputs), Path(output) if output is not None else None,
                                           batch_size=bs, transforms=transforms, force=force, note=note,
                                           classes=classes)
    arrays = read[0] if read[0] is not None else preflight.read_inputs(Path(inputs))
    read[0] = None
    spec = loaded.checked.spec
    assert spec is not None

    def locate(path: tuple[Any, ...]) -> Location:
        if path and path[0] == "inputs":
            return Location(str(inputs))
        assert loaded.checked.source is not None
        return loaded.checked.source.location(path, key=True)

    split = data_mod.inputs_from_arrays(arrays, loaded.io, spec.data, transforms=transforms, locate=locate)
    xs = [split.inputs[p.name] for p in loaded.io.inputs]
    x: Any = xs[0] if len(xs) == 1 else {p.keras_name: a for p, a in zip(loaded.io.inputs, xs)}
    bs = batch_size or (spec.data.batch_size if spec.data is not None else 32)
    from graphspec.run.augment import for_inference

    augment = for_inference(spec.data, loaded.io) if transforms else None
    x = augment.inference(x) if augment else x
    from graphspec.run.callbacks import step_callbacks

    try:
        with step_callbacks(loaded.model, epochs=1) as callbacks:
            preds = loaded.model.predict(x, batch_size=bs, verbose=0, callbacks=callbacks)
    except Exception as exc:  # what only Keras sees
        raise failures.fit_failed(exc, Location(str(inputs))) from None
    outs = preds if isinstance(preds, (list, tuple)) else [preds]
    if isinstance(preds, dict):
        outs = [preds[p.keras_name] for p in loaded.io.outputs]
    named = {p.name: np.asarray(o) for p, o in zip(loaded.io.outputs, outs)}
    assert output is not None  # before_build refused arrays without an output file
    artifacts.save_npz(output, named, force=force, note=note)
    return {k: tuple(v.shape) for k, v in named.items()}


def export(spec_or_run: str | Path, output: str | Path, *, fmt: str | None = None, weights: str | Path | None = None,
           **kwargs: Any) -> str:
    """A trained model (run or --weights) exported as .keras, SavedModel, TFLite or ONNX."""
    loaded = load_for_inference(spec_or_run, weights=weights, **kwargs)
    return artifacts.export_model(loaded.model, output, fmt, output_names=[p.name for p in loaded.io.outputs])
