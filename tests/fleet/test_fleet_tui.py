"""The TUI's Fleet screen in a real terminal (tmux), run on one box of a real fleet: three
boxes up, then two up and one gone after ``kill -9`` of one."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from tests.fleet.support import needs_fleet
from tests.support.fleet import Fleet
from tests.support.tmux import tmux, tui_in_tmux, wait_for_screen

pytestmark = [
    pytest.mark.slow,
    *needs_fleet,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("smcp_box.tui.views.fleet") is None,
        reason="the TUI's Fleet screen not built",
    ),
]


def test_the_fleet_screen_shows_three_boxes_then_two_after_a_kill(fleet: Fleet) -> None:
    box = fleet.box("box1")
    try:
        with tui_in_tmux(
            "smcp-fleet-tui", box.workdir, box.env(), size=(120, 30), args=("--read-only",)
        ) as session:
            wait_for_screen(session, lambda s: "Tenants" in s or "TUI-EXITED" in s)

            def fleet_screen_with_three_up(screen: str) -> bool:
                if " draining, " not in screen:
                    # Not on the Fleet screen yet: a key pressed while the app still starts up
                    # can be lost, so press it again until the screen answers.
                    tmux("send-keys", "-t", session, "7")
                    return False
                return "3 up, 0 draining, 0 gone" in screen

            screen = wait_for_screen(session, fleet_screen_with_three_up)
            assert all(name in screen for name in fleet.boxes), screen
            fleet.kill("box3")
            # Gone once its last beat is [cluster] dead_after_s old (2 s in the harness).
            screen = wait_for_screen(session, lambda s: "2 up, 0 draining, 1 gone" in s)
            assert "gone" in screen.split("box3", 1)[1].splitlines()[0], screen
    finally:
        fleet.restart("box3")
        fleet.wait_lb_sees("box3", "UP")
