"""Smoke test: ``smcp-box tui`` in a real terminal (tmux) against a real ``smcp-box serve``."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.support.waiting import wait_until_sync

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (CI installs it: apt-get tmux)"
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[BoxProcess]:
    tenants = copy_tenants(tmp_path / "tenants", ["notes", "utils"])
    proc = BoxProcess(workdir=tmp_path, tenants_dir=tenants)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def tmux(*args: str) -> str:
    done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10, check=False)
    return done.stdout


def wait_for_screen(session: str, ready: Callable[[str], bool], within: float = 20.0) -> str:
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


def test_tui_in_tmux_at_80x24(served: BoxProcess) -> None:
    session = f"smcp-tui-{os.getpid()}"
    # tmux runs commands with the tmux server's environment, so pass ours explicitly. The
    # command is typed into a shell, so that an error stays readable on the captured screen.
    passed = {k: v for k, v in served.env().items() if k.startswith("SMCP_BOX_")}
    if "PYTHONPATH" in os.environ:
        passed["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in passed.items())
    command = (
        f"cd {shlex.quote(str(served.workdir))} && env {env} {shlex.quote(sys.executable)} "
        "-m smcp_box.cli tui; echo TUI-EXITED-$?"
    )
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24")
    try:
        tmux("send-keys", "-t", session, command, "Enter")
        # The tenants, the live status line and the footer's key hints.
        expected = ("notes", "utils", "● ", "2 tenants", "d Remove")
        wait_for_screen(session, lambda s: all(text in s for text in expected))
        tmux("send-keys", "-t", session, "2")
        wait_for_screen(session, lambda s: "Key id" in s)
        tmux("send-keys", "-t", session, "?")
        wait_for_screen(session, lambda s: "smcp-box TUI: keys" in s)
        tmux("send-keys", "-t", session, "Escape")
        # A key right after Escape would read as alt+key; wait until the help has closed.
        wait_for_screen(session, lambda s: "smcp-box TUI: keys" not in s)
        tmux("send-keys", "-t", session, "5")
        screen = wait_for_screen(session, lambda s: "all tenants" in s and "fuel/s" in s)
        assert "STALE" not in screen
        tmux("send-keys", "-t", session, "q")
        wait_for_screen(session, lambda s: "TUI-EXITED-0" in s)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)
