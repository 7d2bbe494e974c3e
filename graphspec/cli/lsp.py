"""`graphspec lsp`: the language server, over standard input and output.

Registered by :mod:`graphspec.cli.app`. The command body imports the server
(pygls, the `[lsp]` extra) and the pure stages only, never Keras or a plugin.
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command to the app."""
    from graphspec.cli.common import guarded

    @app.command()
    @guarded
    def lsp(
        plugin: Annotated[list[str] | None, typer.Option(
            "--plugin", "-p", help="Python module or .py file providing custom layers (repeatable); read "
            "statically, never imported.")] = None,
        stdio: Annotated[bool, typer.Option("--stdio", help="Talk over standard input and output (the default "
                                            "and only transport; accepted because editors pass it).")] = True,
    ) -> None:
        """Run the language server over stdio: diagnostics as `lint`, shapes, parameters and MACs in the editor.

        Needs the `[lsp]` extra (pygls). Editors start it themselves (docs/editor.md).
        """
        from graphspec.errors import UsageError

        try:
            from graphspec.lsp import server
        except ImportError as exc:
            raise UsageError(f"graphspec lsp needs pygls: pip install 'keras-graphspec[lsp]' ({exc})") from None
        server.serve(plugin)
