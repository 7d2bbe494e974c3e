"""TensorBoard event files without TensorFlow, for Keras's TensorBoard callback on JAX and PyTorch.

Keras's callback writes through `tensorflow.summary` (its `summary` attribute) on every backend: a JAX or
PyTorch run imported TensorFlow for a few scalars per epoch (about 2.5 s of CPU, and TensorFlow's memory and
threads), and an install without TensorFlow wrote no logs. :class:`Summary` is the part of `tf.summary` the
callback uses with per-epoch updates (`create_file_writer`, a writer's `as_default`/`flush`/`close`, `scalar`,
`record_if`), over TensorBoard's own protos, scalar summaries and record writer: the events are those
`tf.summary` writes (a v2 scalar is a float32 tensor with the "scalars" plugin's metadata), read by the same
readers.

Each event is one `write` to a file opened without following links, in a folder opened the same way: a link
planted in the run folder cannot redirect the logs (TensorFlow's writer follows paths).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_FILES = itertools.count(1)  # event files made by this process (their names must differ within a second)


def file_name(suffix: str, now: float) -> str:
    """An events file's name as TensorFlow's writers make it (TensorBoard reads a folder's files in name order),
    unique in this process."""
    return f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILES)}.{suffix}"


def records(*events: Any) -> bytes:
    """`events` (`event_pb2.Event`) as the records of an events file."""
    import io

    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for event in events:
        writer.write(event.SerializeToString())
    return buffer.getvalue()


class EventFile:
    """One events file in `logdir`, appended to event by event (what `tf.summary.create_file_writer` returns)."""

    def __init__(self, summary: Summary, logdir: str | Path) -> None:
        from tensorboard.compat.proto import event_pb2

        self._summary = summary
        self._event = event_pb2.Event
        folder = Path(logdir)
        folder.mkdir(exist_ok=True)  # in the run's checked tensorboard/ folder
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | nofollow
            self._fd: int | None = os.open(file_name("v2", time.time()), flags, 0o644, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        self._append(self._event(wall_time=time.time(), file_version="brain.Event:2"))

    def _append(self, event: Any) -> None:
        if self._fd is None:
            raise ValueError("write to a closed events file")
        os.write(self._fd, records(event))

    def write(self, value: Any, step: int) -> None:
        """Append one summary value (a `summary_pb2.Summary.Value`) at `step`."""
        from tensorboard.compat.proto import summary_pb2

        self._append(self._event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value])))

    @contextlib.contextmanager
    def as_default(self, step: Any = None) -> Iterator[EventFile]:
        self._summary._writers.append(self)
        try:
            yield self
        finally:
            self._summary._writers.pop()

    def flush(self) -> None:
        pass  # every event is written when it is made

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class Summary:
    """What Keras's TensorBoard callback calls of `tensorflow.summary` (see the module's docstring)."""

    def __init__(self) -> None:
        self._writers: list[EventFile] = []

    def create_file_writer(self, logdir: str | Path) -> EventFile:
        return EventFile(self, logdir)

    def record_if(self, condition: Any) -> contextlib.AbstractContextManager[None]:
        del condition  # per-epoch updates: every summary is recorded
        return contextlib.nullcontext()

    def scalar(self, name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
        """A v2 scalar summary to the default writer, as `tf.summary.scalar` writes it; False without a writer."""
        from tensorboard.plugins.scalar import summary_v2

        if not self._writers:
            return False
        value = float(np.asarray(data))
        (pb_value,) = summary_v2.scalar_pb(name, np.float32(value), description).value
        self._writers[-1].write(pb_value, int(np.asarray(step)) if step is not None else 0)
        return True

    def keras_model(self, name: str, model: Any, step: int = 0) -> bool:
        """The model's JSON for TensorBoard's graph plugin, as Keras's `keras_model_summary` writes it."""
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.util import tensor_util

        if not self._writers:
            return False
        try:
            text = model.to_json()
        except Exception:  # noqa: BLE001 - as Keras: a model that does not serialize gets no graph
            return False
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1"))
        value = summary_pb2.Summary.Value(tag=name, metadata=metadata,
                                          tensor=tensor_util.make_tensor_proto(text.encode()))
        self._writers[-1].write(value, step)
        return True
