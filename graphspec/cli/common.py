"""What every command shares: exit codes, common options, printing, and the one error boundary.

:func:`guarded` is where errors become exit codes: spec problems 1, usage errors 2,
a crash of graphspec itself GS900 and 3 (`EXIT_INTERNAL`). Command modules import this module, never
:mod:`graphspec.cli.app`, which imports them.
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

from graphspec.diagnostics import clip
from graphspec.errors import EXIT_INTERNAL, GraphSpecError, SpecError, UsageError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])

PluginOpt = Annotated[
    list[str] | None,
    typer.Option("--plugin", "-p", help="Python module or .py file providing custom layers (repeatable)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a spec field by dotted path: KEY=VALUE (repeatable)."),
]
DataRootOpt = Annotated[
    list[str] | None,
    typer.Option("--data-root", help="A folder whose files the spec may name (data files, vocabularies), besides "
                 "the spec's own folder (repeatable); a run folder's data is read inside the current folder."),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Only this model of the spec.")]
SpecArg = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False)]
BackendOpt = Annotated[str | None, typer.Option(
    "--backend", "-b", metavar="tensorflow|jax|torch",
    help="The Keras backend (default: KERAS_BACKEND, else the first installed of tensorflow, jax, torch).",
    show_default=False)]


def use_backend(requested: str | None, command: str, *, recorded: str | None = None) -> str:
    """Select the Keras backend for a command that builds or runs a model, before Keras is imported.

    Nothing installed, or the backend asked for missing: a usage error naming the extra (exit 2).
    """
    from graphspec.build import backend

    return backend.select(requested, recorded=recorded, command=command, note=note)


def err(text: str) -> None:
    sys.stderr.write(text + ("\n" if not text.endswith("\n") else ""))


def note(text: str) -> None:
    """`note: TEXT` on stderr; names in it (a claim's host, a run folder) are shown with their controls escaped."""
    from graphspec.render.escape import printable

    err(f"note: {printable(text)}")


def out(text: str) -> None:
    sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


def _color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def report(diags: list[Any], sources: dict[str, str] | None = None) -> None:
    """Print diagnostics to stderr with the source line and caret."""
    from graphspec.render.text import count_line, diagnostics_text

    if not diags:
        return
    from graphspec.spec.source import links_outside

    sources = dict(sources or {})
    for d in diags:  # errors raised after checking name their file; show its lines too
        name = d.location.file
        if name not in sources and d.location.line and Path(name).is_file() and not links_outside(name):
            try:
                sources[name] = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                pass
    err(diagnostics_text(diags, sources, color=_color(sys.stderr)))
    n_err = sum(1 for d in diags if d.is_error)
    err(count_line(n_err, len(diags) - n_err))


def guarded(fn: F) -> F:
    """Catch errors once: spec problems -> 1, usage -> 2, anything else is a bug -> 3 (GS900). A reader of standard
    output that left (`graphspec predict RUN -i folder | head`) ends the command quietly with 1, as Click ends
    one whose last output meets the closed pipe."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from graphspec.render.escape import printable

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except SpecError as exc:
            report(exc.diagnostics, exc.sources)
            raise typer.Exit(EXIT_PROBLEMS) from None
        except UsageError as exc:
            err(f"error: {printable(clip(str(exc)))}")
            raise typer.Exit(EXIT_USAGE) from None
        except GraphSpecError as exc:
            err(f"error: {printable(clip(str(exc)))}")
            raise typer.Exit(EXIT_PROBLEMS) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            try:  # what is left in the buffer goes nowhere at exit, not into the closed pipe (Python's advice)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):  # not a real file (a test's captured output)
                pass
            raise typer.Exit(EXIT_PROBLEMS) from None
        except Exception:
            err("internal error [GS900]: graphspec crashed; this is a bug, please report it with the "
                "traceback below")
            err(traceback.format_exc())
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def checked_spec(spec: Path, plugins: list[str] | None, sets: list[str] | None = None,
                 data_roots: list[str] | None = None, *, builds: bool = False) -> Any:
    """Run the pure stages; print warnings; raise SpecError on errors.

    `builds`: the command builds a model next, and `compiler.build` checks the memory
    budget itself (as an error), so lint's memory warnings (GS502) are not printed here.
    """
    from graphspec import compiler
    from graphspec.spec import plugins as plugins_mod

    result = compiler.check(spec, plugins=plugins_mod.all_plugins(plugins), sets=sets, data_roots=data_roots)
    shown = [d for d in result.diagnostics.sorted() if not (builds and d.code == "GS502")]
    if result.ok and shown:
        report(shown, result.source.texts() if result.source else {})
    result.raise_for_errors()
    return result


def built_models(spec: Path, plugins: list[str] | None, sets: list[str] | None, models: list[str] | None,
                 *, compile: bool = True, backend: str | None = None, command: str = "build",
                 data_roots: list[str] | None = None, values: bool = True) -> tuple[Any, dict[str, Any]]:
    from graphspec import compiler

    use_backend(backend, command)
    checked = checked_spec(spec, plugins, sets, data_roots, builds=True)
    return checked, compiler.build(checked, models=models, compile=compile, values=values)


def one_model(checked: Any, model: str | None, command: str) -> str:
    """The model a command acts on: --model, or the spec's only public model."""
    return str(checked.graph.pick_model(model, command))
