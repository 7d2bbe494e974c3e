"""Shared test set-up: quiet TensorFlow, deterministic seeds, spec paths."""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests run on the CPU everywhere

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
PLUGIN = SPECS / "plugins" / "custom_dense.py"


@pytest.fixture
def specs_dir() -> Path:
    return SPECS


_FROZEN: list[bool] = []


def clear_keras(keras: Any) -> None:
    """Keras's names and graphs reset, as in a new process, without `clear_session`'s full garbage collection.

    That collection walks every object of the process (TensorFlow's, JAX's, every module's) and cost about 0.22 s
    a call, twice for every test that builds a model: 40 of the 122 s of test_applications.py and test_import.py.
    Python's own collector still frees the tests' models. The first time, the heap as it stands (the backends and
    modules imported so far) is moved out of the collector's sight (`gc.freeze`), so that its automatic full
    collections walk only what the tests made since."""
    import gc

    keras.backend.clear_session(free_memory=False)
    if not _FROZEN:
        _FROZEN.append(True)
        gc.collect()
        gc.freeze()


@pytest.fixture
def keras_clean():
    """A fresh Keras state (names, seeds) for tests that build models."""
    from graphspec.build.backend import keras

    clear_keras(keras)
    keras.utils.set_random_seed(0)
    yield keras
    clear_keras(keras)


@pytest.fixture
def keras_unweighted(keras_clean: Any) -> Any:
    """keras_clean, where the models the test builds get variables without values.

    For tests that read what a built model is (layers, shapes, parameter counts, kernel sizes), never what its
    weights hold. It is Keras's own deferred initialisation (a `StatelessScope` that does not initialise on exit,
    how Keras builds a model whose variables are laid out later): every layer is built and called by Keras's
    code, and each variable has its shape, dtype and path, but no backend variable is made. Making 1,544
    TensorFlow variables was two thirds of building NASNetLarge (2.9 s with zeros drawn, 0.95 s without). A
    value read anyway is the initializer's output, made on the spot."""
    from graphspec.build.backend import variables_without_values

    with variables_without_values():
        yield keras_clean


# -- `graphspec ARGS...` in this process ---------------------------------------------------------------------------
@dataclass
class CliResult:
    """What a run of the command line gave: read like subprocess.CompletedProcess (returncode, stdout, stderr)."""

    returncode: int
    stdout: str
    stderr: str


def graphspec_cli(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """`graphspec ARGS...` run in this process with Typer's CliRunner: no interpreter or backend start-up.

    For every test that is not about the process itself (signals, exit codes as the OS sees them, start-up and
    import blocking, another Keras backend, several processes). `env` is added to os.environ for the call and
    `cwd` is the working folder for it; both are restored afterwards. An exception that is not the command's exit
    is raised here (the command line would have printed GS900). Keras's global state (names, graphs) is cleared
    afterwards, as a new process would start it.
    """
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        if cwd is not None:
            mp.chdir(cwd)
        result = CliRunner().invoke(app, [str(a) for a in args], prog_name="graphspec")
    if "keras" in sys.modules:
        clear_keras(sys.modules["keras"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


# -- CI cannot go green by skipping ------------------------------------------------------------------------------
# With GRAPHSPEC_STRICT_SKIPS=1 (.ci/run sets it), a skip whose reason is not in tests/allowed_skips.txt fails
# the session: a dependency that did not install, or a server that did not start, is a failure, not a skip.
_SKIPS: list[tuple[str, str]] = []


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPS.append((report.nodeid, _skip_reason(report)))


def unexpected_skips(skips: list[tuple[str, str]], allowed_file: Path) -> list[tuple[str, str]]:
    """The skips whose reason matches no pattern of the allow-list."""
    import re

    patterns = [re.compile(line) for line in allowed_file.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    return [(node, why) for node, why in skips if not any(p.search(why) for p in patterns)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("GRAPHSPEC_STRICT_SKIPS") != "1":
        return
    bad = unexpected_skips(_SKIPS, Path(__file__).with_name("allowed_skips.txt"))
    if bad:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"{len(bad)} skip(s) not on tests/allowed_skips.txt (GRAPHSPEC_STRICT_SKIPS=1):"]
        lines += [f"  {node}: {why}" for node, why in bad]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def example_data() -> Path:
    """specs/data/shapes, the images specs/resnet.yaml reads (generated as `make train` does, when missing).

    Made before any test, so that every test sees the example specs' data the same way, whichever worker made it
    and whenever: a test that lints specs/ while another worker makes the folder would see it missing, then there."""
    folder = SPECS / "data" / "shapes"
    folder.parent.mkdir(exist_ok=True)
    with open(folder.parent / ".shapes.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several test workers: one makes the images, the others wait for them
        if not folder.is_dir():
            subprocess.run([sys.executable, str(ROOT / "tools" / "make_shapes.py"), "--out", str(folder)],
                           check=True, capture_output=True)
    return folder


# -- JAX compiles a program once per test run ---------------------------------------------------------------------
# The environment that points a JAX process at this session's compilation cache (filled by the fixture below).
JAX_CACHE: dict[str, str] = {}


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One persistent JAX compilation cache for the JAX processes tests start (`**JAX_CACHE` in their environment):
    they compile the same programs (a spec trained, then resumed, then evaluated; a sweep's trials; the processes
    of a distributed job; the same models built on two backends), which XLA then compiles once, not once per
    process. It lives in pytest's cache folder (.pytest_cache/d/jax-compilation: kept between test runs, shared by
    the workers of `pytest -n`), in a temporary folder of the session without the cache plugin. The cache's key is
    the program and the JAX/XLA versions, so a hit runs what a compile would have produced. A size limit turns on
    JAX's eviction and, with it, its file lock around every read and write: processes running side by side never
    read an entry half written. Not put in os.environ: a process with TensorFlow blocked cannot read it
    (etils.epath probes for TensorFlow, which the blocker makes an error)."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("jax-compilation") if cache is not None else tmp_path_factory.mktemp("jax-cache")
    JAX_CACHE.update(JAX_COMPILATION_CACHE_DIR=str(folder), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    if importlib.util.find_spec("filelock") is not None:  # JAX's lock; without it, JAX refuses a size limit
        JAX_CACHE["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(1 << 30)
    yield folder
    JAX_CACHE.clear()


# -- processes started with the session, beside the tests before theirs ------------------------------------------
# In a single test process (pytest without `-n`: a file or a test run by hand; `make test` runs two workers, which
# start none): a test whose whole work is one process that depends on nothing else this session does starts it
# with the session's first test: on 2 cores it runs beside the in-process tests before its own (model building
# in this process keeps about one core busy), and its test then reads what the process wrote. The process is the same
# command with the same checks; only when it runs changes. Test node id (its end) -> "module:function", a
# function(folder) that starts the process (tests.test_backends.graphspec_started), or returns None when the
# test will skip.
EARLY: dict[str, str] = {
    "test_onnx.py::test_onnxruntime_equals_predict_on_jax": "tests.test_onnx:start_jax_side",
    "test_backends_run.py::test_digits_trains_on_jax_without_tensorflow": "tests.test_backends_run:start_digits",
    "test_grain_feed.py::test_fit_gets_a_grain_dataset_in_epoch_order_and_a_resume_reads_the_same_stream[jax]":
        "tests.test_grain_feed:start_script",
    "test_grain_feed.py::test_fit_gets_a_grain_dataset_in_epoch_order_and_a_resume_reads_the_same_stream[torch]":
        "tests.test_grain_feed:start_torch_script",
    "test_sources_images.py::test_a_lean_jax_install_trains_on_an_image_folder_without_tensorflow":
        "tests.test_sources_images:start_lean_jax",
    "test_sources_columns.py::test_parquet_feather_and_huggingface_train_on_jax_and_pytorch[jax]":
        "tests.test_sources_columns:start_columns",
    "test_sources_columns.py::test_parquet_feather_and_huggingface_train_on_jax_and_pytorch[torch]":
        "tests.test_sources_columns:start_torch_columns",
    "test_step_tracking.py::test_jax_steps_run_untracked_and_train_the_same": "tests.test_step_tracking:start_script",
    "test_checkpoints.py::test_on_jax_an_epoch_written_later_is_the_epoch": "tests.test_checkpoints:start_jax",
    "test_quality.py::test_mypy_is_clean": "tests.test_quality:start_mypy",
    "test_quality.py::test_no_dead_code": "tests.test_quality:start_vulture",
    "test_quality.py::test_import_contracts_hold": "tests.test_quality:start_import_linter",
}


@dataclass
class Started:
    """A process started early: its folder (stdout and stderr are files there) and the process."""

    folder: Path
    proc: subprocess.Popen[str]

    def result(self, timeout: float = 600) -> CliResult:
        self.proc.wait(timeout=timeout)
        read = lambda name: (self.folder / name).read_text(encoding="utf-8", errors="replace")  # noqa: E731
        return CliResult(self.proc.returncode, read("stdout"), read("stderr"))


@pytest.fixture(scope="session", autouse=True)
def early_processes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[dict[str, Started]]:
    """The EARLY processes of the selected tests, started now."""
    started: dict[str, Started] = {}
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # In a worker of `pytest -n N` (make test): the workers already run tests side by side, and a worker
        # cannot tell which of the selected tests it will be given.
        yield started
        return
    selected = [item.nodeid for item in request.session.items]
    for key, where in EARLY.items():
        if any(node.endswith(key) for node in selected):
            module, function = where.split(":")
            try:
                start: Callable[[Path], subprocess.Popen[str] | None] = getattr(importlib.import_module(module),
                                                                                 function)
            except pytest.skip.Exception:  # the module skips (a missing dependency): so will the test
                continue
            folder = tmp_path_factory.mktemp("early")
            proc = start(folder)
            if proc is not None:
                started[key] = Started(folder, proc)
    yield started
    for process in started.values():  # a test that did not wait for its process (it failed, or the run stopped)
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def started_early(processes: dict[str, Started], key: str, tmp_path: Path,
                  start: Callable[[Path], subprocess.Popen[str] | None]) -> Started:
    """The test's EARLY process, or (a session that did not start it) the same process started now."""
    if key in processes:
        return processes.pop(key)
    proc = start(tmp_path)
    assert proc is not None, f"{key}: its process could not start"
    return Started(tmp_path, proc)
