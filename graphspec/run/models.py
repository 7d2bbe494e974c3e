"""A spec's (or a run's) model: the spec checked, its model picked and built, trained weights loaded.

What training (:mod:`graphspec.run.trainer`) and the uses of a trained model
(:mod:`graphspec.run.inference`) both start from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from graphspec import compiler
from graphspec.build import archives
from graphspec.analysis import graph
from graphspec.run import data as data_mod
from graphspec.run import plugin_pins
from graphspec.run.folders import BEST, LAST, SPEC, STATE, is_run_dir, latest_run, read_state, spec_name
from graphspec.spec import plugins as plugins_mod
from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError, UsageError


# -- the spec --------------------------------------------------------------------------------------------
def pick_model(checked: compiler.Checked, requested: str | None) -> str:
    """--model, else `train.model`, else the spec's only public model."""
    assert checked.graph is not None and checked.spec is not None
    train = checked.spec.train
    return checked.graph.pick_model(requested, "train", train.model if train is not None else None)


def spec_error(code: str, message: str, checked: compiler.Checked, path: tuple[Any, ...],
               hint: str | None = None) -> SpecError:
    loc = checked.source.location(path, key=True) if checked.source is not None else Location(checked.file)
    return SpecError([Diagnostic(code, Severity.ERROR, message, loc, hint)])


def check(spec: str | Path, *, sets: list[str] | None = None, plugins: list[str] | None = None) -> compiler.Checked:
    """The pure stages plus the data/train checks; raises SpecError on errors."""
    checked = compiler.check(spec, plugins=plugins_mod.all_plugins(plugins), sets=sets)
    checked.raise_for_errors()
    return checked


# -- building a model for a spec or a run -----------------------------------------------------------------
@dataclasses.dataclass
class Loaded:
    checked: compiler.Checked
    model_name: str
    model: Any
    io: data_mod.ModelIO
    run_dir: Path | None
    weights: Path | None


def compile_settings(checked: compiler.Checked, name: str) -> Any:
    """Model `name`'s compile settings (optimizer, loss, metrics); None if it has none."""
    assert checked.graph is not None
    settings, _ = graph.effective_compile(checked.graph, checked.graph.models[name])
    return settings


def model_io(checked: compiler.Checked, name: str, model: Any) -> data_mod.ModelIO:
    """The built model's inputs and outputs, named as in the spec, with the loss of each output."""
    assert checked.graph is not None
    settings = compile_settings(checked, name)
    outs = graph.output_names(checked.graph.models[name]) or list(model.output_names)
    losses = data_mod.losses_by_output(settings.loss if settings is not None else None, outs)
    return data_mod.model_io(model, checked.graph, name, losses)


def _short(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def load_weights(model: Any, path: Path, *, with_optimizer: bool) -> None:
    import warnings

    if not path.exists():
        raise UsageError(f"{path}: no such weights file")
    if path.suffix == ".keras":
        try:  # a run folder may come from anyone: check the zip before Keras inflates it
            archives.check_zip(path, json_members=archives.KERAS_JSON)
        except archives.ArchiveProblem as exc:
            raise SpecError([Diagnostic("GS416", Severity.ERROR, f"cannot load weights: {exc}",
                                        Location(str(path)))]) from None
    if with_optimizer and model.optimizer is not None:
        model.optimizer.build(model.trainable_variables)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Skipping variable loading for optimizer.*")
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise UsageError(f"{path}: cannot load weights into model `{model.name}`: {exc}") from None


def load_for_inference(spec_or_run: str | Path, *, weights: str | Path | None = None, sets: list[str] | None = None,
                       plugins: list[str] | None = None, model: str | None = None,
                       runs_root: str | Path = "runs", check_fn: Any = None,
                       note: Any = None, backend_name: str | None = None, preflight: Any = None) -> Loaded:
    """A spec's (or a run's) model with trained weights: --weights, else the run's best, else its last.

    It runs on the Keras backend of this process (`backend_name`, if given, must be that one): a
    model's weights load on any backend, whichever trained them. Everything that needs no model is checked
    before it is built (and Keras imported): the run's state, the weights file, and `preflight(checked,
    model_name)`, the caller's own checks (its data, its input file).
    """
    from graphspec.build import backend

    backend.select(backend_name, command="load a model")
    run_dir: Path | None = None
    state: dict[str, Any] = {}
    given = plugins_mod.all_plugins(plugins)  # only these are ever imported, never the ones a run names
    if is_run_dir(spec_or_run):
        run_dir = Path(spec_or_run)
        state = read_state(run_dir)
        spec_file = run_dir / SPEC
        model = model or state.get("model")
    else:
        spec_file = Path(spec_or_run)
        if weights is None:
            run_dir = latest_run(runs_root, spec_name(spec_file))
            if run_dir is None:
                raise UsageError(f"no trained weights for {spec_file}: pass --weights PATH or a run folder "
                                 f"(no run under {Path(runs_root) / spec_name(spec_file)})")
            if note:
                note(f"using the latest run, {run_dir}")
            state = read_state(run_dir)
    if run_dir is not None:
        plugin_pins.require(state, given, run_dir / STATE)
        if weights is None and state.get("status") == "failed":
            raise SpecError([Diagnostic(
                "GS422", Severity.ERROR, f"the run failed: {_short(state.get('message') or 'no reason recorded')}",
                Location(str(run_dir / STATE)),
                f"its last good model is {run_dir / LAST}: pass --weights {run_dir / LAST} to use it anyway, "
                f"or continue the run with `graphspec train --resume --run-dir {run_dir}`")])
    checked = (check_fn or check)(spec_file, sets=sets, plugins=given)
    name = pick_model(checked, model)
    if weights is not None:
        path = Path(weights)
    else:
        assert run_dir is not None
        path = run_dir / BEST if (run_dir / BEST).exists() else run_dir / LAST
    from graphspec.run import preflight as preflight_mod

    preflight_mod.weights(path, run_dir if weights is None else None)
    if preflight is not None:
        preflight(checked, name)
    built = compiler.build(checked, models=[name])[name]
    from graphspec.run import adapt

    adapt.restore(built, run_dir)  # a run's adapted vocabularies, which the weights do not hold
    load_weights(built, path, with_optimizer=False)
    return Loaded(checked, name, built, model_io(checked, name, built), run_dir, path)
