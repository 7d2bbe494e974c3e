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
