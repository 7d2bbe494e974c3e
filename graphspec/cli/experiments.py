"""`graphspec resolve` and `graphspec diff`: the spec as graphspec sees it, and what a change does.

Both are pure: they run the stages up to static shapes and never import a backend.
`diff` exits as diff(1) does: 0 when the specs are equivalent, 1 when they differ,
2 for a usage error or a spec that has errors (a spec whose graph resolves is still
compared: its errors are printed beside the diff).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from graphspec.cli.common import EXIT_PROBLEMS, EXIT_USAGE, ModelOpt, PluginOpt, SetOpt, SpecArg, out, report
from graphspec.errors import SpecError, UsageError

DIFF_FORMATS = ("text", "json", "markdown", "github")

ArgA = Annotated[Path, typer.Argument(metavar="A", help="The spec before: a file, or a run folder (its spec.yaml).",
                                       show_default=False)]
ArgB = Annotated[Path, typer.Argument(metavar="B", help="The spec after: a file, or a run folder (its spec.yaml).",
                                       show_default=False)]


def resolve(
    spec: SpecArg,
    set_: SetOpt = None,
    expand: Annotated[bool, typer.Option(
        "--expand", help="Also substitute vars and expand blocks: plain nodes, as the later stages see them.")] = False,
    explain: Annotated[str | None, typer.Option(
        "--explain", help="Print one value (a dotted path, e.g. nodes.dense_1.units) and where it came from: "
        "file and line, --set, variable, block instance.", show_default=False)] = None,
    plugin: PluginOpt = None,
) -> None:
    """Print SPEC with its bases (`extends`) merged and --set applied, as YAML that is itself a valid spec.

    Exit code 0, 1 when the spec has errors (they are printed), 2 for a usage error.
    """
    from graphspec.experiments import resolve as resolve_mod
    from graphspec.render import explain as render_explain

    resolved = resolve_mod.resolve(spec, sets=set_, plugins=plugin)
    if resolved.checked.diagnostics:
        report(resolved.checked.diagnostics.sorted(), resolved.expanded.texts())
    if explain is not None:
        out(render_explain.text(resolve_mod.explain(resolved, explain)))
        return
    out(resolve_mod.spec_text(resolved, expand=expand))


def diff(
    a: ArgA,
    b: ArgB,
    model: ModelOpt = None,
    format: Annotated[str, typer.Option(
        "--format", "-f", help="text, json (stable, documented in docs/variants.md), markdown (a pull-request "
        "comment) or github (annotations on B's lines).")] = "text",
    plugin: PluginOpt = None,
) -> None:
    """Compare two specs (or run folders) semantically: nodes, edges, arguments, settings, parameters, shapes.

    Formatting, comments, key order and blocks written out by hand are not changes.
    Exit code 0 when equivalent, 1 when they differ, 2 for a usage error or a spec with errors
    (the diff is still printed when both graphs resolve).
    """
    from graphspec.experiments import diff as diff_mod
    from graphspec.render import diff as render_diff

    fmt = format.lower()
    if fmt not in DIFF_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(DIFF_FORMATS)}; got {format!r}")
    try:
        result, side_a, side_b = diff_mod.diff_paths(a, b, model=model, plugins=plugin)
    except SpecError as exc:
        report(exc.diagnostics, exc.sources)
        raise typer.Exit(EXIT_USAGE) from None
    if result.errors:
        report(result.errors, {**side_a.texts(), **side_b.texts()})
    text = render_diff.render(result, fmt, b_file=side_b.file, path=_repo_paths([a, b]) if fmt == "github" else str)
    out(text.rstrip("\n"))
    if result.errors:
        raise typer.Exit(EXIT_USAGE)
    if not result.equal:
        raise typer.Exit(EXIT_PROBLEMS)


def _repo_paths(specs: list[Path]) -> Callable[[str], str]:
    """File names as the GitHub runner resolves `file=`: relative to the repository's root."""
    from graphspec.cli.lint_paths import sarif_root
    from graphspec.render.lint import repo_path

    cwd = Path.cwd()
    root = sarif_root([str(p) for p in specs], None, cwd)
    return lambda file: repo_path(file, None if root is None else str(root), str(cwd))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    from graphspec.cli.common import guarded

    app.command(name="resolve")(guarded(resolve))
    app.command(name="diff")(guarded(diff))
