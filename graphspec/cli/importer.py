"""`graphspec import`: a functional Keras model -> a spec file.

Registered by :mod:`graphspec.cli.app`; imports nothing heavy until the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from graphspec.errors import UsageError


def _parse_args(items: list[str] | None) -> dict[str, Any]:
    """`--arg KEY=VALUE` (VALUE read as YAML: `include_top=false`, `input_shape=[96, 96, 3]`)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--arg {item!r}: expected KEY=VALUE, e.g. include_top=false")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise UsageError(f"--arg {item!r}: cannot read the value: {exc}") from None
        if key in {"input_shape"} and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    from graphspec.cli.common import guarded

    @app.command("import")
    @guarded
    def import_(
        source: Annotated[str, typer.Argument(
            help="A .keras file, keras.applications.NAME (built with weights=None) or module:function "
                 "(a module name or a .py file) returning a model.", show_default=False, metavar="SOURCE")],
        output: Annotated[Path | None, typer.Option(
            "--output", "-o", help="Spec file to write (default: print it).", metavar="SPEC.yaml")] = None,
        plugin: Annotated[list[str] | None, typer.Option(
            "--plugin", "-p", help="Module or .py file defining custom layers the model uses (repeatable).",
            metavar="PLUGIN")] = None,
        arg: Annotated[list[str] | None, typer.Option(
            "--arg", "-a", help="Keyword argument for the application or function: KEY=VALUE (repeatable).",
            metavar="KEY=VALUE")
        ] = None,
        name: Annotated[str | None, typer.Option("--name", help="Name of the spec and its model.", metavar="NAME")] = None,
        verify: Annotated[bool, typer.Option(
            "--verify/--no-verify", help="Build the spec back and compare it with the model (default).")] = True,
        backend: Annotated[str | None, typer.Option(
            "--backend", "-b", metavar="tensorflow|jax|torch", show_default=False,
            help="The Keras backend (default: KERAS_BACKEND, else the first installed of tensorflow, jax, "
                 "torch).")] = None,
        flat: Annotated[bool, typer.Option(
            "--flat", help="One node per layer call with its Keras name: no blocks for repeated structure.")
        ] = False,
        expect: Annotated[bool, typer.Option(
            "--expect", help="Also write `expect: {params: N}`, so that lint fails when the parameter count "
                             "changes (the count is always in the first line's comment).")
        ] = False,
    ) -> None:
        """Write a spec that builds the same functional model as SOURCE (names, layers, arguments)."""
        from graphspec.cli.common import use_backend

        use_backend(backend, "import")
        from graphspec import importer
        from graphspec.spec import plugins as plugins_mod
        from graphspec.cli.common import err, out

        plugins = plugins_mod.all_plugins(plugin)
        result = importer.import_source(source, plugins=plugins, args=_parse_args(arg), name=name, verify=verify,
                                        blocks=not flat, expect=expect)
        if output is None:
            out(result.text)
        else:
            from graphspec.run.artifacts import atomic_write_text

            atomic_write_text(output, result.text)
        checked = "round trip verified" if result.verified else "not verified"
        where = f" -> {output}" if output is not None else ""
        err(f"imported {source}: {result.nodes} nodes, {result.params:,} parameters ({checked}){where}")
        if result.plugins:
            err("build it with " + " ".join(f"--plugin {p}" for p in result.plugins))
        if result.renames:
            err(f"renamed {len(result.renames)} name(s) that are not spec names: "
                + ", ".join(f"{k} -> {v}" for k, v in sorted(result.renames.items())))
