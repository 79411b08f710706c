"""One box per state directory: a second box on the same state directory, whatever its runtime
directory, exits 2 naming the PID that holds the lock, before it binds its port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from smcp_box.box import Box
from smcp_box.errors import ConfigError
from smcp_box.ops.backup import run_restore
from smcp_box.store.statelock import LOCK_NAME, box_is_running, read_holder
from tests.e2e.boxproc import BoxProcess, free_port
from tests.ops.support import box_settings, copy_examples, started

pytestmark = pytest.mark.slow


def second_box(first: BoxProcess, port: int, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**first.env(), "SMCP_BOX_RUNTIME_DIR": str(runtime_dir)}
    return subprocess.run(
        [sys.executable, "-m", "smcp_box.cli", "serve", "--port", str(port)],
        env=env,
        cwd=first.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_a_second_box_on_the_same_state_dir_exits_2_before_binding(
    workdir: Path, module_cache: Path
) -> None:
    tenants = copy_examples(workdir / "tenants", ("utils",))
    first = BoxProcess(workdir, tenants, extra_env={"SMCP_BOX_CACHE_DIR": str(module_cache)})
    first.start()
    try:
        assert first.proc is not None
        pid = first.proc.pid
        state = workdir / "state"
        assert read_holder(state) == (pid, "serve")
        assert box_is_running(state)

        # Another runtime directory (so another admin socket) and a free port.
        port = free_port()
        other_run = workdir / "run-2"
        done = second_box(first, port, other_run)
        assert done.returncode == 2, done.stderr
        assert f"PID {pid}" in done.stderr
        assert "already running on the state directory" in done.stderr
        assert not (other_run / "admin.sock").exists()
        assert port_is_free(port)

        # With the port taken, the refusal is still the lock's: it comes before the bind.
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            taken = held.getsockname()[1]
            done = second_box(first, taken, other_run)
        assert done.returncode == 2
        assert f"PID {pid}" in done.stderr
        assert "address" not in done.stderr.lower()

        # The first box never noticed.
        assert first.cli("status", "--json").returncode == 0
        assert first.stop() == 0
    finally:
        first.stop()
    # The lock died with the process: a box starts again.
    assert not box_is_running(workdir / "state")
    assert (workdir / "state" / LOCK_NAME).exists()


async def test_in_process_boxes_and_restore_see_the_lock(
    tmp_path: Path, module_cache: Path
) -> None:
    tenants = copy_examples(tmp_path / "tenants", ("utils",))
    settings = box_settings(tmp_path, tenants, module_cache)
    async with started(settings) as box:
        await box.store.backup(tmp_path / "b.db")
        with pytest.raises(ConfigError, match=f"PID {os.getpid()}"):
            await Box.start(settings)
        with pytest.raises(ConfigError, match=f"PID {os.getpid()}"):
            await run_restore(settings, tmp_path / "b.db")
    # Released at stop.
    async with started(settings):
        pass
