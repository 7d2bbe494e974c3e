"""The `graphspec` command line: thin Typer commands; the one place that sets exit codes.

Exit codes: 0 success, 1 the spec has problems (or the command's check
failed), 2 usage error or internal error (a bug: the message says so).
Heavy imports (TensorFlow) happen inside command bodies only.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from graphspec import __version__
from graphspec.errors import GraphSpecError, SpecError, UsageError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 2

app = typer.Typer(
    name="graphspec",
    help="Compile declarative YAML graph specs into Keras models, check them, and run them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])

PluginOpt = Annotated[
    list[str] | None,
    typer.Option("--plugin", "-p", help="Python module or .py file providing custom layers (repeatable)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a spec field by dotted path: KEY=VALUE (repeatable)."),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Only this model of the spec.")]
SpecArg = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False)]


def err(text: str) -> None:
    sys.stderr.write(text + ("\n" if not text.endswith("\n") else ""))


def out(text: str) -> None:
    sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


def _color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def report(diags: list[Any], sources: dict[str, str] | None = None) -> None:
    """Print diagnostics to stderr with the source line and caret."""
    from graphspec.render.text import count_line, diagnostics_text

    if not diags:
        return
    sources = dict(sources or {})
    for d in diags:  # errors raised after checking name their file; show its lines too
        name = d.location.file
        if name not in sources and d.location.line and Path(name).is_file():
            try:
                sources[name] = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                pass
    err(diagnostics_text(diags, sources, color=_color(sys.stderr)))
    n_err = sum(1 for d in diags if d.is_error)
    err(count_line(n_err, len(diags) - n_err))


def guarded(fn: F) -> F:
    """Catch errors once: spec problems -> 1, usage -> 2, anything else is a bug -> 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except SpecError as exc:
            report(exc.diagnostics, exc.sources)
            raise typer.Exit(EXIT_PROBLEMS) from None
        except UsageError as exc:
            err(f"error: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except GraphSpecError as exc:
            err(f"error: {exc}")
            raise typer.Exit(EXIT_PROBLEMS) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None
        except Exception:
            err("internal error [GS900]: graphspec crashed; this is a bug, please report it with the "
                "traceback below")
            err(traceback.format_exc())
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def checked_spec(spec: Path, plugins: list[str] | None, sets: list[str] | None = None) -> Any:
    """Run the pure stages; print warnings; raise SpecError on errors."""
    from graphspec import compiler
    from graphspec.spec import plugins as plugins_mod

    result = compiler.check(spec, plugins=plugins_mod.all_plugins(plugins), sets=sets)
    if result.ok and result.diagnostics:
        report(result.diagnostics.sorted(), {result.file: result.source.text} if result.source else {})
    result.raise_for_errors()
    return result


def built_models(spec: Path, plugins: list[str] | None, sets: list[str] | None, models: list[str] | None,
                 *, compile: bool = True) -> tuple[Any, dict[str, Any]]:
    from graphspec import compiler

    checked = checked_spec(spec, plugins, sets)
    return checked, compiler.build(checked, models=models, compile=compile)


def one_model(checked: Any, model: str | None, command: str) -> str:
    """The model a command acts on: --model, or the spec's only public model."""
    return str(checked.graph.pick_model(model, command))


def _version(value: bool) -> None:
    if value:
        out(f"graphspec {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Compile declarative YAML graph specs into Keras models, check them, and run them."""


@app.command()
@guarded
def build(spec: SpecArg, plugin: PluginOpt = None, set_: SetOpt = None, model: ModelOpt = None) -> None:
    """Validate SPEC and build every model: one line per model, or the errors."""
    _, models = built_models(spec, plugin, set_, [model] if model else None)
    for name, m in models.items():
        out(f"{name}: {m.count_params():,} parameters ({len(m.layers)} layers)")


@app.command()
@guarded
def summary(
    spec: SpecArg,
    model: ModelOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    plugin: PluginOpt = None,
    set_: SetOpt = None,
) -> None:
    """A table per model: layer, type, output shape, parameters, inbound layers."""
    if format not in {"text", "json"}:
        raise UsageError(f"--format must be text or json, got {format!r}")
    _, models = built_models(spec, plugin, set_, [model] if model else None, compile=False)
    from graphspec.render import text as render

    if format == "json":
        out(render.summary_json(list(models.values())))
        return
    from rich.console import Console

    console = Console()
    for m in models.values():
        console.print(render.summary_table(m))


@app.command()
@guarded
def save(
    spec: SpecArg,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write: a .keras file, a .tflite file, or a SavedModel folder.")],
    model: ModelOpt = None,
    plugin: PluginOpt = None,
    set_: SetOpt = None,
    format: Annotated[str | None, typer.Option(
        "--format", "-f", help="keras, savedmodel or tflite (default: from the output's suffix).")] = None,
    weights: Annotated[Path | None, typer.Option(
        "--weights", "-w", help="Trained weights to load first (.keras or .weights.h5, e.g. a run's best.keras).")
    ] = None,
) -> None:
    """Write a model as .keras (architecture, weights, compile settings), a TensorFlow SavedModel for
    serving, or TFLite."""
    from graphspec import compiler
    from graphspec.run.artifacts import export_format, export_model

    export_format(output, format)  # a bad --format is a usage error before anything is built
    checked = checked_spec(spec, plugin, set_)
    name = one_model(checked, model, "save")
    models = compiler.build(checked, models=[name])
    if weights is not None:
        from graphspec.run.models import load_weights

        load_weights(models[name], weights, with_optimizer=False)
    fmt = export_model(models[name], output, format)
    out(f"saved {name} to {output}" + ("" if fmt == "keras" else f" ({fmt})"))


@app.command()
@guarded
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


def _register_optional() -> None:
    """Commands that live in their own modules (each imports nothing heavy at import time)."""
    import importlib

    for module in ("graphspec.cli.lint", "graphspec.cli.train", "graphspec.cli.plot", "graphspec.cli.importer"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        mod.register(app, guarded)


_register_optional()


def main() -> None:
    app(prog_name="graphspec")
