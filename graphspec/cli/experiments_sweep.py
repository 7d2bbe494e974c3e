"""`graphspec sweep` and `graphspec runs`: thin commands over :mod:`graphspec.experiments.sweep`,
:mod:`graphspec.experiments.runs`, :mod:`graphspec.experiments.curves` and :mod:`graphspec.experiments.report`.

Nothing heavy is imported at module level: Optuna, TensorFlow and matplotlib load inside the command bodies.
"""

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add the sweep and runs commands to the CLI."""
    from graphspec.cli.common import PluginOpt, SetOpt, err, guarded, out
    from graphspec.render.escape import printable

    def say(text: str) -> None:
        """A sweep's progress line on stderr: trial values and names from the spec, controls escaped."""
        err(printable(text))

    @app.command()
    @guarded
    def sweep(
        spec: Annotated[Path, typer.Argument(help="A spec file with a `sweep:` section, or a sweep folder.",
                                             show_default=False)],
        trials: Annotated[int | None, typer.Option("--trials", "-n", min=1, help="Trials in all, over every "
                                                   "worker and host (overrides sweep.trials).")] = None,
        workers: Annotated[int, typer.Option("--workers", "-w", min=1, max=256,
                                             help="Trial processes on this host.")] = 1,
        dir: Annotated[Path | None, typer.Option("--dir", "-d", help="The sweep folder (default: "
                                                 "sweeps/<spec name>/): one run folder per trial.")] = None,
        storage: Annotated[str | None, typer.Option("--storage", help="Where the study lives: an SQLAlchemy URL, "
                                                    "e.g. postgresql://user@host/db for many hosts, or journal:PATH "
                                                    "(a journal file on a shared file system, no server; default: "
                                                    "SQLite in the sweep folder).")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Continue the sweep (the same command without it "
                                             "continues too; this refuses to start a new one).")] = False,
        seed: Annotated[int | None, typer.Option("--seed", min=0, help="The sampler's seed (worker k of this "
                                                 "host: seed + k - 1; on a journal or server, derived from the "
                                                 "seed and the worker: Slurm array task, else host and pid).")
                                    ] = None,
        study: Annotated[str | None, typer.Option("--study", help="The study's name in the storage (default: "
                                                  "the spec's name).")] = None,
        set_: SetOpt = None,
        plugin: PluginOpt = None,
        report: Annotated[bool, typer.Option("--report", help="Write a report of the sweep (history, parameter "
                                             "importances, parallel coordinates) to -o instead of running it.")
                          ] = False,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="The report: .html or .png.")] = None,
        worker_config: Annotated[str | None, typer.Option("--worker-config", hidden=True)] = None,
        track: Annotated[str | None, typer.Option(
            "--track", metavar="mlflow", help="Log the sweep to MLflow: a parent run, one child run per trial "
            "(MLFLOW_TRACKING_URI, else MLflow's local store).", show_default=False)] = None,
        experiment: Annotated[str | None, typer.Option(
            "--experiment", help="The MLflow experiment (default: the spec's name).", show_default=False)] = None,
        track_models: Annotated[bool, typer.Option("--track-models", help="Log each trial's best model too.")
                                ] = False,
    ) -> None:
        """Search the hyperparameters of SPEC's `sweep:` section with Optuna. Every trial is checked statically
        first (a trial that cannot build is pruned without training), then trained into DIR/trial-NNNN/.
        Ctrl-C stops after the current epoch; the same command continues."""
        import dataclasses

        from graphspec.build import backend as backend_mod
        from graphspec.errors import UsageError

        backend_mod.require("sweep")  # trials train: nothing installed is one line, before anything else
        from graphspec.experiments import sweep as sweep_mod

        if worker_config is not None:
            settings = sweep_mod.worker_settings(worker_config)
            sweep_mod.die_with_parent()
            raise typer.Exit(sweep_mod.work(settings, say))
        from graphspec.experiments import tracking

        track_opts = tracking.options(track, experiment=experiment, models=track_models)
        settings = sweep_mod.settings_for(spec, sets=set_, folder=dir, storage=storage, study=study, trials=trials,
                                          seed=seed, plugins=plugin,
                                          track=None if track_opts is None else dataclasses.asdict(track_opts))
        if report:
            if output is None:
                raise UsageError("--report writes a file: give -o report.html (or .png)")
            _report(settings, output)
            return
        if output is not None:
            raise UsageError("-o goes with --report")
        from graphspec.render.runs import sweep_summary

        summary = sweep_mod.sweep(settings, workers=workers, resume=resume, say=say)
        for line in sweep_summary(dataclasses.asdict(summary)):
            out(printable(line))  # study, parameter and folder names: controls shown as escapes
        raise typer.Exit(summary.exit_code)

    def _report(settings: Any, output: Path) -> None:
        import optuna

        from graphspec.errors import UsageError
        from graphspec.experiments import report as report_mod
        from graphspec.experiments import sweep_study

        url, name = settings.storage, settings.study
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            the_study = optuna.load_study(study_name=name, storage=sweep_study.storage(url))
        except KeyError:
            raise UsageError(f"no study {name!r} in {sweep_study.redact(url)}: run the sweep first") from None
        titles = report_mod.write(the_study, output, title=f"sweep {name}")
        out(f"wrote {output}: {', '.join(titles)}")

    @app.command()
    @guarded
    def runs(
        dirs: Annotated[list[Path] | None, typer.Argument(help="Run folders, sweep folders or runs roots "
                                                          "(default: runs/ and sweeps/).", show_default=False)
                        ] = None,
        sort: Annotated[str | None, typer.Option("--sort", help="Best first by this column, "
                                                 "named as the table shows it (val_accuracy, test_accuracy, epochs, "
                                                 "a parameter; default: each run's objective, runs ranked only "
                                                 "beside runs with the same objective).")] = None,
        format: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
        plot: Annotated[str | None, typer.Option("--plot", help="Draw this metric's learning curves "
                                                 "(e.g. val_loss) to -o.")] = None,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="The plot: .png, .svg or .pdf.")
                          ] = None,
    ) -> None:
        """Compare runs and sweep trials: status, swept values (or --set overrides), epochs, the best value of
        the monitored metric, test metrics and time, best first."""
        from rich.console import Console

        from graphspec.errors import UsageError
        from graphspec.experiments import runs as runs_mod
        from graphspec.render import runs as render

        if format not in {"table", "json", "csv"}:
            raise UsageError(f"--format must be table, json or csv, got {format!r}")
        if (plot is None) != (output is None):
            raise UsageError("--plot METRIC and -o FILE go together")
        folders = list(dirs or [p for p in (Path("runs"), Path("sweeps")) if p.is_dir()])
        if not folders:
            raise UsageError("no runs/ or sweeps/ folder here: name the folders to compare")
        rows = runs_mod.collect(folders, sort)
        if plot is not None and output is not None:
            from graphspec.experiments import curves

            n = curves.plot(rows, plot, output)
            out(f"wrote {output}: {plot} of {n} run{'s' if n != 1 else ''}")
            return
        if format == "json":
            out(render.as_json(rows))
        elif format == "csv":
            out(render.as_csv(rows))
        elif not rows:
            err(f"no runs under {', '.join(map(str, folders))}")
        else:
            console = Console(soft_wrap=False)
            shown = [{**r, "sorted_by": runs_mod.sort_value(r, sort)} for r in rows] if sort else rows
            console.print(render.table(shown, width=console.width, sort=sort))
