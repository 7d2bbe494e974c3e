"""Hostile inputs, round 2 (issue 19): the file system and configuration, beside the table in tests/hostile/.

What a case folder cannot express is here: the listening socket of `launch --local`'s coordinator, and the
configuration files graphspec reads (whose owner and mode a case folder cannot set).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphspec.run import distribute


# -- item 10: the coordinator of `launch --local` listens on loopback only -----------------------------------------
def test_a_loopback_coordinator_is_bound_to_loopback_and_a_multi_host_one_is_not() -> None:
    local = distribute.join_arguments(distribute.Plan("data-parallel", None, "127.0.0.1:7777", 2, 0))
    assert local["coordinator_bind_address"] == "127.0.0.1:7777"
    remote = distribute.join_arguments(distribute.Plan("data-parallel", None, "node0:7777", 4, 1))
    assert "coordinator_bind_address" not in remote and remote["coordinator_address"] == "node0:7777"


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) of sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp (Linux)")
def test_process_0_of_a_local_launch_listens_on_loopback_only() -> None:
    pytest.importorskip("jax")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Process 0 of 2 starts the coordinator, then waits for process 1 (which never comes): look meanwhile.
    code = ("import os; os.environ['KERAS_BACKEND'] = 'jax'\n"
            "from graphspec.run import distribute\n"
            f"distribute.start(distribute.Plan('data-parallel', None, '127.0.0.1:{port}', 2, 0))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
    try:
        deadline = time.monotonic() + 60
        while not (found := _listening(port)) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    assert found, "the coordinator never listened"
    # 127.0.0.1, ::1, ::ffff:127.0.0.1
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    assert set(found) <= loopback, f"listening on {found} (all zeros: every interface)"


# -- item 2: configuration is read from the repository, from files only its user can write -----------------------
def _config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text("[tool.graphspec]\n" + text + "\n")
    path.chmod(0o644)
    return path


def test_configuration_is_searched_up_to_the_repository_root_only(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec.analysis import lint_policy
    from graphspec.run import sources
    from graphspec.spec import plugins

    _config(tmp_path, 'plugins = ["payload.py"]\ndata_roots = ["/"]\n[tool.graphspec.lint]\nignore = ["ALL"]')
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git is a file
    monkeypatch.chdir(repo / "sub")
    assert plugins.project_plugins() == [] and sources.project_data_roots() == []
    assert lint_policy.load_config(Path.cwd()).file is None
    _config(repo, 'data_roots = ["data"]')  # the repository's own, found from a sub-folder
    assert sources.project_data_roots() == [(repo / "data").resolve()]
    # Outside a repository only the current folder is read.
    (repo / ".git").unlink()
    assert sources.project_data_roots() == []
    monkeypatch.chdir(repo)
    assert sources.project_data_roots() == [(repo / "data").resolve()]


def test_a_configuration_others_can_write_is_ignored_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from graphspec.run import sources

    path = _config(tmp_path, 'data_roots = ["/"]')
    monkeypatch.chdir(tmp_path)
    assert sources.project_data_roots() == [Path("/")]
    for mode, who in ((0o664, "its group"), (0o646, "others")):
        path.chmod(mode)
        assert sources.project_data_roots() == []
        assert f"graphspec: warning: ignoring {path}: it is writable by {who} (mode {mode:04o})" in capsys.readouterr().err
    path.chmod(0o644)
    if os.geteuid() == 0:  # only root can give a file away
        os.chown(path, 4242, -1)
        assert sources.project_data_roots() == []
        assert "it is owned by another user (uid 4242)" in capsys.readouterr().err


@pytest.mark.keras
def test_building_says_which_configuration_files_plugins_it_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from graphspec import compiler
    from graphspec.spec import plugins

    (tmp_path / "layers.py").write_text("X = 1\n")
    path = _config(tmp_path, 'plugins = ["layers.py"]')
    monkeypatch.chdir(tmp_path)
    spec = "graphspec: 1\nname: t\ninputs:\n  x: [2]\nnodes:\n  d: {type: Dense, units: 1}\n"
    checked = compiler.check(text=spec, plugins=plugins.all_plugins(None))
    compiler.build(checked)
    assert f"graphspec: importing plugins from {path}: layers.py\n" in capsys.readouterr().err
