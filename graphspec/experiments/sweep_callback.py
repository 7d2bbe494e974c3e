"""The Keras callback of a sweep's trial: each completed epoch's objective goes to Optuna, whose pruner may stop
the run (imported only where a trial trains: it loads Keras)."""

from __future__ import annotations

import os
from typing import Any

from graphspec.build.backend import keras
from graphspec.experiments.sweep_plan import metric_value


class TrialReport(keras.callbacks.Callback):
    """Reports the objective after each completed epoch and stops the run when Optuna's pruner says so."""

    def __init__(self, trial: Any, metric: str, stop: Any) -> None:
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.stop = stop
        self.pruned_at: int | None = None

    def on_train_begin(self, logs: Any = None) -> None:
        # A signal that reached the worker before fit: hand it to the trainer's own handler, now installed,
        # so that the run ends as interrupted (resumable) rather than trained to the end.
        if self.stop.signum is not None:
            os.kill(os.getpid(), self.stop.signum)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.model.stop_training:  # the trainer stopped: a non-finite loss or an interrupted epoch
            return
        value = metric_value(dict(logs or {}), self.metric)
        if value is None:
            return
        self.trial.report(value, epoch + 1)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True
