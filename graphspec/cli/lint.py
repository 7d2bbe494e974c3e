"""`graphspec lint PATH...`: check specs statically, fast, without TensorFlow.

Registered by :mod:`graphspec.cli.app`. Importing this module
imports nothing heavy; the command body imports the pure stages only
(:func:`graphspec.compiler.check`), never Keras. Plugins are read with
:mod:`ast`, never imported.

Exit codes: 0 no errors (warnings allowed unless ``--strict``), 1 errors found,
2 usage error (a missing path, a bad option), 3 an internal error (GS900) on some file.
"""

from __future__ import annotations

import enum
import gc
import os
import stat
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from graphspec.cli.lint_paths import STDIN, PathError, Skipped, expand_paths

if TYPE_CHECKING:
    from graphspec.analysis.lint_policy import LintConfig
    from graphspec.render.lint import FileReport

__all__ = ["Format", "PathError", "expand_paths", "lint_file", "lint_files", "register", "render"]


class Format(str, enum.Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


def _internal_error(file: str, exc: BaseException) -> Any:
    """GS900 for one file: what crashed and where, without a traceback."""
    from graphspec.diagnostics import Diagnostic, Location, Severity

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}graphspec{os.sep}" in f.filename] or frames
    where: tuple[str, ...] = ()
    if ours:
        f = ours[-1]
        where = (f"in {Path(f.filename).name}:{f.lineno} ({f.name})",)
    message = f"internal error while checking this file: {type(exc).__name__}: {exc}"
    if len(message) > 300:
        message = message[:297] + "..."
    return Diagnostic("GS900", Severity.ERROR, message, Location(file, 1, 1), "this is a bug in graphspec; please "
                      "report it with this file (set GRAPHSPEC_DEBUG=1 for the traceback)", where)


def _read_stdin() -> str:
    """Standard input as text: at most one byte over the size limit (so the limit is reported)."""
    from graphspec.diagnostics import Diagnostic, Severity
    from graphspec.spec.source import MAX_BYTES, SourceError, byte_location

    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(Diagnostic("GS001", Severity.ERROR, f"input is not UTF-8 text (byte {exc.start})",
                                     byte_location("<stdin>", data, exc.start))) from None
    return text[1:] if text.startswith("\ufeff") else text


def _text_of(file: str) -> str | None:
    """A file's text for showing the line of a YAML error (the stages keep none when parsing fails)."""
    from graphspec.spec.source import MAX_BYTES, links_outside

    if links_outside(file):  # refused: its lines are never shown
        return None
    try:
        if not stat.S_ISREG(os.stat(file).st_mode):  # a pipe or a device would block or never end
            return None
        with open(file, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_BYTES:
        return None
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


def _models(checked: Any) -> list[Any]:
    from graphspec.render.lint import ModelReport

    analysis, graph = checked.analysis, checked.graph
    if analysis is None or graph is None:
        return []
    out = []
    for name, info in analysis.models.items():
        model = graph.models.get(name)
        out.append(ModelReport(
            name=name,
            params=info.params,
            trainable_params=info.trainable,
            weight_bytes=info.weight_bytes,
            output_shapes=dict(info.output_shapes),
            unchecked=tuple(info.unchecked),
            submodel=bool(model is not None and model.submodel),
            macs=info.macs,
        ))
    order = list(graph.models)
    out.sort(key=lambda m: order.index(m.name) if m.name in order else len(order))
    return out


def lint_file(file: str, plugins: list[str] | None = None, *, text: str | None = None,
              data_roots: list[str] | None = None, sets: list[str] | None = None, config: LintConfig | None = None,
              strict: bool = False) -> FileReport:
    """Check one file; never raises: an unexpected exception becomes a GS900 diagnostic.

    `config` (`[tool.graphspec.lint]`) and the file's `# graphspec: ignore[...]` comments
    decide which diagnostics are reported; with `strict`, unused suppressions are too.
    """
    # The checker allocates many small objects that live until the file is done and
    # form no reference cycles worth collecting meanwhile (a 1 MiB file at most):
    # the cyclic collector would rescan them, and the heap, again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _lint_file(file, plugins, text=text, data_roots=data_roots, sets=sets, config=config, strict=strict)
    finally:
        if collecting:
            gc.enable()


def _lint_file(file: str, plugins: list[str] | None, *, text: str | None, data_roots: list[str] | None,
               sets: list[str] | None, config: LintConfig | None, strict: bool) -> FileReport:
    from graphspec.render.lint import FileReport, capped

    try:
        from graphspec import compiler
        from graphspec.analysis import lint_policy
        from graphspec.spec.source import SourceError

        name = "<stdin>" if file == STDIN else file
        config = config or lint_policy.LintConfig()
        if file == STDIN and text is None:
            try:
                text = _read_stdin()
            except SourceError as exc:
                return FileReport(name, lint_policy.apply([exc.diagnostic], name, config, None))
        checked = compiler.check(file if text is None else name, text=text, plugins=plugins, sets=sets,
                                 data_roots=data_roots)
        from graphspec.run.sources import lint as data_lint  # a streamed source's files: listed, not decoded

        checked.diagnostics.extend(data_lint.check(checked, data_roots))
        complete = checked.analysis is not None
        diags = lint_policy.apply(checked.diagnostics.sorted(), name, config, checked.source, strict=strict,
                                  complete=complete)
        diags.sort(key=lambda d: d.sort_key())
        if checked.source is not None:
            source: str | None = checked.source.text
        elif text is not None:
            source = text
        else:
            source = _text_of(file) if any(d.location.line for d in diags) else None
        bases = checked.source.bases if checked.source is not None else {}
        shown, omitted_errors, omitted_warnings = capped(diags)
        return FileReport(name, shown, _models(checked), source, bases, omitted_errors, omitted_warnings)
    except Exception as exc:  # noqa: BLE001 - the point: one file's crash is a diagnostic
        if os.environ.get("GRAPHSPEC_DEBUG") == "1":
            traceback.print_exc()
        return FileReport(file, [_internal_error(file, exc)])


def lint_files(files: Iterable[str], plugins: list[str] | None = None, refused: dict[str, str] | None = None,
               data_roots: list[str] | None = None, *, sets: list[str] | None = None,
               config: LintConfig | None = None, strict: bool = False) -> list[FileReport]:
    from graphspec.diagnostics import Diagnostic, Location, Severity
    from graphspec.render.lint import FileReport

    refused = refused or {}
    return [FileReport(f, [Diagnostic("GS001", Severity.ERROR, refused[f], Location(f, 1, 1))]) if f in refused
            else lint_file(f, plugins, data_roots=data_roots, sets=sets, config=config, strict=strict)
            for f in files]


def render(reports: list[FileReport], fmt: Format | str, *, strict: bool = False, color: bool = False,
           stats: bool = True, skipped: Iterable[Skipped] = (), root: Path | None = None,
           cwd: Path | None = None) -> str:
    """The reports in one format. `root` and `cwd` make SARIF and github paths relative to the repository."""
    from graphspec import __version__
    from graphspec.cli.lint_paths import skipped_text
    from graphspec.render import lint as render_lint

    skipped = list(skipped)
    listed = [s.as_dict() for s in skipped]
    note = skipped_text(skipped)
    if strict:
        reports = render_lint.strict(reports)
    fmt = Format(fmt)
    if fmt is Format.json:
        return render_lint.json_text(reports, strict_mode=strict, version=__version__, skipped=listed)
    if fmt is Format.sarif:
        return render_lint.sarif_text(reports, version=__version__, skipped=listed,
                                      root=None if root is None else str(root), cwd=None if cwd is None else str(cwd))
    if fmt is Format.github:
        return render_lint.github(reports, stats=stats, skipped_note=note, root=None if root is None else str(root),
                                  cwd=None if cwd is None else str(cwd))
    return render_lint.text(reports, color=color, stats=stats, skipped_note=note)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    from graphspec.cli.common import guarded

    @app.command()
    @guarded
    def lint(
        paths: Annotated[list[str], typer.Argument(
            help="Spec files, folders (searched recursively for *.yaml and *.yml), globs, or - for stdin.",
            show_default=False)],
        format: Annotated[Format, typer.Option(
            "--format", "-f", help="text, json (one document), github (workflow annotations) or sarif (2.1.0).",
            case_sensitive=False)] = Format.text,
        strict: Annotated[bool, typer.Option(
            "--strict", help="Treat warnings as errors, and report suppressions that suppress nothing.")] = False,
        plugin: Annotated[list[str] | None, typer.Option(
            "--plugin", "-p", help="Python module or .py file providing custom layers (repeatable); read "
            "statically, never imported.")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="Override a value before checking: --set nodes.dense_1.units=128 (repeatable).",
            show_default=False)] = None,
        root: Annotated[Path | None, typer.Option(
            "--root", help="SARIF and github: make paths relative to this folder (default: the git repository's "
            "top level).",
            show_default=False)] = None,
        hook: Annotated[bool, typer.Option(
            "--hook", help="pre-commit mode: a file named that has neither a `graphspec:` nor an `extends:` key "
            "is skipped with a note (the hook names every staged YAML file).")] = False,
        quiet: Annotated[bool, typer.Option(
            "--quiet", "-q", help="Text and github formats: no per-model parameter lines.")] = False,
        color: Annotated[bool | None, typer.Option(
            "--color/--no-color", help="Colour the text format (default: when stdout is a terminal).",
            show_default=False)] = None,
        data_root: Annotated[list[str] | None, typer.Option(
            "--data-root", help="A folder whose files specs may name (vocabularies), besides each spec's own "
            "folder (repeatable).")] = None,
    ) -> None:
        """Check specs statically, without TensorFlow: every error of every file, sorted.

        Reports each model's parameter count and weight memory. Folders and globs skip
        run folders and YAML files without a `graphspec:` or `extends:` key; files named are
        always checked (with --hook, those without either key are skipped with a note). `[tool.graphspec.lint]` in pyproject.toml and `# graphspec: ignore[CODE]`
        comments say what not to report (docs/lint.md). Exit code 0 when there are no
        errors, 1 when there are, 2 for a usage error, 3 for an internal error.
        """
        from graphspec.analysis import lint_policy
        from graphspec.cli.lint_paths import sarif_root, skipped_text
        from graphspec.errors import UsageError
        from graphspec.render.lint import exit_code
        from graphspec.spec import plugins as plugins_mod

        cwd = Path.cwd()
        config = lint_policy.load_config(cwd)
        refused: dict[str, str] = {}
        skipped: list[Skipped] = []
        try:
            files = expand_paths(paths, refused, skipped=skipped, excluded=config.excluded if config.exclude else None,
                                 hook=hook)
        except PathError as exc:
            raise UsageError(str(exc)) from None
        if not files and hook:  # a commit without specs: nothing to check is not a failure
            sys.stdout.write(f"no specs to check ({skipped_text(skipped) or 'none named'})\n")
            return
        if not files:
            note = skipped_text(skipped)
            raise UsageError(f"no specs under {', '.join(paths)}" + (f" ({note})" if note else ""))
        if root is not None and not root.is_dir():
            raise UsageError(f"--root {root}: not a folder")
        gc.freeze()  # what start-up imported is never garbage: keep the collector off it
        plugin_list = plugins_mod.all_plugins(plugin)
        plugins_mod.scan_all(plugin_list)  # a missing or unreadable plugin is a usage error, once
        reports = lint_files(files, plugin_list, refused, data_root, sets=set_ or None, config=config, strict=strict)
        if color is None:
            color = bool(getattr(sys.stdout, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
        rooted = format in (Format.sarif, Format.github)  # paths the repository's tools resolve from its root
        text = render(reports, format, strict=strict, color=color, stats=not quiet, skipped=skipped,
                      root=sarif_root(files, None if root is None else str(root), cwd) if rooted else None,
                      cwd=cwd if rooted else None)
        sys.stdout.write(text)
        sys.stdout.flush()
        code = exit_code(_strict_reports(reports) if strict else reports)
        if code:
            raise typer.Exit(code)


def _strict_reports(reports: list[FileReport]) -> list[FileReport]:
    from graphspec.render.lint import strict

    return strict(reports)
