"""tests/support/processes.py: ``terminate`` stops a server politely, and kills one that will not
stop, its process group too when asked."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.support.processes import terminate

#: Says it is ready, then waits on its stdin (never closed here) with SIGTERM ignored.
STUBBORN = (
    "import signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); sys.stdin.read()"
)
#: Waits on its stdin; SIGTERM ends it as it ends any Python process.
POLITE = "print('ready', flush=True); import sys; sys.stdin.read()"


def start(code: str, *, new_session: bool = False) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"  # its signal handler is in place
    return proc


def test_a_process_that_stops_on_sigterm_is_not_killed() -> None:
    with start(POLITE) as proc:  # the context closes its pipes
        assert terminate(proc, 30.0) == -signal.SIGTERM


def test_a_process_ignoring_sigterm_is_killed_after_the_deadline() -> None:
    with start(STUBBORN) as proc:
        assert terminate(proc, 0.2) == -signal.SIGKILL


def test_the_whole_group_is_killed_when_asked() -> None:
    with start(STUBBORN, new_session=True) as proc:
        assert terminate(proc, 0.2, whole_group=True) == -signal.SIGKILL


def test_a_process_already_gone_gives_its_exit_code() -> None:
    with subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]) as proc:
        proc.wait()
        assert terminate(proc, 1.0) == 3
