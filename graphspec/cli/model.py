"""`graphspec build`, `summary`, `save` and `schema`: a spec's models as Keras builds them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from graphspec.cli.common import (
    BackendOpt,
    DataRootOpt,
    ModelOpt,
    PluginOpt,
    SetOpt,
    SpecArg,
    built_models,
    checked_spec,
    guarded,
    note,
    one_model,
    out,
    use_backend,
)
from graphspec.errors import UsageError


def build(spec: SpecArg, plugin: PluginOpt = None, set_: SetOpt = None, model: ModelOpt = None,
          backend: BackendOpt = None, data_root: DataRootOpt = None) -> None:
    """Validate SPEC and build every model: one line per model, or the errors."""
    _, models = built_models(spec, plugin, set_, [model] if model else None, backend=backend, data_roots=data_root,
                             values=False)  # what each model is; its weights' values are nobody's business here
    for name, m in models.items():
        out(f"{name}: {m.count_params():,} parameters ({len(m.layers)} layers)")


def summary(
    spec: SpecArg,
    model: ModelOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    plugin: PluginOpt = None,
    set_: SetOpt = None,
    backend: BackendOpt = None,
    data_root: DataRootOpt = None,
    use_keras: Annotated[bool, typer.Option(
        "--keras", help="Build the model with Keras and read the table off it, instead of the static analysis.")
    ] = False,
) -> None:
    """A table per model: layer, type, output shape, parameters, inbound layers. From the static analysis
    (no Keras, no backend) where it knows every row; else, or with --keras, from the built model."""
    if format not in {"text", "json"}:
        raise UsageError(f"--format must be text or json, got {format!r}")
    from graphspec.render import text as render

    static = None if use_keras else _static_tables(spec, plugin, set_, model, data_root)
    if static is None:
        checked, models = built_models(spec, plugin, set_, [model] if model else None, compile=False,
                                       backend=backend, command="summary", data_roots=data_root, values=False)
        tables = [(m.name, render.model_rows(m), render.model_totals(m)) for m in models.values()]
    else:
        checked, tables = static
    if format == "json":
        infos = checked.analysis.models if checked.analysis is not None else {}
        macs = {name: (info.macs, info.layer_macs) for name, info in infos.items()}
        out(render.summary_json_rows(tables, macs))
        return
    from rich.console import Console

    console = Console()
    for name, rows, totals in tables:
        console.print(render.summary_table_rows(name, rows, totals))


def _static_tables(spec: Path, plugin: list[str] | None, sets: list[str] | None, model: str | None,
                   data_root: list[str] | None) -> tuple[Any, list[tuple[str, list[dict[str, Any]], dict[str, int]]]] | None:
    """The checked spec and each model's rows and totals from the static analysis; None where only a built
    model can give them (the spec's problems are raised here, as `build` would)."""
    from graphspec.analysis.summary import Unsupported, static_summary

    checked = checked_spec(spec, plugin, sets, data_root, builds=True)
    if checked.graph is None or checked.analysis is None:
        return None
    if model is not None:
        checked.graph.pick_model(model, "summary")
    try:
        found = static_summary(checked.graph, checked.analysis, [model] if model else None)
    except Unsupported:
        return None
    return checked, [(s.name, [r.as_dict() for r in s.rows], {"params": s.params, "trainable_params":
                     s.trainable_params, "non_trainable_params": s.non_trainable_params}) for s in found]


def save(
    spec: Annotated[Path, typer.Argument(help="The spec file (YAML), or a run folder (its spec and best weights).",
                                         show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write: a .keras file, a .tflite file, a .onnx file, or a SavedModel "
        "folder.")],
    model: ModelOpt = None,
    plugin: PluginOpt = None,
    set_: SetOpt = None,
    format: Annotated[str | None, typer.Option(
        "--format", "-f", help="keras, savedmodel, tflite or onnx (default: from the output's suffix).")] = None,
    weights: Annotated[Path | None, typer.Option(
        "--weights", "-w", help="Trained weights to load first (.keras or .weights.h5, e.g. a run's best.keras).")
    ] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing file even if it is not a model of the same format.")] = False,
    backend: BackendOpt = None,
    data_root: DataRootOpt = None,
) -> None:
    """Write a model as .keras (architecture, weights, compile settings), a TensorFlow SavedModel for
    serving, TFLite, or ONNX. SavedModel and TFLite run on TensorFlow unless --backend says otherwise:
    weights trained on any backend load there. An existing output is replaced only if it is a model of
    the same format. A run folder gives its spec and its best (else last) weights, as for evaluate."""
    from graphspec.run import folders, targets
    from graphspec.run.artifacts import TF_FORMATS, export_format, tensorflow_for

    fmt = export_format(output, format)  # a bad --format is a usage error before anything is built
    targets.check(output, fmt, force=force)  # so is an output that must not be replaced (exit 1)
    if fmt in TF_FORMATS and backend is None:
        tensorflow_for(fmt)
        backend = "tensorflow"
    if fmt == "onnx":  # what the converter needs, before a backend starts
        from graphspec.build.backend import choose
        from graphspec.run.artifacts import onnx_ready

        onnx_ready(choose(backend, command="save"))
    use_backend(backend, "save")
    from graphspec import compiler
    from graphspec.run.artifacts import export_model

    if folders.is_run_dir(spec):
        from graphspec.run.models import load_for_inference

        loaded = load_for_inference(spec, weights=weights, sets=set_, plugins=plugin, model=model,
                                    note=note)
        fmt = export_model(loaded.model, output, format, force=force, note=note)
        out(f"saved {loaded.model_name} of {spec} to {output}" + ("" if fmt == "keras" else f" ({fmt})"))
        return
    checked = checked_spec(spec, plugin, set_, data_root, builds=True)
    name = one_model(checked, model, "save")
    if weights is not None:  # before Keras starts
        from graphspec.run.preflight import weights as check_weights

        check_weights(weights)
    models = compiler.build(checked, models=[name])
    if weights is not None:
        from graphspec.run.models import load_weights

        load_weights(models[name], weights, with_optimizer=False)
    from graphspec.run.models import model_io

    names = [p.name for p in model_io(checked, name, models[name]).outputs]  # the spec's output names
    fmt = export_model(models[name], output, format, force=force, note=note,
                       output_names=names)
    out(f"saved {name} to {output}" + ("" if fmt == "keras" else f" ({fmt})"))


def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the spec format (for editor completion)."""
    import json

    from graphspec.spec.schema import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        out(text)
    else:
        from graphspec.run.artifacts import atomic_write_text

        atomic_write_text(output, text)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    for command in (build, summary, save, schema):
        app.command()(guarded(command))
