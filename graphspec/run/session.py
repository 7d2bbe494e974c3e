"""A training session once its model and data are built: the run's files, `fit`, the test set, and the
result (:class:`RunResult`) with its table.

:func:`graphspec.run.trainer.train` checks and builds (:class:`graphspec.run.trainer.Trainer`), then
calls :func:`run`; a write that fails or data Keras rejects inside `fit` is raised from here and
marked in the run's state there (:mod:`graphspec.run.failures`).
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphspec.errors import GraphSpecError
from graphspec.run import artifacts, distribute, hparams
from graphspec.run.folders import (BEST, ENVIRONMENT, LAST, RESULTS, SPEC, TENSORBOARD, environment, now,
                                   resolved_spec_text)

EXIT_OK, EXIT_FAILED = 0, 1
EXIT_SIGNAL: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


class RunFailed(GraphSpecError):
    """Training stopped on a non-finite loss (exit code 1)."""


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | early_stopped | interrupted | failed
    epochs_done: int
    epochs: int
    history: list[dict[str, Any]]
    test_metrics: dict[str, float] | None
    message: str
    exit_code: int
    fit_seconds: float = 0.0
    train_samples: int = 0
    best: dict[str, Any] | None = None


def run(trainer: Any, runtime: distribute.Runtime, spec: str | Path, spec_file: Path, all_sets: list[str],
        fill: dict[str, Any]) -> RunResult:
    """Write the run's files, train, evaluate on the test set, and report: a built trainer's session
    (:class:`graphspec.run.trainer.Trainer`). TensorBoard's HParams get the session's start and end."""
    logdir = _hparams_dir(trainer, runtime)
    if logdir is not None:
        _hparams(trainer, lambda: hparams.session_start(
            logdir, {**hparams.set_values(all_sets), **hparams.model_statics(trainer.checked, trainer.model_name)},
            trial_id=trainer.run_dir.name))
    try:
        result = _run(trainer, runtime, spec, spec_file, all_sets, fill)
    except BaseException as exc:
        if logdir is not None:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            _hparams(trainer, lambda: hparams.session_end(logdir, status))
        raise
    if logdir is not None:
        _hparams(trainer, lambda: hparams.session_end(logdir, result.status))
    return result


def _hparams_dir(trainer: Any, runtime: distribute.Runtime) -> Path | None:
    """The run's TensorBoard folder, where HParams are written (process 0, `train.tensorboard`, installed)."""
    from graphspec.build import backend

    # The same test as the trainer's for the TensorBoard callback (tests replace it to hide a package).
    if not (runtime.chief and trainer.train_spec.tensorboard and backend.importable("tensorboard")):
        return None
    return Path(trainer.run_dir) / TENSORBOARD


def _hparams(trainer: Any, write: Callable[[], None]) -> None:
    try:
        write()
    except Exception as exc:  # TensorBoard is a view: the run folder is the record
        trainer.say(f"note: no TensorBoard HParams: {type(exc).__name__}: {exc}")


def _run(trainer: Any, runtime: distribute.Runtime, spec: str | Path, spec_file: Path, all_sets: list[str],
         fill: dict[str, Any]) -> RunResult:
    folder, resume, name = trainer.run_dir, trainer.resume, trainer.model_name
    folder.mkdir(parents=True, exist_ok=True)
    if not resume or all_sets or fill:
        artifacts.atomic_write_text(folder / SPEC, resolved_spec_text(spec_file, all_sets, fill))
    if not resume:
        env = environment()
        if runtime.plan.strategy is not None:
            env["distribution"] = runtime.record(trainer.data_spec.batch_size)
        artifacts.atomic_write_json(folder / ENVIRONMENT, env)
    if runtime.plan.strategy is not None and runtime.chief:
        trainer.say(distributed_line(runtime, trainer.data_spec.batch_size, len(trainer.data.train)))
    first = trainer.start()
    if not runtime.chief:
        trainer.say(f"process {runtime.plan.process_id}: training with process 0 (which writes the run folder)")
    elif resume:
        trainer.say(f"resuming {folder} at epoch {first + 1}/{trainer.epochs}")
    else:
        trainer.say(f"training `{name}` of {spec_file} -> {folder}")
    fit_seconds = 0.0
    if first < trainer.epochs and trainer.previous_status != "early_stopped":
        fit_seconds = trainer.fit(first)
    done = int(trainer.state.get("epochs_completed", 0))
    best = trainer.state.get("best")
    if runtime.plan.multi_process:
        fingerprint, same = runtime.same_weights(trainer.model.get_weights())
        trainer.say(f"process {runtime.plan.process_id}: weights {fingerprint}"
                    + ("" if same else " DIFFER from another process's"))
        if not same:
            raise RunFailed(f"the processes ended with different weights (process {runtime.plan.process_id}: "
                            f"{fingerprint}); the run folder keeps process 0's")
    if trainer.failed_epoch is not None:
        bad = {k: v for k, v in trainer.failed_logs.items() if k.endswith("loss")}
        message = (f"training stopped: the loss became non-finite in epoch {trainer.failed_epoch + 1} "
                   f"({', '.join(f'{k}={v}' for k, v in bad.items()) or 'loss=nan'}); the model after epoch "
                   f"{done} is kept in {folder / LAST}. Try a smaller learning rate.")
        trainer.write_state(status="failed", message=message)
        return RunResult(folder, "failed", done, trainer.epochs, trainer.history, None, message, EXIT_FAILED,
                         fit_seconds, len(trainer.data.train), best)
    if trainer.stop.requested and done < trainer.epochs:
        signum = trainer.stop.signum or signal.SIGINT
        message = (f"interrupted by {signal.Signals(signum).name} after epoch {done}/{trainer.epochs}; continue "
                   f"with: graphspec train {spec} --resume --run-dir {folder}")
        trainer.write_state(status="interrupted", message=message)
        return RunResult(folder, "interrupted", done, trainer.epochs, trainer.history, None, message,
                         EXIT_SIGNAL.get(signum, 130), fit_seconds, len(trainer.data.train), best)
    es = trainer.callbacks_by_name.get("early_stopping")
    stopped_early = done < trainer.epochs or (es is not None and es.stopped_epoch > 0) or (
        trainer.previous_status == "early_stopped")
    status = "early_stopped" if stopped_early else "completed"
    test = trainer.evaluate_test()
    results = {"status": status, "epochs_completed": done, "best": best,
               "weights": BEST if (folder / BEST).exists() else LAST, "test": test, "finished": now()}
    artifacts.atomic_write_json(folder / RESULTS, results)
    message = f"{'stopped early' if stopped_early else 'finished'} after {done} epoch{'' if done == 1 else 's'}; run folder: {folder}"
    trainer.write_state(status=status, message=message)
    return RunResult(folder, status, done, trainer.epochs, trainer.history, test, message, EXIT_OK, fit_seconds,
                     len(trainer.data.train), best)


def distributed_line(runtime: distribute.Runtime, batch: int, n: int) -> str:
    """What the chief prints about the distribution: replicas, global and per-replica batch."""
    p = runtime.plan
    text = (f"distributed: {p.strategy} over {runtime.replicas} replica(s) in {p.num_processes} process(es); "
            f"global batch {batch}, {batch // max(1, runtime.replicas)} per replica")
    left = runtime.shard().left_out(n, batch)
    if left:
        text += (f"; the last {left} training sample(s) of each epoch's order are left out (a step splits evenly "
                 "over the replicas)")
    return text
