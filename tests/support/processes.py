"""Stopping a server subprocess: SIGTERM, then SIGKILL if it outlives a deadline.

Shared by the test harness's servers (the box, HAProxy) and the benchmarks' (bench/procs.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def terminate(proc: subprocess.Popen[Any], timeout_s: float, *, whole_group: bool = False) -> int:
    """Ask ``proc`` to stop (SIGTERM), kill it if it has not within ``timeout_s``, and return
    its exit code. ``whole_group`` kills its process group instead of the process alone: only
    for a process started in a session of its own (``start_new_session=True``), whose group
    holds its own children and nothing else."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            if whole_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
    return proc.returncode
