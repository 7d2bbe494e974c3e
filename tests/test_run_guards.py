"""The run side's guards against untrusted run folders, outputs and data, in-process and without Keras:
state.json checks, plugins pinned by hash, output targets and stale temporaries, write errors, data
roots, zip caps, CSV limits, and the value checks before training (issue 15).

The same attacks end to end, in subprocesses, are cases of tests/hostile/."""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec.build import archives
from graphspec.diagnostics import Location
from graphspec.errors import SpecError
from graphspec.run import artifacts, plugin_pins, sources, state_check, targets
from graphspec.run import data as data_mod

from .test_data import io as model_io, spec_data


def diag(exc: pytest.ExceptionInfo[Any]) -> Any:
    assert isinstance(exc.value, SpecError)
    return exc.value.diagnostics[0]


# -- state.json ----------------------------------------------------------------------------------------------
STATE = {"status": "interrupted", "epochs": 3, "epochs_completed": 1, "model": "m",
         "checkpoint": "checkpoints/epoch-0001.keras", "seed_states": [[1, 2]],
         "callbacks": {"early_stopping": {"wait": 0, "best": "inf", "stopped_epoch": 0, "best_epoch": 0}},
         "best": {"monitor": "loss", "mode": "min", "value": 0.5, "epoch": 1}}


@pytest.mark.parametrize(("change", "text"), [
    ({"epochs_completed": "1"}, "`epochs_completed` is not a count"),
    ({"status": "exploded"}, "`status` is not one of"),
    ({"checkpoint": "../../elsewhere/x.keras"}, "`checkpoint` is not a path inside the run folder"),
    ({"checkpoint": "/etc/passwd"}, "`checkpoint` is not a path inside the run folder"),
    ({"seed_states": [["a"]]}, "`seed_states` holds an entry"),
    ({"callbacks": {"early_stopping": {"wait": 0}}}, "`callbacks.early_stopping.best` is missing"),
    ({"initial_learning_rate": "nan"}, "`initial_learning_rate` is not a finite number"),
    ({"best": {"value": None}}, "`best` is not"),
    ({"plugins": "payload.py"}, None),  # checked where plugins are read: see below
])
def test_state_fields_are_checked_before_use(tmp_path: Path, change: dict[str, Any], text: str | None) -> None:
    (tmp_path / "state.json").write_text(json.dumps({**STATE, **change}))
    if text is None:
        state = state_check.read(tmp_path / "state.json")
        with pytest.raises(SpecError, match="`plugins` is str"):
            plugin_pins.require(state, [], tmp_path / "state.json")
        return
    with pytest.raises(SpecError) as exc:
        state_check.read(tmp_path / "state.json")
    d = diag(exc)
    assert d.code == "GS420" and text in d.message and d.location.file == str(tmp_path / "state.json")


def test_corrupt_state_is_located_and_sound_state_reads(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{\n  "status": "running",\n  "epochs_completed": 1,\n  "checkpoint": "chec')
    with pytest.raises(SpecError) as exc:
        state_check.read(path)
    d = diag(exc)
    assert (d.code, d.location.line) == ("GS420", 4) and "not valid JSON" in d.message
    for text, why in (("[1, 2]", "a JSON list, not an object"), (b"\xff\xfe", "not UTF-8")):
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(SpecError, match=why):
            state_check.read(path)
    path.write_text(json.dumps(STATE))
    assert state_check.read(path) == STATE
    run = tmp_path / "run"
    assert state_check.checkpoint_path(STATE, run, "last.keras") == run / "checkpoints/epoch-0001.keras"


# -- plugins a run names -------------------------------------------------------------------------------------
def test_a_runs_plugins_must_be_given_again_with_the_same_content(tmp_path: Path) -> None:
    plugin = tmp_path / "layers.py"
    plugin.write_text("X = 1\n")
    records = plugin_pins.record([str(plugin), "json"])
    assert records[0]["path"] == str(plugin.resolve()) and len(records[0]["sha256"]) == 64
    assert records[1]["plugin"] == "json" and records[1]["path"].endswith("json/__init__.py")
    state, where = {"plugins": records}, tmp_path / "state.json"
    plugin_pins.require(state, [str(plugin), "json"], where)
    moved = tmp_path / "elsewhere.py"
    moved.write_text(plugin.read_text())
    plugin_pins.require(state, [str(moved), "json"], where)  # matched by content, wherever it is now
    with pytest.raises(SpecError) as exc:
        plugin_pins.require(state, ["json"], where)
    d = diag(exc)
    assert d.code == "GS421" and "layers.py" in d.message and "never imports" in d.message
    assert d.hint is not None and f"--plugin {plugin.resolve()}" in d.hint
    plugin.write_text("X = 2\n")
    with pytest.raises(SpecError, match="has different content"):
        plugin_pins.require(state, [str(plugin), "json"], where)
    # The old form (names only) is matched by name: the person running the command gave that plugin.
    plugin_pins.require({"plugins": ["layers.py"]}, [str(plugin)], where)
    with pytest.raises(SpecError, match="payload.py, which was not given"):
        plugin_pins.require({"plugins": ["payload.py"]}, [], where)


# -- output targets ------------------------------------------------------------------------------------------
def _keras_like(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("metadata.json", "{}")


def test_outputs_replace_only_their_own_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("x")
    (tmp_path / "notes.yaml").write_text("a: 1")
    (tmp_path / "empty").mkdir()
    _keras_like(tmp_path / "m.keras")
    np.savez(tmp_path / "p.npz", a=np.arange(2))
    (tmp_path / "m.tflite").write_bytes(b"\x18\x00\x00\x00TFL3rest")
    saved = tmp_path / "served"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"")
    refused = [("folder", "savedmodel", False, "not a SavedModel (it holds notes.txt)"),
               ("notes.yaml", "savedmodel", True, "never replaces a file with a folder"),
               (".", "savedmodel", False, "the current folder"),
               ("..", "keras", False, "the current folder or one above it"),
               ("folder", "npz", True, "is a folder"),
               ("notes.yaml", "keras", False, "exists and is not a .keras model"),
               ("p.npz", "keras", False, "is not a .keras model"),
               ("m.keras", "npz", False, "is not an .npz file")]
    for target, kind, force, text in refused:
        with pytest.raises(targets.OutputRefused, match=re.escape(text)):
            targets.check(target, kind, force=force)
    for target, kind, force in (("served", "savedmodel", False), ("empty", "savedmodel", False),
                                ("m.keras", "keras", False), ("p.npz", "npz", False), ("m.tflite", "tflite", False),
                                ("notes.yaml", "keras", True), ("new.keras", "keras", False),
                                ("notes.yaml", "text", False)):
        targets.check(target, kind, force=force)
    (saved / "README").write_text("mine")
    with pytest.raises(targets.OutputRefused, match="not a SavedModel"):
        targets.check("served", "savedmodel")


def test_stale_temporaries_are_removed_but_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    stale = [tmp_path / ".m.keras.abc.tmp.keras", tmp_path / ".m.keras.def.tmp"]
    for p in stale:
        p.write_text("half")
    (tmp_path / ".m.keras.old1.tmp").mkdir()
    os.mkfifo(tmp_path / ".m.keras.fifo.tmp")  # opening it to test the lock must not hang
    stale.append(tmp_path / ".m.keras.fifo.tmp")
    live = tmp_path / ".m.keras.live.tmp.keras"
    live.write_text("being written")
    other = tmp_path / ".n.keras.abc.tmp.keras"
    other.write_text("another target's")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        removed = targets.clean_stale(target)
    finally:
        os.close(fd)
    assert sorted(removed) == sorted([*stale, tmp_path / ".m.keras.old1.tmp"])
    assert live.exists() and other.exists()
    notes: list[str] = []
    artifacts.prepare_output(target, "keras", note=notes.append)
    assert not live.exists() and "removed 1 temporary file(s)" in notes[0]


# -- write failures ------------------------------------------------------------------------------------------
def test_a_failed_write_names_the_file_and_leaves_the_old_one(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    artifacts.atomic_write_text(target, "old")
    real_open = io.open

    def full(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and ".state.json." in str(file):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", full)
    with pytest.raises(artifacts.WriteError) as exc:
        artifacts.atomic_write_text(target, "new")
    d = diag(exc)
    assert d.code == "GS430" and d.location.file == str(target)
    assert d.message == "cannot write state.json: No space left on device" and "free some space" in (d.hint or "")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(targets.OutputRefused, match="is a folder"):
        artifacts.atomic_write_text(tmp_path / "dir.json", "x")


# -- data roots and files ------------------------------------------------------------------------------------
def _csv_spec(train: str) -> Any:
    return spec_data(source={"kind": "csv", "train": train}, inputs={"x": ["a"]}, outputs={"y": ["b"]})


def test_data_paths_in_a_spec_stay_inside_the_data_roots(tmp_path: Path) -> None:
    spec_dir, secrets = tmp_path / "project", tmp_path / "secrets"
    spec_dir.mkdir()
    secrets.mkdir()
    (secrets / "creds.csv").write_text("API_KEY=sk-live-1,b\n1,2\n")
    (spec_dir / "link.csv").symlink_to(secrets / "creds.csv")
    m = model_io({"x": (1,)}, {"y": (1,)})
    in_spec = lambda path: Location("spec.yaml", 3, 4)  # noqa: E731
    on_command_line = lambda path: Location("--set data.source.train=...")  # noqa: E731
    for train in ("../secrets/creds.csv", str(secrets / "creds.csv"), "link.csv"):
        with pytest.raises(SpecError) as exc:
            data_mod.prepare(_csv_spec(train), m, base_dir=spec_dir, seed=0, locate=in_spec)
        d = diag(exc)
        assert d.code == "GS415" and "outside the data roots" in d.message and "--data-root" in (d.hint or "")
    # Given on the command line it is read, and its content is never quoted.
    with pytest.raises(SpecError) as exc:
        data_mod.prepare(_csv_spec(str(secrets / "creds.csv")), m, base_dir=spec_dir, seed=0, locate=on_command_line)
    assert "sk-live" not in diag(exc).message and "names not shown" in diag(exc).message
    # A data root from the command line (or pyproject.toml) lets the spec name it; quotes are truncated.
    roots = sources.data_roots([secrets], spec_dir)
    with pytest.raises(SpecError) as exc:
        data_mod.prepare(_csv_spec("../secrets/creds.csv"), m, base_dir=spec_dir, seed=0, locate=in_spec, roots=roots)
    assert "`API_KEY=sk-live-1`" in diag(exc).message


def test_project_data_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.graphspec]\ndata_roots = ["data", "/srv/shared"]\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()  # a repository: configuration is searched for up to its root
    monkeypatch.chdir(tmp_path / "sub")
    assert sources.project_data_roots() == [(tmp_path / "data").resolve(), Path("/srv/shared")]


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.csv")
    m = model_io({"x": (1,)}, {"y": (1,)})
    for name in ("fifo.csv", "/dev/zero"):
        with pytest.raises(SpecError, match="is not a regular file"):
            data_mod.prepare(_csv_spec(name), m, base_dir=tmp_path, seed=0,
                             roots=[tmp_path, Path("/dev")])


def test_csv_limits_and_quotes(tmp_path: Path) -> None:
    m = model_io({"x": (1,)}, {"y": (1,)})
    (tmp_path / "wide.csv").write_text("a,b\n1,0\n" + "7" * (200 << 10) + ",1\n")
    with pytest.raises(SpecError, match="row 3: a field is over 128 KiB"):
        data_mod.prepare(_csv_spec("wide.csv"), m, base_dir=tmp_path, seed=0)
    (tmp_path / "text.csv").write_text("a,b\n1,0\n" + "x" * 500 + ",1\n")
    with pytest.raises(SpecError) as exc:
        data_mod.prepare(_csv_spec("text.csv"), m, base_dir=tmp_path, seed=0)
    message = diag(exc).message
    assert "column 'a', row 3: not a number: 'xxxx" in message and "x" * 60 not in message


# -- .npz files ----------------------------------------------------------------------------------------------
def _npz_with(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def test_npz_members_must_be_arrays_of_samples(tmp_path: Path) -> None:
    m = model_io({"x": (2,)}, {"y": (1,)})
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 2)})
    cases = {
        "not an .npz archive": {"__raw__": b"x,y\n1,2\n"},
        "member 'notes.txt' is not an array": {"x.npy": _npy(np.ones((4, 2))), "notes.txt": b"hello"},
        "array 'x' is 0-d": {"x.npy": _npy(np.float32(1)), "y.npy": _npy(np.ones(4))},
        "states shape (1000000000, 2)": {"x.npy": header.getvalue() + b"\0" * 64},
        "is not a readable .npy array": {"x.npy": b"\x93NUMPY garbage"},
    }
    for text, members in cases.items():
        path = tmp_path / "d.npz"
        if "__raw__" in members:
            path.write_bytes(members["__raw__"])
        else:
            _npz_with(path, members)
        with pytest.raises(SpecError) as exc:
            data_mod.prepare(spec_data(source={"kind": "npz", "train": "d.npz"}), m, base_dir=tmp_path, seed=0)
        assert text in diag(exc).message and diag(exc).code == "GS416", diag(exc).message
    obj = tmp_path / "o.npz"
    np.savez(obj, x=np.array([{"a": 1}, None], dtype=object), y=np.ones(2))
    with pytest.raises(SpecError, match="holds Python objects"):
        data_mod.prepare(spec_data(source={"kind": "npz", "train": "o.npz"}), m, base_dir=tmp_path, seed=0)


def test_zip_caps_are_checked_before_inflating(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", b"\0" * (archives.BOMB_FLOOR + 1))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(archives.ArchiveProblem, match=r"member x\.npy inflates to 64\.0 MiB .*a zip bomb"):
        archives.check_zip(bomb)
    config = tmp_path / "big.keras"
    with zipfile.ZipFile(config, "w") as zf:  # stored, not compressed: honest, but too much JSON
        zf.writestr("config.json", b" " * (archives.MAX_JSON + 1))
    with pytest.raises(archives.ArchiveProblem, match="config.json is 64.0 MiB of JSON"):
        archives.check_zip(config, json_members=archives.KERAS_JSON)
    with pytest.raises(archives.ArchiveProblem, match="over the 1.0 MiB graphspec reads at once"):
        archives.check_zip(config, budget=1 << 20)
    assert [i.filename for i in archives.check_zip(config)] == ["config.json"]


# -- values the model cannot take ----------------------------------------------------------------------------
def test_values_are_checked_against_the_loss_before_training(tmp_path: Path) -> None:
    sparse = {"type": "SparseCategoricalCrossentropy", "from_logits": True}
    m = model_io({"x": (2,)}, {"y": (3,)}, loss=sparse)
    x, y = np.ones((6, 2), np.float32), np.array([0, 1, 2, 0, 99, 1])
    src = {"kind": "npz", "train": "d.npz"}

    def problem(**arrays: Any) -> Any:
        np.savez(tmp_path / "d.npz", **arrays)
        with pytest.raises(SpecError) as exc:
            data_mod.prepare(spec_data(source=src), m, base_dir=tmp_path, seed=0)
        assert diag(exc).code == "GS417", diag(exc).message
        return diag(exc)

    d = problem(x=x, y=y)
    assert "class id 99 at sample 4 of the file" in d.message and "3 classes" in d.message
    assert f"{tmp_path / 'd.npz'}, array `y`" in d.message and d.hint == "the output needs at least 100 units"
    assert "18446744073709551615" in problem(x=x, y=np.array([0, 1, 2**64 - 1, 0, 1, 1], np.uint64)).message
    assert "-1" in problem(x=x, y=np.array([0, 1, -1, 0, 1, 1])).message
    assert "a sparse loss takes whole class ids" in problem(x=x, y=np.array([0, 1, 1.5, 0, 1, 1])).message
    bad = x.copy()
    bad[3, 1] = np.nan
    d = problem(x=bad, y=np.zeros(6, np.int64))
    assert "input `x`" in d.message and "nan at sample 3 of the file, position (1,)" in d.message
    assert "learning rate" in (d.hint or "")
    mse = model_io({"x": (2,)}, {"y": (1,)}, loss="mse")
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, np.inf, 0, 1, 1], np.float32))
    with pytest.raises(SpecError, match="targets for output `y` .*: inf at sample 2"):
        data_mod.prepare(spec_data(source=src), mse, base_dir=tmp_path, seed=0)
    # A label past int64 in a CSV file stays a (huge) number, never a wrapped-around id.
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n1,2,99999999999999999999\n")
    csv_src = spec_data(source={"kind": "csv", "train": "d.csv"}, inputs={"x": ["a", "b"]})
    with pytest.raises(SpecError, match="class id 1e\\+20 at sample 1"):
        data_mod.prepare(csv_src, m, base_dir=tmp_path, seed=0)
