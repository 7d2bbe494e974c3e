"""The `graphspec` command line: thin Typer commands; the one place that sets exit codes.

Exit codes: 0 success, 1 the spec has problems (or the command's check
failed), 2 usage error, 3 internal error (a bug in graphspec: GS900, and the message says so).
Heavy imports (TensorFlow) happen inside command bodies only.
"""

from __future__ import annotations

from typing import Annotated

import typer

from graphspec import __version__
from graphspec.cli import experiments, experiments_sweep, importer, launch, lint, lsp, model, plot, train
from graphspec.cli.common import out

app = typer.Typer(
    name="graphspec",
    help="Compile declarative YAML graph specs into Keras models, check them, and run them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

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


for module in (model, lint, train, launch, plot, importer, experiments, experiments_sweep, lsp):
    module.register(app)


def main() -> None:
    app(prog_name="graphspec")
