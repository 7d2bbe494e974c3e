"""`graphspec lint PATH...`: check specs statically, fast, without TensorFlow.

Registered by :mod:`graphspec.cli.app`. Importing this module
imports nothing heavy; the command body imports the pure stages only
(:func:`graphspec.compiler.check`), never Keras. Plugins are read with
:mod:`ast`, never imported.

Exit codes: 0 no errors (warnings allowed unless ``--strict``), 1 errors found,
2 usage error (a missing path, a bad option) or an internal error on some file.
"""

from __future__ import annotations

import enum
import glob
import os
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from graphspec.render.lint import FileReport

SPEC_SUFFIXES = (".yaml", ".yml")
STDIN = "-"
# Folders never searched when walking a directory (they hold other tools' YAML).
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}


class Format(str, enum.Enum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


class PathError(Exception):
    """A path on the command line names nothing (a usage error)."""


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _walk(folder: Path) -> list[Path]:
    """Spec files under a folder, recursively, sorted; hidden and tool folders skipped."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(SPEC_SUFFIXES) and not name.startswith("."):
                found.append(Path(root) / name)
    return found


def _glob_root(pattern: str) -> Path:
    """The folder a glob searches under: its longest prefix without wildcards."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if _is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _escapes(path: Path, root: Path) -> bool:
    """A symbolic link found while searching `root` that points outside it."""
    if not path.is_symlink():
        return False
    try:
        return not Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))
    except (OSError, ValueError):
        return True


def expand_paths(paths: Iterable[str], refused: dict[str, str] | None = None) -> list[str]:
    """Files as given, folders recursively (`*.yaml`, `*.yml`), globs; in order, without repeats.

    A symbolic link found by searching a folder or a glob that points outside
    that folder, or a named link that points outside the working folder, is
    listed but not to be read (a spec in a pull request could link to a
    secret, whose lines would be shown): `refused` maps it to the reason. Raises
    :class:`PathError` for a path that does not exist or a glob that matches nothing.
    """
    out: dict[str, None] = {}

    def add(p: Path, root: Path | None = None) -> None:
        name = os.path.normpath(str(p))
        out.setdefault(name, None)
        if root is not None and refused is not None and _escapes(p, root):
            where = "the working folder" if os.path.normpath(str(root)) == "." else f"{os.path.normpath(str(root))}/"
            refused[name] = f"symbolic link to a file outside {where}: not read"

    for raw in paths:
        if raw == STDIN:
            out.setdefault(STDIN, None)
            continue
        p = Path(raw)
        if p.is_dir():
            for f in _walk(p):
                add(f, p)
        elif p.exists():
            add(p, Path("."))  # even a named link may not leave the working folder (pre-commit, CI)
        elif _is_glob(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                raise PathError(f"no files match {raw!r}")
            root = _glob_root(raw)
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    for f in _walk(mp):
                        add(f, mp)
                elif mp.name.endswith(SPEC_SUFFIXES) or not _is_glob(Path(raw).name):
                    add(mp, root)
        else:
            raise PathError(f"{raw}: no such file or directory")
    return list(out)


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
    return Diagnostic("GS900", Severity.ERROR, message, Location(file), "this is a bug in graphspec; please "
                      "report it with this file (set GRAPHSPEC_DEBUG=1 for the traceback)", where)


def _read_stdin() -> str:
    """Standard input as text: at most one byte over the size limit (so the limit is reported)."""
    from graphspec.diagnostics import Diagnostic, Location, Severity
    from graphspec.spec.source import MAX_BYTES, SourceError

    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(Diagnostic("GS001", Severity.ERROR, f"input is not UTF-8 text (byte {exc.start})",
                                     Location("<stdin>"))) from None
    return text[1:] if text.startswith("\ufeff") else text


def _text_of(file: str) -> str | None:
    """A file's text for showing the line of a YAML error (the stages keep none when parsing fails)."""
    from graphspec.spec.source import MAX_BYTES

    try:
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


def lint_file(file: str, plugins: list[str] | None = None, *, text: str | None = None) -> FileReport:
    """Check one file; never raises: an unexpected exception becomes a GS900 diagnostic."""
    from graphspec.render.lint import FileReport

    try:
        from graphspec import compiler
        from graphspec.spec.source import SourceError

        name = "<stdin>" if file == STDIN else file
        if file == STDIN and text is None:
            try:
                text = _read_stdin()
            except SourceError as exc:
                return FileReport(name, [exc.diagnostic])
        checked = compiler.check(file if text is None else name, text=text, plugins=plugins)
        diags = checked.diagnostics.sorted()
        if checked.source is not None:
            source: str | None = checked.source.text
        elif text is not None:
            source = text
        else:
            source = _text_of(file) if any(d.location.line for d in diags) else None
        bases = checked.source.bases if checked.source is not None else {}
        return FileReport(name, diags, _models(checked), source, bases)
    except Exception as exc:  # noqa: BLE001 - the point: one file's crash is a diagnostic
        if os.environ.get("GRAPHSPEC_DEBUG") == "1":
            traceback.print_exc()
        return FileReport(file, [_internal_error(file, exc)])


def lint_files(files: Iterable[str], plugins: list[str] | None = None,
               refused: dict[str, str] | None = None) -> list[FileReport]:
    from graphspec.diagnostics import Diagnostic, Location, Severity
    from graphspec.render.lint import FileReport

    refused = refused or {}
    return [FileReport(f, [Diagnostic("GS001", Severity.ERROR, refused[f], Location(f))]) if f in refused
            else lint_file(f, plugins) for f in files]


def render(reports: list[FileReport], fmt: Format | str, *, strict: bool = False, color: bool = False,
           stats: bool = True) -> str:
    from graphspec import __version__
    from graphspec.render import lint as render_lint

    if strict:
        reports = render_lint.strict(reports)
    fmt = Format(fmt)
    if fmt is Format.json:
        return render_lint.json_text(reports, strict_mode=strict, version=__version__)
    if fmt is Format.sarif:
        return render_lint.sarif_text(reports, version=__version__)
    if fmt is Format.github:
        return render_lint.github(reports, stats=stats)
    return render_lint.text(reports, color=color, stats=stats)


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
        strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
        plugin: Annotated[list[str] | None, typer.Option(
            "--plugin", "-p", help="Python module or .py file providing custom layers (repeatable); read "
            "statically, never imported.")] = None,
        quiet: Annotated[bool, typer.Option(
            "--quiet", "-q", help="Text and github formats: no per-model parameter lines.")] = False,
        color: Annotated[bool | None, typer.Option(
            "--color/--no-color", help="Colour the text format (default: when stdout is a terminal).",
            show_default=False)] = None,
    ) -> None:
        """Check specs statically, without TensorFlow: every error of every file, sorted.

        Reports each model's parameter count and weight memory. Exit code 0 when
        there are no errors, 1 when there are, 2 for a usage or internal error.
        """
        from graphspec.spec import plugins as plugins_mod
        from graphspec.errors import UsageError
        from graphspec.render.lint import exit_code

        refused: dict[str, str] = {}
        try:
            files = expand_paths(paths, refused)
        except PathError as exc:
            raise UsageError(str(exc)) from None
        if not files:
            raise UsageError(f"no *.yaml or *.yml files under {', '.join(paths)}")
        plugin_list = plugins_mod.all_plugins(plugin)
        plugins_mod.scan_all(plugin_list)  # a missing or unreadable plugin is a usage error, once
        reports = lint_files(files, plugin_list, refused)
        if color is None:
            color = bool(getattr(sys.stdout, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
        text = render(reports, format, strict=strict, color=color, stats=not quiet)
        sys.stdout.write(text)
        sys.stdout.flush()
        code = exit_code(_strict_reports(reports) if strict else reports)
        if code:
            raise typer.Exit(code)


def _strict_reports(reports: list[FileReport]) -> list[FileReport]:
    from graphspec.render.lint import strict

    return strict(reports)
