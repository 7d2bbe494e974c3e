"""`graphspec build`, `summary`, `save` and `schema`: a spec's models as Keras builds them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    err,
    guarded,
    one_model,
    out,
    use_backend,
)
from graphspec.errors import UsageError


def build(spec: SpecArg, plugin: PluginOpt = None, set_: SetOpt = None, model: ModelOpt = None,
          backend: BackendOpt = None, data_root: DataRootOpt = None) -> None:
    """Validate SPEC and build every model: one line per model, or the errors."""
    _, models = built_models(spec, plugin, set_, [model] if model else None, backend=backend, data_roots=data_root)
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
) -> None:
    """A table per model: layer, type, output shape, parameters, inbound layers."""
    if format not in {"text", "json"}:
        raise UsageError(f"--format must be text or json, got {format!r}")
    checked, models = built_models(spec, plugin, set_, [model] if model else None, compile=False, backend=backend,
                                   command="summary", data_roots=data_root)
    from graphspec.render import text as render

    if format == "json":
        infos = checked.analysis.models if checked.analysis is not None else {}
        macs = {name: (info.macs, info.layer_macs) for name, info in infos.items()}
        out(render.summary_json(list(models.values()), macs))
        return
    from rich.console import Console

    console = Console()
    for m in models.values():
        console.print(render.summary_table(m))


def save(
    spec: SpecArg,
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
    the same format."""
    from graphspec.run import targets
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

    checked = checked_spec(spec, plugin, set_, data_root, builds=True)
    name = one_model(checked, model, "save")
    models = compiler.build(checked, models=[name])
    if weights is not None:
        from graphspec.run.models import load_weights

        load_weights(models[name], weights, with_optimizer=False)
    from graphspec.run.models import model_io

    names = [p.name for p in model_io(checked, name, models[name]).outputs]  # the spec's output names
    fmt = export_model(models[name], output, format, force=force, note=lambda t: err(f"note: {t}"),
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
