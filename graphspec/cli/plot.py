"""`graphspec plot SPEC`: draw a model's layer graph, as `keras.utils.plot_model` does.

Registered by :mod:`graphspec.cli.app`. Never imports TensorFlow:
the graph and its shapes come from the pure stages (:func:`graphspec.compiler.check`
and the static shape analysis), what to draw from
:mod:`graphspec.analysis.drawing`, the DOT text from :mod:`graphspec.render.dot`.

The output format follows the file's extension: ``.dot`` (or ``.gv``) is written
by graphspec itself; ``.png``, ``.svg`` and ``.pdf`` are rendered by Graphviz's
``dot`` program. Without Graphviz, the DOT text is still written (next to the
requested file, with the ``.dot`` extension) and the command says how to
install Graphviz and exits with 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from graphspec.errors import GraphSpecError, UsageError

DOT_SUFFIXES = (".dot", ".gv")
RENDERED = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
RANKDIRS = ("TB", "LR")
MAX_DPI = 600
RENDER_TIMEOUT_S = 120

INSTALL_HELP = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "`conda install graphviz` (conda), or see https://graphviz.org/download/"
)


class GraphvizMissing(GraphSpecError):
    """Graphviz's `dot` is not on PATH; the DOT file was written instead (exit code 1)."""


class RenderError(GraphSpecError):
    """Graphviz ran but failed (exit code 1)."""


def _readable(path: Path) -> None:
    """Give a finished temporary file the permissions a new file gets (mkstemp makes it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    try:
        os.chmod(path, 0o666 & ~mask)
    except OSError:
        pass


def write_dot(text: str, target: Path) -> None:
    from graphspec.run.artifacts import atomic_path

    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
        _readable(tmp)


def render(text: str, target: Path, *, dpi: int = 200) -> Path:
    """Write DOT `text` to `target` in the format its extension names; return what was written.

    Raises GraphvizMissing (after writing ``target.with_suffix('.dot')``) when
    Graphviz is not installed, RenderError when it fails.
    """
    suffix = target.suffix.lower()
    if suffix in DOT_SUFFIXES:
        write_dot(text, target)
        return target
    fmt = RENDERED[suffix]
    exe = shutil.which("dot")
    if exe is None:
        fallback = target.with_suffix(".dot")
        write_dot(text, fallback)
        raise GraphvizMissing(
            f"cannot write {target}: Graphviz's `dot` program is not installed (or not on PATH).\n"
            f"wrote {fallback} instead; once Graphviz is installed, `dot -T{fmt} {fallback} -o {target}` "
            f"renders it.\n{INSTALL_HELP}"
        )
    from graphspec.run.artifacts import atomic_path

    with atomic_path(target) as tmp:
        try:
            proc = subprocess.run(
                [exe, f"-T{fmt}", f"-Gdpi={int(dpi)}", "-o", str(tmp)],
                input=text.encode("utf-8"), capture_output=True, timeout=RENDER_TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired:
            raise RenderError(f"Graphviz took longer than {RENDER_TIMEOUT_S} s to render {target}; "
                              f"write a .dot file and render it yourself") from None
        except OSError as exc:
            raise RenderError(f"cannot run Graphviz ({exe}): {exc.strerror or exc}") from None
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
            raise RenderError(f"Graphviz failed to render {target} (exit code {proc.returncode})"
                              + (": " + " ".join(detail) if detail else ""))
        _readable(tmp)
    return target


def _check_options(output: Path, dpi: int, rankdir: str) -> str:
    suffix = output.suffix.lower()
    if suffix not in DOT_SUFFIXES and suffix not in RENDERED:
        kinds = ", ".join(list(DOT_SUFFIXES) + list(RENDERED))
        raise UsageError(f"{output}: cannot tell the format from the extension {suffix or '(none)'!s}; "
                         f"use one of {kinds}")
    if not 1 <= dpi <= MAX_DPI:
        raise UsageError(f"--dpi must be between 1 and {MAX_DPI}, got {dpi}")
    direction = rankdir.upper()
    if direction not in RANKDIRS:
        raise UsageError(f"--rankdir must be TB (top to bottom) or LR (left to right), got {rankdir!r}")
    return direction


def plot(
    spec: Annotated[Path | None, typer.Argument(
        help="The spec file (YAML); not with --diff.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write: .dot (no Graphviz needed), .png, .svg or .pdf "
        "[default: MODEL.png in the current folder].", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="The model to draw (needed when the spec defines several).")] = None,
    show_shapes: Annotated[bool, typer.Option(
        "--show-shapes", help="Show each node's input and output shapes (static inference).")] = False,
    show_names: Annotated[bool, typer.Option(
        "--show-names", help="Show node names next to the layer types.")] = False,
    expand_nested: Annotated[bool, typer.Option(
        "--expand-nested", help="Draw called models (`model:` nodes) as clusters of their nodes.")] = False,
    dpi: Annotated[int, typer.Option("--dpi", help="Resolution of rendered images.")] = 200,
    rankdir: Annotated[str, typer.Option(
        "--rankdir", help="TB: top to bottom; LR: left to right.")] = "TB",
    plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", "-p", help="Python module or .py file providing custom layers (repeatable).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", help="Override a spec field by dotted path: KEY=VALUE (repeatable).")] = None,
    data_root: Annotated[list[str] | None, typer.Option(
        "--data-root", help="A folder whose files the spec may name (vocabularies), besides the spec's own "
        "folder (repeatable).")] = None,
    diff: Annotated[tuple[Path, Path] | None, typer.Option(
        "--diff", help="Draw B's model with what changed since A coloured: added (green), removed (red), "
        "changed (orange), renamed (blue). A and B are spec files or run folders.", show_default=False)] = None,
) -> None:
    """Draw a model's layer graph: one box per node, as keras.utils.plot_model does.

    With --diff A B, draw B with the changes since A coloured (a review aid).

    The format follows the output's extension: .dot is written directly; .png,
    .svg and .pdf need Graphviz's `dot` program. Shapes come from static
    inference, so plotting never imports TensorFlow.
    """
    from graphspec.analysis.drawing import model_drawing
    from graphspec.render import dot
    from graphspec.cli.common import checked_spec, one_model, out

    direction = _check_options(output if output is not None else Path("model.png"), dpi, rankdir)
    options = dot.Options(show_shapes=show_shapes, show_names=show_names, expand_nested=expand_nested,
                          rankdir=direction, dpi=dpi)
    if diff is not None:
        if spec is not None or set_:
            raise UsageError("--diff A B draws B: give no SPEC and no --set with it")
        from graphspec.experiments import diff as diff_mod
        from graphspec.experiments.diff_plot import diff_drawing

        side_a, side_b = (diff_mod.load_side(p, plugin) for p in diff)
        for side in (side_a, side_b):
            side.checked.raise_for_errors()  # as `plot SPEC`: a spec with errors is not drawn
        name = one_model(side_b.checked, model, "plot")
        marked = diff_drawing(side_a, side_b, name, expand_nested=expand_nested)
        options.marks, options.edge_marks = marked.boxes, marked.edges
        options.show_names = True  # a review aid: which node changed, not only its type
        drawing = marked.drawing
    elif spec is None:
        raise UsageError("give the SPEC to draw, or --diff A B")
    else:
        checked = checked_spec(spec, plugin, set_, data_root)
        name = one_model(checked, model, "plot")
        drawing = model_drawing(checked.graph, checked.analysis, name, expand_nested=expand_nested)
    target = output if output is not None else Path(f"{name}.png")
    text = dot.drawing_dot(drawing, options)
    written = render(text, target, dpi=dpi)
    out(f"plotted {name} to {written}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    from graphspec.cli.common import guarded

    app.command(name="plot")(guarded(plot))
