"""`graphspec launch --local N [--devices-per-process K] -- train SPEC ...`: a thin command over
:mod:`graphspec.run.launch` (N training processes on this host, joined on loopback).

Registered by :mod:`graphspec.cli.app`; nothing heavy is imported (the workers import Keras).
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the launch command to the CLI."""
    from graphspec.cli.common import guarded

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    @guarded
    def launch(
        ctx: typer.Context,
        local: Annotated[int, typer.Option("--local", min=1, help="Worker processes to start on this host.",
                                           show_default=False)],
        devices_per_process: Annotated[int | None, typer.Option(
            "--devices-per-process", min=1, help="Devices per worker (--devices of each train; on a CPU, "
            "logical devices).", show_default=False)] = None,
    ) -> None:
        """Train on N local processes: graphspec launch --local N -- train SPEC [train options].

        Each worker runs `graphspec train ... --distribute data-parallel` with Keras's distribution variables
        (a free loopback port); output is prefixed with the worker's id; process 0 writes the run folder. When
        one worker fails the others are stopped; the exit code is the first failure's."""
        from graphspec.build import backend as backend_mod
        from graphspec.run import launch as launch_mod

        backend_mod.require("launch")  # nothing installed: one line before any worker starts

        raise typer.Exit(launch_mod.launch(list(ctx.args), workers=local, devices_per_process=devices_per_process))
