"""Smoke test: ``smcp-box tui`` in a real terminal (tmux) against a real ``smcp-box serve``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.boxproc import BoxProcess, copy_tenants
from tests.support.tmux import tmux, tui_in_tmux, wait_for_screen

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


def test_tui_in_tmux_at_80x24(served: BoxProcess) -> None:
    with tui_in_tmux("smcp-tui", served.workdir, served.env()) as session:
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
