"""Driving the TUI against a real box in the same event loop."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from textual.app import App
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from smcp_box.admin.client import AdminClient
from smcp_box.tui.app import AdminTui
from smcp_box.tui.widgets import LiveTable
from tests.admin.support import RunningBox
from tests.support.waiting import wait_until

SIZE = (80, 24)


class CountingClock:
    """The TUI's clock, counting its readings: a refresh that succeeds reads it twice (for
    "last ok" and for the status line), so a test can wait for refreshes to happen."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return time.time()


def make_app(
    rb: RunningBox, *, read_only: bool = False, clock: Callable[[], float] = time.time
) -> AdminTui:
    return AdminTui(
        AdminClient(rb.socket_path), read_only=read_only, poll_interval_s=0.2, clock=clock
    )


async def refreshes(pilot: Pilot[None], clock: CountingClock, count: int) -> None:
    """Wait until ``count`` more refreshes have succeeded."""
    wanted = clock.readings + 2 * count
    await until(pilot, lambda: clock.readings >= wanted)


def palette_offers(app: AdminTui, title: str) -> bool:
    """The command palette is open and its first (highlighted) match is ``title``."""
    screen = app.screen
    if not isinstance(screen, CommandPalette):
        return False
    found = screen.query_one(CommandList)
    return (
        found.option_count > 0
        and found.highlighted == 0
        and title in str(found.get_option_at_index(0).prompt)
    )


async def until(pilot: Pilot[None], condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``condition()`` holds, letting the app process its messages between checks."""

    async def settled() -> bool:
        await pilot.pause()
        return condition()

    await wait_until(settled, what="the TUI to reach the expected state", timeout=within)


def table(app: AdminTui, view: str) -> LiveTable:
    return app.view(view).table


def cell_texts(app: AdminTui, view: str, column: int = 0) -> list[str]:
    t = table(app, view)
    return [str(t.get_row_at(i)[column]) for i in range(t.row_count)]


def status_text(app: AdminTui) -> str:
    return str(app.query_one("#status", Static).render())


def screen_text(app: AdminTui) -> str:
    """Everything the active screen shows, as plain text (for "is this on screen" checks)."""
    return "\n".join(str(widget.render()) for widget in app.screen.query(Static))


def details_text(app: object) -> str:
    """The open details dialog's labels and values, as plain text."""
    out = io.StringIO()
    shown = app.screen.query_one("#details", Static).content  # type: ignore[attr-defined]
    Console(width=200, color_system=None, file=out).print(shown)
    return out.getvalue()


def on_screen(app: App[Any], widget: Widget) -> bool:
    """``widget`` is drawn, uncovered, at its top-left corner (not scrolled away or cut off)."""
    region = widget.region
    if not region or not app.screen.region.contains_region(region):
        return False
    return app.screen.get_widget_at(region.x, region.y)[0] is widget
