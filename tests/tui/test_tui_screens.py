"""Pilot tests of each TUI screen against a real box over its admin socket."""

from __future__ import annotations

import asyncio

from textual.widgets import Sparkline, TabbedContent

from smcp_box.admin.server import start_admin
from smcp_box.tui.modals import DetailsModal, HelpModal
from tests.admin.support import RunningBox
from tests.tui.support import (
    SIZE,
    CountingClock,
    cell_texts,
    make_app,
    refreshes,
    status_text,
    table,
    until,
)


async def test_tenants_screen_and_live_status(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        assert cell_texts(app, "tenants") == ["notes", "utils"]
        await until(pilot, lambda: "2 tenants" in status_text(app))
        assert "STALE" not in status_text(app)
        assert app.focused is table(app, "tenants")
        shown = {key for key, active in app.active_bindings.items() if active.enabled}
        assert {"n", "d", "e", "l", "m", "slash", "question_mark"} <= shown


async def test_number_keys_switch_screens(rb: RunningBox) -> None:
    await rb.client.create_key("notes", "laptop")
    await rb.box.store.create_session("utils", "sid-tui", "2025-11-25", {"name": "ide"})
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        tabs = app.query_one(TabbedContent)
        for key, view in (("2", "keys"), ("3", "sessions"), ("4", "audit"), ("5", "metrics")):
            await pilot.press(key)
            assert tabs.active == view
            await until(pilot, lambda v=view: table(app, v).row_count > 0)  # type: ignore[misc]
            assert app.focused is table(app, view)
        assert cell_texts(app, "keys", 1) == ["notes"]
        assert cell_texts(app, "sessions") == ["utils"]
        assert "box.start" in cell_texts(app, "audit", 2)
        assert cell_texts(app, "metrics") == ["all tenants", "notes", "utils"]
        await pilot.press("1")
        assert tabs.active == "tenants"


async def test_help_and_details(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpModal)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpModal)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsModal))


async def test_filter_narrows_rows_and_escape_clears(rb: RunningBox) -> None:
    clock = CountingClock()
    app = make_app(rb, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("slash", "u", "t", "i")
        assert cell_texts(app, "tenants") == ["utils"]
        await pilot.press("enter")  # back to the table, filter kept
        assert app.focused is table(app, "tenants")
        await refreshes(pilot, clock, 2)  # refreshes keep the filter
        assert cell_texts(app, "tenants") == ["utils"]
        await pilot.press("escape")
        assert cell_texts(app, "tenants") == ["notes", "utils"]


async def test_audit_grows_without_moving_the_cursor_and_follows(rb: RunningBox) -> None:
    await rb.client.set_enabled("utils", False)
    await rb.client.set_enabled("utils", True)
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        audit = table(app, "audit")
        await until(pilot, lambda: audit.row_count >= 3)
        audit.move_cursor(row=1)
        selected = audit.selected_key()
        count = audit.row_count
        await rb.box.auditor.record(
            "test.new", tenant=None, actor="tester", source_ip=None, outcome="ok", detail={}
        )
        await until(pilot, lambda: audit.row_count == count + 1)
        assert audit.selected_key() == selected
        await pilot.press("f")
        assert audit.cursor_row == audit.row_count - 1
        await rb.box.auditor.record(
            "test.newer", tenant=None, actor="tester", source_ip=None, outcome="ok", detail={}
        )
        await until(pilot, lambda: audit.row_count == count + 2)
        assert audit.cursor_row == audit.row_count - 1


async def test_metrics_refresh_keeps_the_cursor_and_draws_sparklines(rb: RunningBox) -> None:
    clock = CountingClock()
    app = make_app(rb, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        metrics = table(app, "metrics")
        await until(pilot, lambda: metrics.row_count == 3)
        await pilot.press("down", "down")
        assert metrics.selected_key() == "utils"
        await refreshes(pilot, clock, 3)
        assert metrics.selected_key() == "utils"
        assert metrics.cursor_row == 2
        sparks = app.query(Sparkline)
        assert len(sparks) == 5
        assert all(spark.data is not None and len(spark.data) == 60 for spark in sparks)
        assert "utils" in str(app.query_one("#metrics-summary").render())


async def test_stale_when_the_box_stops_answering_and_live_again(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        rb.stop_admin.set()
        await asyncio.wait_for(rb.admin_task, 10)
        await until(pilot, lambda: "STALE" in status_text(app))
        assert "the box is not running" in status_text(app)
        assert app.stale
        assert table(app, "tenants").row_count == 2  # the last data stays
        again = asyncio.Event()
        task = start_admin(rb.box, again.wait, socket_path=rb.socket_path)
        try:
            await until(pilot, lambda: "STALE" not in status_text(app))
            assert not app.stale
        finally:
            again.set()
            await asyncio.wait_for(task, 10)
