"""SVG snapshots of the main screens and of every dialog at 80x24 (pytest-textual-snapshot).

They use fixed data, a fixed clock and UTC, so that the pixels are the same on every run; the
behaviour behind them is covered against a real box by the pilot tests. Update after a deliberate
change with: pytest tests/tui/test_snapshots.py --snapshot-update (and look at the SVGs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from smcp_box.tui.app import AdminTui
from smcp_box.tui.modals import FormModal, NewKeyModal
from tests.tui.fixed_api import NOW, FixedApi
from tests.tui.support import until

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fixed_app(api: FixedApi | None = None, *, read_only: bool = False) -> AdminTui:
    # Polls only when told to, so that nothing changes while the screenshot is taken.
    return AdminTui(api or FixedApi(), read_only=read_only, clock=lambda: NOW, poll_interval_s=3600)


async def settle(pilot: Pilot[Any]) -> None:
    """Let polls finish (verb workers may be waiting on a modal, so they are not awaited)."""
    await pilot.pause()
    polls = [worker for worker in pilot.app.workers if worker.group == "poll"]
    if polls:  # an empty list would mean "wait for every worker"
        await pilot.app.workers.wait_for_complete(polls)
    await pilot.pause()
    # A tab switch slides the tab underline: a picture taken mid-slide differs by a cell.
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5", "6", "7"])
def test_screen(snap_compare: SnapCompare, key: str) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)

    assert snap_compare(fixed_app(), run_before=run_before)


def test_help(snap_compare: SnapCompare) -> None:
    assert snap_compare(fixed_app(), press=["_", "question_mark", "_"])


#: Every dialog, opened by its keys: (id, keys). Details open with enter on each screen's first
#: row (on Tenants also the failed tenant's, two rows down); d asks to confirm on each screen.
DIALOGS = [
    ("tenant-details", ["enter"]),
    ("failed-tenant-details", ["down", "down", "enter"]),
    ("key-details", ["2", "enter"]),
    ("session-details", ["3", "enter"]),
    ("audit-details", ["4", "enter"]),
    ("metrics-details", ["5", "enter"]),
    ("add-tenant-form", ["n"]),
    ("limits-form", ["l"]),
    ("limits-form-last-field", ["l", *["tab"] * 8]),
    ("create-key-form", ["2", "n"]),
    ("revoke-confirmation", ["2", "d"]),
    ("end-session-confirmation", ["3", "d"]),
    ("user-details", ["6", "enter"]),
    ("add-user-form", ["6", "n"]),
    ("grant-form", ["6", "g"]),
    ("revoke-grant-confirmation", ["6", "down", "d"]),
    ("command-palette", ["ctrl+p"]),
    ("tenant-secrets", ["s"]),
    ("set-secret-form", ["s", "n"]),
    ("delete-secret-confirmation", ["s", "d"]),
    ("tenant-blobs", ["b"]),
    ("delete-blob-confirmation", ["b", "d"]),
    ("oauth-clients", ["6", "c"]),
    ("add-client-form", ["6", "c", "n"]),
    ("remove-client-confirmation", ["6", "c", "d"]),
]


@pytest.mark.parametrize("keys", [keys for _, keys in DIALOGS], ids=[i for i, _ in DIALOGS])
def test_dialog(snap_compare: SnapCompare, keys: list[str]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    assert snap_compare(fixed_app(), run_before=run_before)


def test_refused_client_form(snap_compare: SnapCompare) -> None:
    """The box's refusal in the form, above the values as typed (here: http to a LAN host)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("6", "c")
        await settle(pilot)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(pilot.app.screen, FormModal))
        form = pilot.app.screen
        form.query_one("#field-name", Input).value = "Web app"
        uris = form.query_one("#field-redirect_uris", Input)
        uris.value = "http://web.lan/callback"
        uris.focus()
        await pilot.press("enter")
        await until(
            pilot,
            lambda: isinstance(pilot.app.screen, FormModal) and pilot.app.screen is not form,
        )
        await settle(pilot)

    assert snap_compare(fixed_app(), run_before=run_before)


def test_remove_confirmation(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)

    assert snap_compare(fixed_app(), run_before=run_before)


def test_new_key_shown_once(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("2", "n")
        await until(pilot, lambda: isinstance(pilot.app.screen, FormModal))
        form = pilot.app.screen
        assert isinstance(form, FormModal)
        form.dismiss({"tenant": "echo", "label": "laptop"})
        await settle(pilot)
        assert isinstance(pilot.app.screen, NewKeyModal)

    assert snap_compare(fixed_app(), run_before=run_before)


def test_read_only(snap_compare: SnapCompare) -> None:
    assert snap_compare(fixed_app(read_only=True), press=["_"])


def test_stale(snap_compare: SnapCompare) -> None:
    api = FixedApi()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        api.down = True
        await pilot.press("r")
        await settle(pilot)

    assert snap_compare(fixed_app(api), run_before=run_before)
