"""The TUI in a real terminal: ``smcp-box tui`` typed into a detached tmux session, and its
screen read back until it shows what a test expects."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.waiting import wait_until_sync


def tmux(*args: str) -> str:
    done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10, check=False)
    return done.stdout


def wait_for_screen(session: str, ready: Callable[[str], bool], within: float = 20.0) -> str:
    """The session's screen once ``ready`` accepts it (``ready`` may press keys meanwhile)."""
    screens = [""]

    def shows() -> bool:
        screens.append(tmux("capture-pane", "-p", "-t", session))
        return ready(screens[-1])

    wait_until_sync(
        shows,
        what="the screen to show what was expected",
        timeout=within,
        interval=0.1,
        detail=lambda: screens[-1],
    )
    return screens[-1]


@contextmanager
def tui_in_tmux(
    name: str,
    workdir: Path,
    box_env: Mapping[str, str],
    *,
    size: tuple[int, int] = (80, 24),
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """A tmux session of ``size`` running ``smcp-box tui [args]`` in ``workdir`` against the box
    that ``box_env`` (its ``SMCP_BOX_*`` variables) names; yields the session's name. When the
    TUI exits the shell prints ``TUI-EXITED-<status>``."""
    session = f"{name}-{os.getpid()}"
    # tmux runs commands with the tmux server's environment, so pass ours explicitly. The
    # command is typed into a shell, so that an error stays readable on the captured screen.
    passed = {k: v for k, v in box_env.items() if k.startswith("SMCP_BOX_")}
    if "PYTHONPATH" in os.environ:
        passed["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in passed.items())
    tail = "".join(f" {shlex.quote(arg)}" for arg in args)
    command = (
        f"cd {shlex.quote(str(workdir))} && env {env} {shlex.quote(sys.executable)} "
        f"-m smcp_box.cli tui{tail}; echo TUI-EXITED-$?"
    )
    columns, rows = size
    tmux("new-session", "-d", "-s", session, "-x", str(columns), "-y", str(rows))
    try:
        tmux("send-keys", "-t", session, command, "Enter")
        yield session
    finally:
        tmux("kill-session", "-t", session)
