"""Driving the TUI against a real box in the same event loop."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Static

from smcp_box.admin.client import AdminClient
from smcp_box.tui.app import AdminTui
from smcp_box.tui.widgets import LiveTable
from tests.admin.support import RunningBox
from tests.support.waiting import wait_until

SIZE = (80, 24)


def make_app(rb: RunningBox, *, read_only: bool = False) -> AdminTui:
    return AdminTui(AdminClient(rb.socket_path), read_only=read_only, poll_interval_s=0.2)


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
