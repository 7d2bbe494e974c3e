"""Walks tests/hostile/: hostile inputs and faults end in a located message, never in harm.

See tests/hostile/README.md for the case format. Each case runs graphspec in a
subprocess, so that a crash, a hang or a memory blow-up is measured, not suffered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import signal
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

HOSTILE = Path(__file__).resolve().parent / "hostile"
FAULTS = Path(__file__).resolve().parent / "faults"  # a sitecustomize that injects write errors
SECRET = "API_KEY=sk-live-4f1d9e0c7b2a"
ALWAYS_REJECT = [r"Traceback \(most recent call last\)", re.escape(SECRET), r"GS900"]

# Generators write large or special files that are not worth committing.
GENERATORS: dict[str, Callable[[Path], None]] = {}
# Checks look at the working folder after the run (what was written, what was kept).
CHECKS: dict[str, Callable[[Path], None]] = {}


def generator(fn: Callable[[Path], None]) -> Callable[[Path], None]:
    GENERATORS[fn.__name__] = fn
    return fn


@generator
def fifo_vocabulary(work: Path) -> None:
    os.mkfifo(work / "vocab.fifo")


@generator
def symlink_vocabulary(work: Path) -> None:
    (work / "vocab.txt").symlink_to(work.parent / "outside" / ".env")


@generator
def variable_chain(work: Path) -> None:
    # Each variable is defined by the next one, so they are resolved last to first.
    lines = ["graphspec: 1", "name: chain", "vars:"]
    lines += [f"  v{i}: ${{v{i + 1}}}" for i in range(3000)] + ["  v3000: 2"]
    lines += ["inputs:", "  x: [4]", "nodes:", "  d: {type: Dense, units: $v0}"]
    (work / "spec.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@generator
def big_block(work: Path) -> None:
    lines = ["graphspec: 1", "name: big", "vars: {u: 4, a: relu, b: true}", "inputs:", "  x: [4]",
             "blocks:", "  wide:", "    inputs: x", "    params: {u: 4}", "    nodes:"]
    lines += [f"      n{i}: {{type: Dense, units: '${{u}}', activation: '${{a}}', use_bias: '${{b}}', "
              f"trainable: '${{b}}'}}" for i in range(9990)]
    lines += ["nodes:", "  body: {block: wide}"]
    (work / "spec.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@generator
def deep_set(work: Path) -> None:
    (work / "set.txt").write_text(".".join(["a"] * 3000) + "=1", encoding="utf-8")


@generator
def deep_plugin(work: Path) -> None:
    canary = "import os\nopen(os.environ['GRAPHSPEC_CANARY'], 'w').close()\n"
    expression = "+".join(["1"] * 200_000)
    (work / "deep_plugin.py").write_text(f"{canary}X = {expression}\n", encoding="utf-8")


@generator
def long_chain(work: Path) -> None:
    lines = ["graphspec: 1", "name: long", "inputs:", "  x: [4]", "nodes:"]
    lines += [f"  n{i}: {{type: Dense, units: 4}}" for i in range(3000)]
    (work / "spec.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@generator
def long_type_name(work: Path) -> None:
    spec = "graphspec: 1\nname: t\ninputs:\n  x: [4]\nnodes:\n  d: {type: " + "A" * 900_000 + ", units: 2}\n"
    (work / "spec.yaml").write_text(spec, encoding="utf-8")


@generator
def config_above_the_folder(work: Path) -> None:
    """A pyproject.toml in the folder above work/ (no repository there) naming a payload and `/` as data root."""
    (work.parent / "pyproject.toml").write_text(
        '[tool.graphspec]\nplugins = ["work/payload.py"]\ndata_roots = ["/"]\n', encoding="utf-8")


@generator
def config_writable_by_others(work: Path) -> None:
    """work/ is a repository whose pyproject.toml everyone may write."""
    (work / ".git").mkdir()
    (work / "pyproject.toml").chmod(0o666)


@generator
def spec_links_outside(work: Path) -> None:
    """spec.yaml: a link to the secret outside; linked/: a link to the folder outside."""
    (work / "spec.yaml").symlink_to(work.parent / "outside" / ".env")
    (work / "linked").symlink_to(work.parent / "outside")


def _outside(work: Path) -> Path:
    return work.parent / "outside"


@generator
def claim_links_outside(work: Path) -> None:
    """run/.claim: a link to the secret outside (a claim opened through it would truncate it)."""
    (work / "run").mkdir(exist_ok=True)
    (work / "run" / ".claim").symlink_to(_outside(work) / ".env")


@generator
def checkpoints_link_outside(work: Path) -> None:
    """run/checkpoints: a link to the folder outside, which holds what looks like a killed write's temporary."""
    (work / "run" / "checkpoints").symlink_to(_outside(work))
    stale = _outside(work) / ".epoch-0001.keras.k2j4.tmp"
    stale.mkdir()
    (stale / "notes.txt").write_text("kept\n")


@generator
def tensorboard_link_outside(work: Path) -> None:
    """run/tensorboard: a link to the folder outside."""
    (work / "run").mkdir(exist_ok=True)
    (work / "run" / "tensorboard").symlink_to(_outside(work))


@generator
def tensorboard_train_link_outside(work: Path) -> None:
    """run/tensorboard/train (where Keras writes the training events): a link to the folder outside."""
    (work / "run" / "tensorboard").mkdir(parents=True)
    (work / "run" / "tensorboard" / "train").symlink_to(_outside(work))


@generator
def sweep_folder_links_outside(work: Path) -> None:
    """sw/trial-0000: a link to the folder outside."""
    (work / "sw").mkdir()
    (work / "sw" / "trial-0000").symlink_to(_outside(work))


def after(fn: Callable[[Path], None]) -> Callable[[Path], None]:
    CHECKS[fn.__name__] = fn
    return fn


def _cases() -> list[Any]:
    out = []
    for folder in sorted(p for p in HOSTILE.iterdir() if (p / "case.yaml").is_file()):
        case = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
        marks = [pytest.mark.keras] if case.get("keras") else []
        if case.get("slow"):
            marks.append(pytest.mark.slow)
        out.append(pytest.param(folder, case, id=folder.name, marks=marks))
    return out


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _prepare(folder: Path, tmp: Path) -> tuple[Path, Path]:
    work, outside = tmp / "work", tmp / "outside"
    outside.mkdir()
    (outside / ".env").write_text(SECRET + "\n")
    (outside / "secrets.csv").write_text(f"{SECRET},1\n1,2\n")
    shutil.copytree(folder, work, ignore=shutil.ignore_patterns("case.yaml"))
    for p in work.rglob("*"):
        if p.is_file() and p.suffix in {".yaml", ".yml", ".json", ".py", ".csv", ".txt"}:
            text = p.read_text(encoding="utf-8", errors="surrogateescape")
            if "@OUTSIDE@" in text:
                p.write_text(text.replace("@OUTSIDE@", str(outside)), encoding="utf-8", errors="surrogateescape")
    return work, outside


def _arg(text: str, work: Path, outside: Path) -> str:
    """An argument of the case: `@ARG:name@` is the content of a (generated) file of the case."""
    m = re.fullmatch(r"@ARG:(.+)@", text)
    if m:
        return (work / m.group(1)).read_text(encoding="utf-8").strip()
    return text.replace("@OUTSIDE@", str(outside))


# A small launcher runs graphspec and reports the peak RSS of that child alone. Measuring the child of
# pytest directly would count pytest's own pages (a forked child starts with its parent's resident set).
_LAUNCHER = (
    "import os, resource, subprocess, sys\n"
    "code = subprocess.call([sys.executable, '-m', 'graphspec', *sys.argv[2:]])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, rss_file: Path) -> tuple[int, str, int]:
    """Exit code, output and peak RSS (KiB) of one graphspec run."""
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(rss_file), *argv], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"still running after {timeout} s:\n{output.decode(errors='replace')[-3000:]}")
    rss = int(rss_file.read_text()) if rss_file.exists() else 0
    return proc.returncode, output.decode("utf-8", errors="replace"), rss


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make `folder` read-only for the run: chmod for a normal user; for root (whom modes do not stop), a
    read-only tmpfs mounted over it. Skips the case where neither is possible."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("running as root without the right to mount a read-only file system")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@dataclasses.dataclass
class _Outcome:
    """What one case's run gave: the process's exit code, output and peak RSS, and the state around it."""

    work: Path
    canary: Path
    outside_before: str
    outside_after: str
    kept: dict[str, str]
    argv: list[str]
    code: int
    output: str
    rss_kib: int


def _play(folder: Path, case: dict[str, Any], tmp_path: Path) -> _Outcome:
    """Prepare the case in `tmp_path`, run its command in a process, and record what it did (no assertion)."""
    work, outside = _prepare(folder, tmp_path)
    if case.get("generate"):
        GENERATORS[case["generate"]](work)
    canary = tmp_path / "canary"
    before = _digest(outside)
    kept = {p: _digest_file(work / p) for p in case.get("keep", [])}
    env = {**os.environ, "GRAPHSPEC_CANARY": str(canary), "NO_COLOR": "1", "COLUMNS": "200"}
    env.update({k: str(v).replace("@OUTSIDE@", str(outside)) for k, v in (case.get("env") or {}).items()})
    if case.get("fault"):  # ERRNO:PATTERN, see tests/faults/sitecustomize.py
        env["GRAPHSPEC_FAULT"] = case["fault"]
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAULTS), env.get("PYTHONPATH", "")) if p)
    argv = [_arg(str(a), work, outside) for a in case["argv"]]
    with _read_only(work / case["read_only"]) if case.get("read_only") else contextlib.nullcontext():
        code, output, rss_kib = _run(argv, work, env, float(case.get("timeout", 120)), tmp_path / "rss")
    return _Outcome(work, canary, before, _digest(outside), kept, argv, code, output, rss_kib)


# The cases are independent processes, each in its own folders: the selected ones run two at a time (a process
# mostly waits on its own imports, single-threaded), and each test asserts on its own case's outcome. A case's
# time limit, peak RSS (its own process tree's) and output are measured as when it ran alone.
_PARALLEL = 2


@pytest.fixture(scope="module")
def played(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The selected cases of this run (after -k / -m), in the tests' order, started on a pool when the first one
    is needed: case id -> future of its _Outcome (an exception of the case, a skip included, is its test's)."""
    import concurrent.futures

    chosen = [item.callspec for item in request.session.items if getattr(item, "function", None) is test_hostile_case]
    futures: dict[str, Any] = {}
    with concurrent.futures.ThreadPoolExecutor(_PARALLEL) as pool:
        for spec in chosen:
            folder, case = spec.params["folder"], spec.params["case"]
            futures[spec.id] = pool.submit(_play, folder, case, tmp_path_factory.mktemp(spec.id[:40]))
        yield futures


@pytest.mark.parametrize(("folder", "case"), _cases())
def test_hostile_case(folder: Path, case: dict[str, Any], played: dict[str, Any],
                      request: pytest.FixtureRequest) -> None:
    outcome: _Outcome = played[request.node.callspec.id].result()
    work, code, output, rss_kib = outcome.work, outcome.code, outcome.output, outcome.rss_kib
    argv = outcome.argv
    shown = f"$ graphspec {' '.join(a if len(a) < 200 else a[:200] + '...' for a in argv)}\n{output[-4000:]}"
    assert len(output) <= float(case.get("max_output_kb", 200)) * 1024, f"{len(output):,} characters of output"
    assert code == case["exit"], f"exit {code}, expected {case['exit']}\n{shown}"
    for pattern in case.get("expect", []):
        assert re.search(pattern, output), f"no match for {pattern!r}\n{shown}"
    for pattern in ALWAYS_REJECT + list(case.get("reject", [])):
        assert not re.search(pattern, output), f"unexpected {pattern!r}\n{shown}"
    assert not outcome.canary.exists(), f"the payload ran\n{shown}"
    assert outcome.outside_after == outcome.outside_before, "a file outside the working folder was changed"
    assert rss_kib / 1024 < float(case.get("max_rss_mb", 2500)), f"peak RSS {rss_kib / 1024:.0f} MiB\n{shown}"
    for path, digest in outcome.kept.items():
        assert _digest_file(work / path) == digest, f"{path} was changed or removed\n{shown}"
    if case.get("check"):
        CHECKS[case["check"]](work)


def _digest_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


# -- generators and checks of the run side (run folders, outputs, data) --------------------------------------
def _deflated_member(zf: zipfile.ZipFile, name: str, head: bytes, size: int, fill: bytes = b"\0") -> None:
    """A member that inflates to `size` bytes (`head`, then `fill` repeated) from a few hundred KiB."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as out:
        out.write(head)
        chunk = fill * (1 << 20)
        left = size - len(head)
        while left > 0:
            out.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)


@generator
def npz_bomb(work: Path) -> None:
    """train.npz: a 128 MiB float32 array stored deflated in well under 1 MiB."""
    import numpy as np

    n = (128 << 20) // 16
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 4), np.float32))
    header["shape"] = (n, 4)
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(work / "train.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _deflated_member(zf, "x.npy", buf.getvalue(), len(buf.getvalue()) + n * 16)


@generator
def keras_config_bomb(work: Path) -> None:
    """bomb.keras: a config.json that inflates to 200 MiB of spaces."""
    with zipfile.ZipFile(work / "bomb.keras", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        _deflated_member(zf, "config.json", b"{", 200 << 20, b" ")


@generator
def csv_huge_field(work: Path) -> None:
    """data.csv: one field of 200 KiB in the third row."""
    (work / "data.csv").write_text("a,b\n1,0\n" + "7" * (200 << 10) + ",1\n2,1\n")


def _state(work: Path, run: str = "run") -> dict[str, Any]:
    value: dict[str, Any] = json.loads((work / run / "state.json").read_text())
    return value


def _loadable(path: Path) -> bool:
    """A .keras archive with its config and weights (checked without importing Keras)."""
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        return zf.testzip() is None and {"config.json", "model.weights.h5"} <= names


@after
def run_failed_checkpoint_kept(work: Path) -> None:
    """The run is marked failed, and the checkpoint state.json names is intact, and is last.keras."""
    state = _state(work)
    assert state["status"] == "failed" and state["message"], state
    checkpoint = work / "run" / state["checkpoint"]
    assert _loadable(checkpoint), checkpoint
    assert (work / "run" / "last.keras").read_bytes() == checkpoint.read_bytes()
    assert not list((work / "run").rglob(".*.tmp*")), "a temporary was left behind"


@after
def no_temporaries(work: Path) -> None:
    """The temporaries of m.keras are gone (and only those), and m.keras is a complete model."""
    assert not [p.name for p in work.iterdir() if p.name.startswith(".m.keras.")], sorted(p.name for p in work.iterdir())
    assert _loadable(work / "m.keras")


@after
def no_password_in_files(work: Path) -> None:
    """No file the command wrote (sweep.json above all) holds any part of the storage's password."""
    for p in work.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert b"hunter2" not in data and b"Sw0rdfish" not in data, p


@after
def no_trial_ran(work: Path) -> None:
    """The sweep stopped before its first trial: no trial folder was made."""
    assert not list(work.rglob("trial-*")), sorted(str(p) for p in work.rglob("trial-*"))


@generator
def hostile_run_names(work: Path) -> None:
    """runs/: copies of run/ named with terminal escapes, a newline and a workflow command, and formulas."""
    for name in ["a\x1b]0;owned\x07\x1b[2J", "b\n::error::runs-injected", "=HYPERLINK(\"http:evil\")", "-2+3",
                 "@SUM(A1)"]:
        shutil.copytree(work / "run", work / "runs" / name)
    shutil.rmtree(work / "run")
