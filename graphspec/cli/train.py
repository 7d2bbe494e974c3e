"""`graphspec train`, `evaluate` and `predict`: thin commands over :mod:`graphspec.run.trainer`
and :mod:`graphspec.run.inference`.

Nothing heavy is imported here at module level (cli.py imports this module for every command,
`--help` and `lint` included): TensorFlow is imported inside the command bodies.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

RunsRoot = Path("runs")


def register(app: typer.Typer) -> None:
    """Add the train, evaluate and predict commands to the CLI."""
    from graphspec.cli.common import guarded
    from graphspec.cli.common import BackendOpt, DataRootOpt, ModelOpt, PluginOpt, SetOpt, SpecArg, err, note, out, use_backend

    def run_backend(requested: str | None, command: str, spec_or_run: Path, *, resume: bool = False,
                    run_dir: Path | None = None) -> str:
        """Select the backend: --backend, else the run folder's own (resumed, evaluated, predicted), else the default."""
        from graphspec.build import backend as backend_mod
        from graphspec.run import folders

        backend_mod.require(command)  # nothing installed: say so before reading anything
        recorded = None
        if requested is None:
            if resume:
                recorded = folders.recorded_backend(folders.resume_target(spec_or_run, run_dir, RunsRoot))
            elif folders.is_run_dir(spec_or_run):
                recorded = folders.recorded_backend(spec_or_run)
                if recorded is not None and not backend_mod.is_installed(recorded):
                    err(f"note: the run was trained on {recorded}, which is not installed here; using the default "
                        "backend (the weights load on any backend)")
                    recorded = None
        return use_backend(requested, command, recorded=recorded)

    def checker(data_roots: list[str] | None) -> Any:
        def check_fn(path: Any, *, sets: list[str] | None = None, plugins: list[str] | None = None) -> Any:
            from graphspec.cli.common import checked_spec

            return checked_spec(Path(path), plugins, sets, data_roots, builds=True)

        return check_fn

    SpecOrRun = Annotated[Path, typer.Argument(help="A spec file (YAML) or a run folder.", show_default=False)]
    WeightsOpt = Annotated[Path | None, typer.Option(
        "--weights", "-w", help="Weights to use (.keras or .weights.h5); default: the run's best.keras.")]

    @app.command()
    @guarded
    def train(
        spec: SpecArg,
        set_: SetOpt = None,
        epochs: Annotated[int | None, typer.Option("--epochs", "-e", min=1,
                                                   help="Epochs in total (overrides train.epochs).")] = None,
        run_dir: Annotated[Path | None, typer.Option(
            "--run-dir", "-r", help="The run folder (default: runs/<spec name>/<timestamp>/).")] = None,
        resume: Annotated[bool, typer.Option(
            "--resume", help="Continue a run (--run-dir, else the spec's latest run) after its last "
            "completed epoch.")] = False,
        seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed (overrides train.seed).")] = None,
        model: ModelOpt = None,
        plugin: PluginOpt = None,
        force_unlock: Annotated[bool, typer.Option(
            "--force-unlock", help="Take over the run folder's claim even if another host holds it (only when "
            "that run is known to be gone).")] = False,
        data_root: DataRootOpt = None,
        backend: BackendOpt = None,
        distribute: Annotated[str | None, typer.Option(
            "--distribute", metavar="data-parallel|mirrored",
            help="Train on several devices: data-parallel (keras.distribution.DataParallel over every device of "
            "every process; JAX) or mirrored (tf.distribute.MirroredStrategy over this host's devices; "
            "TensorFlow). data.batch_size is the global batch.", show_default=False)] = None,
        devices: Annotated[int | None, typer.Option(
            "--devices", min=1, help="Devices per process: on a CPU, split the host into N logical devices; "
            "with accelerators, the first N.", show_default=False)] = None,
        coordinator: Annotated[str | None, typer.Option(
            "--coordinator", metavar="HOST:PORT", help="Address of process 0, for several processes (default: "
            "KERAS_DISTRIBUTION_JOB_ADDRESSES).", show_default=False)] = None,
        num_processes: Annotated[int | None, typer.Option(
            "--num-processes", min=1, help="Processes in the job (default: KERAS_DISTRIBUTION_NUM_PROCESSES, "
            "else 1).", show_default=False)] = None,
        process_id: Annotated[int | None, typer.Option(
            "--process-id", min=0, help="This process's index, 0 to N-1; process 0 writes the run folder "
            "(default: KERAS_DISTRIBUTION_PROCESS_ID, else 0).", show_default=False)] = None,
        track: Annotated[str | None, typer.Option(
            "--track", metavar="mlflow", help="Log the run to MLflow (MLFLOW_TRACKING_URI, else MLflow's local "
            "store): params, tags, metrics per epoch, spec and environment.", show_default=False)] = None,
        experiment: Annotated[str | None, typer.Option(
            "--experiment", help="The MLflow experiment (default: the spec's name).", show_default=False)] = None,
        track_models: Annotated[bool, typer.Option(
            "--track-models", help="Log the best model to MLflow too.")] = False,
    ) -> None:
        """Train SPEC's model on its `data` and write a run folder (spec, environment, metrics, TensorBoard
        logs, best and last model). Ctrl-C stops after the last completed epoch; --resume continues (on the
        backend the run trained on, unless --backend says otherwise)."""
        from rich.console import Console

        from graphspec.run import distribute as dist_mod

        from graphspec.experiments import tracking

        track_opts = tracking.options(track, experiment=experiment, models=track_models)
        plan = dist_mod.plan(distribute, devices=devices, coordinator=coordinator, num_processes=num_processes,
                             process_id=process_id)
        chosen = run_backend(backend, "train", spec, resume=resume, run_dir=run_dir)
        dist_mod.check_backend(plan, chosen)
        detected = dist_mod.detected_line(plan)
        if detected is not None and plan.chief:
            err(detected)
        dist_mod.prepare(plan, chosen)  # before Keras (and JAX) is imported

        from graphspec.run import trainer as train_mod

        tracker = None
        if track_opts is not None and plan.chief:  # process 0 tracks, as it writes the run folder
            tracker = _tracker(track_opts, spec, set_, epochs, seed, model, plugin, resume, run_dir)
        try:
            result = train_mod.train(spec, sets=set_, epochs=epochs, run_dir=run_dir, resume=resume, seed=seed,
                                     model=model, plugins=plugin, runs_root=RunsRoot, check_fn=checker(data_root),
                                     force_unlock=force_unlock, backend_name=chosen, plan=plan,
                                     data_roots=[Path(r) for r in data_root or []],
                                     callbacks=None if tracker is None else [tracker.callback()])
        except BaseException as exc:
            if tracker is not None:
                tracker.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", None)
            if plan.multi_process:
                _leave_the_job(exc)
            raise
        if tracker is not None:
            tracker.finish(result.status, result.run_dir, result.test_metrics, result.epochs_done)
        if not plan.chief:
            test = ", ".join(f"{k} {v:.4f}" for k, v in (result.test_metrics or {}).items())
            err(f"process {plan.process_id}: {result.status} after {result.epochs_done} epoch{'' if result.epochs_done == 1 else 's'}"
                + (f"; test {test}" if test else "") + " (process 0 writes the run folder)")
        elif result.exit_code == 0:
            from graphspec.render.text import results_table

            Console().print(results_table(result))
            out(result.message)
        else:
            err(("error: " if result.status == "failed" else "") + result.message)
        raise typer.Exit(result.exit_code)

    def _leave_the_job(exc: BaseException) -> None:
        """Report an error of one process of a multi-process job and exit at once.

        At a normal exit JAX waits for every process to shut down together (``jax.distributed.shutdown``, up
        to 5 minutes), but a process that failed alone leaves the others blocked in the next collective, which
        waits for it: both would wait until JAX's timeout. Leaving without that barrier lets the others see
        the lost peer at once (the collective fails; `graphspec launch` stops them too)."""
        import os
        import sys

        def reraise() -> None:
            raise exc

        try:
            guarded(reraise)()  # reported as every command reports it
        except typer.Exit as done:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.exit_code)

    def _tracker(opts: Any, spec: Path, sets: list[str] | None, epochs: int | None, seed: int | None,
                 model: str | None, plugins: list[str] | None, resume: bool, run_dir: Path | None) -> Any:
        """The MLflow run of this training (the spec checked by the pure stages: params, MACs)."""
        import graphspec
        from graphspec.experiments import tracking
        from graphspec.run import folders

        spec_file = folders.resume_target(spec, run_dir, RunsRoot) / folders.SPEC if resume else spec
        all_sets = list(sets or []) + ([f"train.epochs={epochs}"] if epochs is not None else []) + (
            [f"train.seed={seed}"] if seed is not None else [])
        checked = graphspec.check(spec_file, sets=all_sets, plugins=plugins)
        if checked.spec is None or not checked.ok:  # train reports the errors; nothing to track
            return None
        return tracking.RunTracker(opts, checked, model=model, sets=all_sets, run_name=None, say=err)

    @app.command()
    @guarded
    def evaluate(
        spec_or_run: SpecOrRun,
        weights: WeightsOpt = None,
        format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
        set_: SetOpt = None,
        model: ModelOpt = None,
        plugin: PluginOpt = None,
        data_root: DataRootOpt = None,
        backend: BackendOpt = None,
    ) -> None:
        """Metrics of a trained model on the test set of its spec's data (JSON: metric name -> value)."""
        import json

        from graphspec.errors import UsageError

        if format not in {"text", "json"}:
            raise UsageError(f"--format must be text or json, got {format!r}")
        run_backend(backend, "evaluate", spec_or_run)
        from graphspec.run import inference

        metrics = inference.evaluate(spec_or_run, weights=weights, sets=set_, plugins=plugin, model=model,
                                     runs_root=RunsRoot, note=note,
                                     data_roots=[Path(r) for r in data_root or []])
        if format == "json":
            out(json.dumps(metrics, sort_keys=True))
            return
        width = max((len(k) for k in metrics), default=0)
        for k, v in metrics.items():
            out(f"{k:<{width}}  {v:.6g}")

    @app.command()
    @guarded
    def predict(
        spec_or_run: SpecOrRun,
        input: Annotated[Path, typer.Option("--input", "-i", help="An .npz file of arrays named like the "
                                            "model's inputs; for image or text data, also a file, a folder of "
                                            "them, or a manifest.")],
        output: Annotated[Path | None, typer.Option("--output", "-o", help="The .npz file to write: one array "
                                                    "per model output (for files: a CSV of one row per file, "
                                                    "unless .npz; without -o, that CSV goes to standard "
                                                    "output).")] = None,
        weights: WeightsOpt = None,
        transforms: Annotated[bool, typer.Option(
            "--transforms/--no-transforms", help="Apply the spec's input transforms (data.transforms) first.")] = True,
        batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Batch size.")] = None,
        set_: SetOpt = None,
        model: ModelOpt = None,
        plugin: PluginOpt = None,
        force: Annotated[bool, typer.Option(
            "--force", help="Replace an existing --output file even if it is not an .npz file.")] = False,
        backend: BackendOpt = None,
    ) -> None:
        """Predictions of a trained model for named input arrays, written as an .npz by output name."""
        run_backend(backend, "predict", spec_or_run)
        from graphspec.run import inference

        shapes = inference.predict(spec_or_run, input, output, weights=weights, sets=set_, plugins=plugin,
                                   model=model, runs_root=RunsRoot, transforms=transforms, batch_size=batch_size,
                                   note=note, force=force)
        if output is None:  # the CSV was the output
            return
        for name, shape in shapes.items():
            out(f"{name}: {shape}")
        out(f"wrote {output}")
