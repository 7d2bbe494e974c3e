"""Atomic writes: an artifact is written next to its target and moved into place.

Killing graphspec at any moment leaves either the old file or the new one,
never a half-written file. A write that fails (a full disk, a read-only folder, an
I/O error) raises :class:`WriteError` (GS430) naming the file and the cause, and
leaves no temporary behind; the writer holds a lock on its temporary, so the
temporaries of a killed write can be told apart and removed by the next one
(:func:`graphspec.run.targets.clean_stale`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError
from graphspec.run import targets


class WriteError(SpecError):
    """A file could not be written (GS430, exit 1): the file and the cause; nothing half-written is left."""

    def __init__(self, target: Path, exc: OSError) -> None:
        self.target, self.errno = target, exc.errno
        cause = exc.strerror or str(exc) or type(exc).__name__
        hint = {errno.ENOSPC: "free some space on that file system, or write somewhere else",
                errno.EDQUOT: "free some space within your quota, or write somewhere else",
                errno.EROFS: "the file system is read-only: write somewhere else",
                errno.EACCES: "the folder is not writable: write somewhere else",
                errno.EPERM: "the folder is not writable: write somewhere else",
                errno.EIO: "the storage reported an I/O error: check the device"}.get(exc.errno or 0)
        super().__init__([Diagnostic("GS430", Severity.ERROR, f"cannot write {target.name}: {cause}",
                                     Location(str(target)), hint)])


@contextlib.contextmanager
def writing(target: Path) -> Iterator[None]:
    """Turn an OSError of writing `target` into a :class:`WriteError` naming it."""
    try:
        yield
    except OSError as exc:
        raise WriteError(target, exc) from None


def _lock(fd: int) -> None:
    """Mark a temporary as in use: :func:`graphspec.run.targets.clean_stale` leaves locked ones alone."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success, rename it onto the target.

    A folder at the target is never replaced (GS431); a failed write raises GS430 naming the target. `durable`:
    the file and the rename are flushed to the disk (fsync) before this returns. Without it the target is still
    whole at every moment for any process (the rename is atomic), but an operating-system crash may lose it:
    for files written again soon, and made durable then (a run's metrics between checkpoints, :func:`sync`).
    """
    target = Path(target)
    if target.is_dir() and not target.is_symlink():
        raise targets.refuse(target, f"{target} is a folder: graphspec writes a file there and never replaces a "
                             "folder", "name a file inside it, or a new file")
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                   suffix=suffix or target.suffix + ".tmp")
    _lock(fd)
    tmp_path = Path(tmp)
    try:
        with writing(target):
            yield tmp_path
            if durable:
                _fsync(tmp_path)
            _chmod_like(tmp_path, target)
            os.replace(tmp_path, target)
            if durable:
                _fsync_dir(target.parent)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            if tmp_path.exists():
                tmp_path.unlink()


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _chmod_like(path: Path, target: Path, *, folder: bool = False) -> None:
    """Temporary files are private (0600); give the result the target's mode, else the umask's default."""
    try:
        mode = target.stat().st_mode & 0o777 if target.exists() else (0o777 if folder else 0o666) & ~_umask()
        os.chmod(path, mode)
    except OSError:
        pass


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync(*files: Path) -> None:
    """Flush files written with `durable=False` to the disk, and their folders' entries."""
    for path in files:
        with writing(path):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for folder in {path.parent for path in files}:
        _fsync_dir(folder)


def atomic_write_text(target: str | Path, text: str, *, durable: bool = True) -> None:
    with atomic_path(target, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def save_model(model: Any, target: str | Path) -> None:
    """Save a keras.Model as `.keras` atomically (Keras needs the suffix on the temp file)."""
    target = Path(target)
    if target.suffix != ".keras":
        from graphspec.errors import UsageError

        raise UsageError(f"{target}: the .keras format needs a file name ending in .keras")
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built and model.trainable_variables:
        # An untrained model's optimizer has no state yet; building it makes the
        # file hold the same variables a loaded model's optimizer expects.
        optimizer.build(model.trainable_variables)
    with atomic_path(target, suffix=".tmp.keras") as tmp, keras_scratch(target):
        model.save(tmp)
    _keep_keras_skipsets()


@contextlib.contextmanager
def keras_scratch(target: Path) -> Iterator[Path]:
    """Keras's saver works in folders of its own in the system's temporary folder (the model's assets; a large
    model's weights), which a process killed mid-save leaves there. For the save of `target` they go to a
    temporary folder next to it instead (`.NAME.<random>.tmp`, locked while in use): removed after the save,
    and, when a kill left it, by the next write of `target` or the run's `--resume`, like the file's own
    temporary. Nothing is written outside the target's folder.

    It sets the standard library's `tempfile.tempdir` for the duration of the save: a temporary file another
    thread made in that window would land there too (graphspec's other threads, decoding and logging, make none).
    """
    with writing(target):
        folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    _lock(fd)
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def _keep_keras_skipsets() -> None:
    """Let Keras's saver reuse what it computed: a run saves a checkpoint every epoch.

    `keras.src.saving.saving_lib.get_attr_skipset` caches the attributes it skips per object type under
    ``saving_attr_skipset_<type>`` but looks them up under ``saving_attr_skiplist_<type>``, so every save
    builds throw-away layers and optimizers again (about a quarter of a small model's save). Filling the key it
    reads makes the cache hit; with a Keras that has no such keys (or fixes the names) this does nothing.
    """
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return
    tracker = getattr(global_state, "GLOBAL_STATE_TRACKER", None)
    values = getattr(tracker, "__dict__", {})
    for key, value in list(values.items()):
        if key.startswith("saving_attr_skipset_"):
            values.setdefault("saving_attr_skiplist_" + key.removeprefix("saving_attr_skipset_"), value)


# -- run artifacts (graphspec train) ------------------------------------------------------------------
def atomic_write_json(target: str | Path, value: Any, *, durable: bool = True) -> None:
    import json

    atomic_write_text(target, json.dumps(value, indent=2, sort_keys=False, default=_json_default) + "\n",
                      durable=durable)


def _json_default(value: Any) -> Any:
    import math

    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def save_npz(target: str | Path, arrays: dict[str, Any], *, force: bool = False,
             note: Callable[[str], None] | None = None) -> None:
    """Write named arrays as an .npz file, atomically; an existing file must be an .npz (or `force`)."""
    import numpy as np

    prepare_output(target, "npz", force=force, note=note)
    with atomic_path(target, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **arrays)


def link_into_place(source: str | Path, target: str | Path) -> None:
    """Make `target` the same file as `source` (a hard link, else a copy), replacing it atomically."""
    source, target = Path(source), Path(target)
    with atomic_path(target, suffix=".tmp" + target.suffix) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; on success it replaces `target` (a folder) as a whole.

    An existing target is first renamed aside, so at every moment `target` is either the complete old
    folder, absent (between two renames), or the complete new one. Callers check first that the target
    may be replaced (:func:`graphspec.run.targets.check`).
    """
    target = Path(target)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    fd = os.open(tmp, os.O_RDONLY)
    _lock(fd)
    old: Path | None = None
    try:
        with writing(target):
            yield tmp
            for path in sorted(tmp.rglob("*")):
                _fsync(path)
            _chmod_like(tmp, target, folder=True)
            if target.exists():
                old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
                os.replace(target, old / "x")
            os.replace(tmp, target)
            _fsync_dir(target.parent)
    finally:
        os.close(fd)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


EXPORT_FORMATS = ("keras", "savedmodel", "tflite", "onnx")
TF_FORMATS = ("savedmodel", "tflite")  # written by TensorFlow, from a model on any backend
_TITLES = {"savedmodel": "SavedModel", "tflite": "TFLite", "onnx": "ONNX"}
# What Keras's ONNX export needs on each backend (keras.src.export.onnx).
ONNX_NEEDS = {"tensorflow": ("onnx", "tf2onnx"), "jax": ("onnx", "jax2onnx"), "torch": ("onnx", "onnxscript")}


def export_format(target: str | Path, fmt: str | None = None) -> str:
    """The export format named by `fmt`, else by the target's suffix (.keras, .tflite, .onnx, else a SavedModel)."""
    if fmt is not None:
        fmt = fmt.lower().replace("_", "").replace("-", "")
        fmt = {"tfsavedmodel": "savedmodel", "saved": "savedmodel", "tfl": "tflite", "litert": "tflite"}.get(fmt, fmt)
        if fmt not in EXPORT_FORMATS:
            from graphspec.errors import UsageError

            raise UsageError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        return fmt
    suffix = Path(target).suffix.lower()
    return {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}.get(suffix, "savedmodel")


def tensorflow_for(fmt: str) -> None:
    """Raise a usage error naming the extra when `fmt` needs TensorFlow and it is not installed."""
    from graphspec.build import backend
    from graphspec.errors import UsageError

    if fmt in TF_FORMATS and not backend.is_installed("tensorflow"):
        raise UsageError(f"{_TITLES[fmt]} export needs TensorFlow, which is not installed: "
                         f"{backend.install_hint('tensorflow')} (the model's weights may come from any backend)")


def onnx_ready(name: str) -> None:
    """Raise a usage error naming the packages Keras's ONNX export needs on backend `name` and lacks; imports
    nothing (so `save -o m.onnx` says it before TensorFlow starts)."""
    import importlib.util

    from graphspec.errors import UsageError

    missing = [m for m in ONNX_NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"ONNX export on the {name} backend needs {' and '.join(missing)}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not installed: pip install "
                         f"'keras-graphspec[onnx]' (or pip install {' '.join(missing)})")


def _onnx(model: Any, target: Path) -> None:
    from graphspec.build import backend

    name = backend.active() or "tensorflow"
    onnx_ready(name)
    with atomic_path(target, suffix=".tmp.onnx") as tmp, backend._quiet_fd2():
        try:
            called_once(model)  # Keras exports only a model that was called (its traced input signature)
            model.export(str(tmp), format="onnx", verbose=False)
            if name == "jax":
                _fix_jax2onnx(tmp)
        except Exception as exc:  # the converters (tf2onnx, jax2onnx) raise what they like
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise SpecError([Diagnostic(
                "GS604", Severity.ERROR, f"Keras cannot export this model to ONNX on the {name} backend: "
                f"{type(exc).__name__}: {first}", Location(str(target)),
                "write a SavedModel (-o DIR) or .keras instead, or try another --backend")]) from None
        refused = _onnxruntime_refuses(tmp)
        if refused is not None:  # a file no runtime loads is not written
            raise SpecError([Diagnostic(
                "GS604", Severity.ERROR, f"Keras cannot export this model to ONNX on the {name} backend: the "
                f"converter wrote a file onnxruntime refuses: {refused}", Location(str(target)),
                "write a SavedModel (-o DIR) or .keras instead, or try another --backend")])


def _fix_jax2onnx(path: Path) -> None:
    """Rewrite jax2onnx's MaxPool chains that onnxruntime cannot run (:mod:`graphspec.run.onnx_fixups`)."""
    import onnx

    from graphspec.run.onnx_fixups import fix_maxpool_rank

    proto = onnx.load(str(path))
    if fix_maxpool_rank(proto):
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))


def _onnxruntime_refuses(path: Path) -> str | None:
    """Why onnxruntime cannot load the file (None when it can, or when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import numpy as np

    types = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int32)": "int32",
             "tensor(int64)": "int64", "tensor(bool)": "bool", "tensor(string)": object}
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        # One zero batch, sized as `called_once` sized Keras's (a variable axis: 1): some nodes load and
        # fail only when they run.
        feeds = {i.name: np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in i.shape],
                                  dtype=types.get(i.type, "float32")) for i in session.get_inputs()}
        session.run(None, feeds)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented types
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return None


def _saved_model(model: Any, folder: Path, names: list[str]) -> None:
    """Keras's SavedModel export, with the serving signature's outputs named `names` (not output_0, ...)."""
    from keras.export import ExportArchive
    from keras.src.export.export_utils import get_input_signature

    def serve(*args: Any) -> dict[str, Any]:
        y = model(*args, training=False)
        if isinstance(y, dict):
            return {str(k): v for k, v in y.items()}
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        return {(names[i] if i < len(names) else f"output_{i}"): v for i, v in enumerate(ys)}

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, get_input_signature(model))
    archive.write_out(str(folder), verbose=False)


def _name_onnx_outputs(target: Path, names: list[str]) -> None:
    """Rename the ONNX graph's outputs (tf2onnx: Identity:0, ...) to `names`, in place."""
    import onnx

    proto = onnx.load(str(target))
    graph = proto.graph
    renames = {o.name: names[i] for i, o in enumerate(graph.output) if i < len(names) and o.name != names[i]}
    taken = {v for n in graph.node for v in n.output} | {i.name for i in graph.input}
    if not renames or set(renames.values()) & (taken - set(renames)):
        return  # a name already used inside the graph: keep the converter's
    for node in graph.node:
        node.output[:] = [renames.get(v, v) for v in node.output]
        node.input[:] = [renames.get(v, v) for v in node.input]
    for out in graph.output:
        out.name = renames.get(out.name, out.name)
    atomic_write_bytes(target, proto.SerializeToString())


def called_once(model: Any) -> None:
    """Call `model` once on a zero batch of one, shaped and typed as its inputs (a variable axis: 1)."""
    import numpy as np

    from graphspec.build.backend import keras

    if getattr(model, "_called", True):
        return

    def zeros(t: Any) -> Any:
        shape = [1] + [1 if d is None else int(d) for d in t.shape[1:]]
        dtype = str(getattr(t.dtype, "name", t.dtype))
        return np.zeros(shape, dtype=object if dtype == "string" else dtype)

    model(keras.tree.map_structure(zeros, model.input), training=False)


def prepare_output(target: str | Path, kind: str, *, force: bool = False,
                   note: Callable[[str], None] | None = None) -> None:
    """Refuse a target holding something else (GS431); remove what a killed earlier write left, and say so."""
    targets.check(target, kind, force=force)
    removed = targets.clean_stale(target)
    if removed and note is not None:
        note(f"removed {len(removed)} temporary file(s) an interrupted write of {target} left: "
             + ", ".join(p.name for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))


def export_model(model: Any, target: str | Path, fmt: str | None = None, *, force: bool = False,
                 note: Callable[[str], None] | None = None, output_names: list[str] | None = None) -> str:
    """Write `model` as .keras, a TensorFlow SavedModel folder (for serving), a TFLite file or ONNX, atomically.

    SavedModel and TFLite need TensorFlow installed; Keras writes them from the TensorFlow and JAX backends.
    The target may hold only an earlier output of the same kind (else GS431, unless `force` for a
    file). Returns the format used; a note is appended when TFLite needs TensorFlow ops (the Flex delegate).
    SavedModel and ONNX name their outputs `output_names` (the spec's; default: the output layers' names),
    so a serving client reads the names the spec gives.
    """
    fmt = export_format(target, fmt)
    target = Path(target)
    prepare_output(target, fmt, force=force, note=note)
    if fmt == "keras":
        save_model(model, target)
        return fmt
    if fmt == "onnx":
        _onnx(model, target)
        _name_onnx_outputs(target, output_names or list(model.output_names))
        return fmt
    tensorflow_for(fmt)
    from graphspec.build import backend
    from graphspec.build.backend import _quiet_fd2

    if backend.active() == "torch":
        from graphspec.errors import UsageError

        raise UsageError(f"Keras writes {_TITLES[fmt]} from the tensorflow and jax backends, not torch: "
                         "run this export with --backend tensorflow (weights trained on torch load there)")
    if fmt == "savedmodel":
        with atomic_dir(target) as tmp, _quiet_fd2():
            _saved_model(model, tmp, output_names or list(model.output_names))
        return fmt
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
    with writing(target), tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.",
                                                       suffix=".tmp") as work, _quiet_fd2():
        fd = os.open(work, os.O_RDONLY)
        _lock(fd)
        try:
            content, extra = _tflite_bytes(model, Path(work) / "saved_model")
        finally:
            os.close(fd)
    atomic_write_bytes(target, content)
    return fmt + extra


def _tflite_bytes(model: Any, saved: Path) -> tuple[bytes, str]:
    """The model as a TFLite flatbuffer, through a SavedModel at `saved`; and a note on what it needs."""
    from graphspec.build.backend import _quiet_fd2

    with _quiet_fd2():  # on JAX, TensorFlow is first imported here
        import tensorflow as tf

    model.export(str(saved), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    try:
        return converter.convert(), ""
    except Exception:
        # Layers such as LSTM over variable-length inputs need TensorFlow ops in TFLite.
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter._experimental_lower_tensor_list_ops = False
        return converter.convert(), " (uses TensorFlow ops: run it with the Flex delegate)"
