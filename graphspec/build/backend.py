"""Choosing the Keras backend (TensorFlow, JAX or PyTorch) and importing Keras on it, once, quietly.

Keras reads ``KERAS_BACKEND`` when it is first imported, and a process keeps that backend for
good. So the order is always: :func:`select` (sets ``KERAS_BACKEND``), then :func:`load` (imports
Keras). Every command that builds or runs a model calls :func:`select` first, before anything
under ``graphspec.build`` / ``graphspec.run`` imports Keras; :func:`load` selects the default
itself when nothing was selected. The choice, in order:

1. the backend asked for (``--backend``);
2. the backend a run folder recorded (``--resume``, ``evaluate`` / ``predict`` of a run);
3. ``KERAS_BACKEND``;
4. the first installed of tensorflow, jax, torch.

A backend that is missing is a usage error naming the extra that installs it
(``pip install 'keras-graphspec[jax]'``), never a traceback. Nothing here imports a backend
until :func:`load`: :func:`installed` only looks for the packages.

TensorFlow writes log lines straight to file descriptor 2 while it loads and while it looks
for GPUs; for a command-line tool that is noise around the real output, so the import happens
with descriptor 2 pointed at /dev/null. Set GRAPHSPEC_TF_LOGS=1 to see them. Use Keras as
``from graphspec.build.backend import keras``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from graphspec.errors import UsageError

BACKENDS = ("tensorflow", "jax", "torch")
DISTRIBUTION = "keras-graphspec"
_MODULE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
_TITLE = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
# What building a model needs besides the backend (the extras also bring scikit-learn, for its datasets).
_COMMON = ("keras", "numpy")

_selected: str | None = None


def install_hint(name: str | None = None) -> str:
    """The pip command that installs a backend (or, without a name, any of them)."""
    if name is None:
        return f"pip install '{DISTRIBUTION}[tensorflow]' (or [jax], [torch])"
    return f"pip install '{DISTRIBUTION}[{name}]'"


def importable(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    return _present(module)


def _present(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed() -> list[str]:
    """The backends whose package is installed, in the order of preference."""
    return [b for b in BACKENDS if _present(_MODULE[b])]


def is_installed(name: str) -> bool:
    return _present(_MODULE[name])


def _loaded_backend() -> str | None:
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return str(keras.backend.backend())
    except AttributeError:  # a partially imported module
        return None


def active() -> str | None:
    """The backend Keras runs on in this process (or will, once loaded); None before any choice."""
    return _loaded_backend() or _selected


def _check_name(name: str, source: str) -> str:
    name = name.strip().lower()
    aliases = {"tf": "tensorflow", "pytorch": "torch"}
    name = aliases.get(name, name)
    if name not in BACKENDS:
        raise UsageError(f"{source}: unknown Keras backend {name!r}; graphspec runs on "
                         + ", ".join(BACKENDS))
    return name


def require(command: str = "this command", wanted: str | None = None) -> list[str]:
    """The installed backends; a usage error naming the extra (`wanted`'s, else any) if Keras or every
    backend is missing."""
    missing = [m for m in _COMMON if not _present(m)]
    available = installed()
    if missing or not available:
        what = ("Keras and a backend (TensorFlow, JAX or PyTorch), which are not installed" if missing else
                "a Keras backend (TensorFlow, JAX or PyTorch), and none is installed")
        hint = install_hint(wanted if wanted in BACKENDS else None)
        raise UsageError(f"`graphspec {command}` needs {what}: {hint}")
    return available


def choose(requested: str | None = None, *, recorded: str | None = None, command: str = "this command",
           note: Callable[[str], None] | None = None) -> str:
    """The backend a command runs on (see the module docstring); raises UsageError if it is missing.

    Nothing is imported or set: :func:`select` applies the choice.
    """
    env = os.environ.get("KERAS_BACKEND", "").strip()
    wanted = [n.strip().lower() for n in (requested, recorded, env) if n]
    available = require(command, wanted[0] if wanted else None)
    if requested:
        name, source = _check_name(requested, "--backend"), f"--backend {requested}"
    elif recorded:
        name, source = _check_name(recorded, "the run folder"), f"the run was trained on {recorded}"
        if env and env.lower() != name and note is not None:
            note(f"using {name}, the backend the run was trained on (KERAS_BACKEND={env} is not used; "
                 "pass --backend to change it)")
    elif env:
        name, source = _check_name(env, f"KERAS_BACKEND={env}"), f"KERAS_BACKEND={env}"
    else:
        return available[0]
    if name not in available:
        others = ", ".join(available)
        raise UsageError(f"{source}, but {_TITLE[name]} is not installed: {install_hint(name)} "
                         f"(installed: {others}; choose one with --backend)")
    return name


def select(requested: str | None = None, *, recorded: str | None = None, command: str = "this command",
           note: Callable[[str], None] | None = None) -> str:
    """Choose the backend and set ``KERAS_BACKEND`` for it; call before anything imports Keras.

    Once Keras is imported in this process its backend is fixed: asking for another one then is a
    usage error (a process has one Keras backend; run another process).
    """
    global _selected
    loaded = _loaded_backend()
    if loaded is not None:
        if requested and _check_name(requested, "--backend") != loaded:
            raise UsageError(f"--backend {requested}: Keras is already running on {loaded} in this process "
                             "(a process has one Keras backend)")
        _selected = loaded
        return loaded
    name = choose(requested, recorded=recorded, command=command, note=note)
    os.environ["KERAS_BACKEND"] = name
    _selected = name
    return name


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    if os.environ.get("GRAPHSPEC_TF_LOGS") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load() -> Any:
    """The keras module on the selected backend (the default one if none was selected), imported quietly."""
    if "keras" in sys.modules and _loaded_backend() is not None:
        return sys.modules["keras"]
    name = _selected or select()
    os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _quiet_fd2():
            import keras as _keras

            if name == "tensorflow":
                import tensorflow as tf

                try:
                    tf.config.list_physical_devices()
                except Exception:  # device discovery problems surface later, when used
                    pass
    except ImportError as exc:
        raise UsageError(f"Keras cannot be imported on {name} ({exc}): {install_hint(name)}") from None
    if _keras.backend.backend() != name:  # pragma: no cover - Keras ignored KERAS_BACKEND
        raise UsageError(f"Keras loaded the {_keras.backend.backend()} backend, not {name}")
    if name != "tensorflow":
        _tensorflow_only_when_loaded()
    return _keras


class _LoadedTensorFlow:
    """Keras's lazy `tensorflow` module, `available` only once TensorFlow is loaded.

    Keras's serializer asks `tf.available and isinstance(obj, tf.TensorShape)` of every object it saves, and
    `available` imports TensorFlow where it is installed: every `model.save` of a JAX or PyTorch run paid
    TensorFlow's start-up (about 2.5 s of CPU). An object can only be a TensorFlow one once TensorFlow is
    loaded, so the answer is the same; everything else is the lazy module's.
    """

    def __init__(self, lazy: Any) -> None:
        self._lazy = lazy

    @property
    def available(self) -> bool:
        return "tensorflow" in sys.modules and bool(self._lazy.available)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lazy, name)


def _tensorflow_only_when_loaded() -> None:
    try:
        from keras.src.saving import serialization_lib
    except ImportError:  # pragma: no cover - another Keras layout: it keeps its own behaviour
        return
    lazy = getattr(serialization_lib, "tf", None)
    if lazy is not None and not isinstance(lazy, _LoadedTensorFlow) and hasattr(type(lazy), "available"):
        serialization_lib.tf = _LoadedTensorFlow(lazy)


def make_deterministic() -> None:
    """Deterministic kernels on the loaded backend (``train.deterministic``).

    TensorFlow: op determinism. PyTorch: deterministic algorithms. JAX on a CPU is deterministic
    already; on a GPU it needs XLA's deterministic ops, an XLA flag read when JAX starts its
    backend, so it is set here before the first computation (a no-op once JAX has started).
    """
    name = active()
    if name == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif name == "torch":
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    elif name == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_deterministic_ops=true").strip()


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed`, without importing TensorFlow into a JAX or PyTorch process.

    Keras's own seeds Python, NumPy, its global seed generator, PyTorch on torch, and TensorFlow wherever it
    is installed (for `tf.data` shuffles), which costs a JAX or PyTorch process TensorFlow's start-up: about
    2.5 s of CPU. graphspec draws every data order and augmentation from (seed, epoch) itself, so TensorFlow's
    global seed matters only to TensorFlow code: it is set on the TensorFlow backend, or where TensorFlow is
    already loaded, and otherwise by Keras when TensorFlow ends up imported later (TensorBoard, tfrecord).
    """
    keras = load()
    if active() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    # The same state as keras.utils.set_random_seed leaves (keras/src/utils/rng_utils.py), less TensorFlow's.
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if active() == "torch":
        import torch

        torch.manual_seed(seed)


@contextlib.contextmanager
def variables_without_values() -> Iterator[None]:
    """Keras variables made in here get their shape, dtype and path but no value (nor a backend variable): Keras's
    own deferred initialisation, a `StatelessScope` that does not initialise them on exit. For models that are
    read, never run (see graphspec.compiler.build's `values`). A value read anyway is drawn on the spot."""
    load()
    from keras.src.backend.common.stateless_scope import StatelessScope

    with StatelessScope(initialize_variables=False):
        yield


@contextlib.contextmanager
def forgetting_custom_gradients() -> Iterator[None]:
    """On TensorFlow, drop the custom gradients registered in here when it ends.

    Each `@tf.custom_gradient` traced in graph mode (a Keras train step is traced once per model) adds a
    `CustomGradient-N` entry to TensorFlow's global gradient registry. The entry holds the traced FuncGraph,
    and nothing ever removes it (tensorflow/tensorflow#97697). So every model trained in a process stays in
    memory: about 4,000 objects and 10 MB for a small MLP, even after `clear_session()`. A sweep worker trains
    trial after trial in one process.

    The gradient of a traced function is built while it is traced, so once the training is over the entries it
    added are not needed again. A retrace registers new ones. Entries made before this block are kept.
    Training runs one at a time in a process: an entry another thread registers while this block runs would be
    dropped with the rest."""
    registry = _gradient_registry()
    before = set(registry) if registry is not None else set()  # TensorFlow not imported yet: none to keep
    try:
        yield
    finally:
        registry = _gradient_registry()
        if registry is not None:
            for name in [k for k in registry if k not in before and str(k).startswith("CustomGradient-")]:
                registry.pop(name, None)


def _gradient_registry() -> dict[Any, Any] | None:
    """TensorFlow's gradient registry, if TensorFlow is imported (and has one where 2.x keeps it)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.framework import ops
    except ImportError:
        return None
    registry = getattr(getattr(ops, "gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def devices() -> list[str]:
    """The devices the loaded backend sees (names as the backend gives them). A backend that fails to list
    them raises: a run folder that records no devices would hide the fault (a broken CUDA set-up, say)."""
    name = active()
    if name == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices()]
    if name == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    if name == "torch":
        import torch

        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return found
    return []


def __getattr__(name: str) -> Any:
    # `from graphspec.build.backend import keras` imports Keras on first use, quietly.
    if name == "keras":
        return load()
    raise AttributeError(name)


# Keras walks a functional graph recursively (keras/src/ops/function.py, `_build_map_helper`):
# one Python frame per layer on a chain, so Python's default limit of 1,000 stops a
# 1,000-layer chain that lint accepts. The limit is raised to what the graph needs, for the
# duration of the work only; Python 3.11 keeps these Python-to-Python frames off the C stack.
FRAMES_PER_NODE = 8
RECURSION_CEILING = 1_000_000


@contextlib.contextmanager
def deep_graphs(nodes: int) -> Iterator[None]:
    """Let Keras build, compile, train or save a graph of `nodes` layers without a RecursionError."""
    old = sys.getrecursionlimit()
    need = min(RECURSION_CEILING, old + FRAMES_PER_NODE * nodes)
    if need > old:
        sys.setrecursionlimit(need)
    try:
        yield
    finally:
        if need > old:
            sys.setrecursionlimit(old)

