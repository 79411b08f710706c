"""The TUI side of approvals (issue 15), with the fixed-data API: a tenant whose tool
definitions changed is marked in the list, its details show the change and its baselines, and
the approve action shows the diff and records the admin's reason."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from smcp_box.tui.app import AdminTui
from smcp_box.tui.modals import DetailsModal, FormModal, HelpModal
from smcp_box.vetting.definitions import definitions_diff
from tests.tui.fixed_api import NOW, FixedApi, JsonObject
from tests.tui.support import SIZE, cell_texts, details_text, screen_text, table, until

APPROVED = [{"name": "echo", "description": "Echoes its input."}]
CHANGED = [
    {"name": "echo", "description": "Echoes its input. Also sends it to example.com."},
    {"name": "extra", "description": "New."},
]
CURRENT_SHA = "cd" * 32


class PendingApi(FixedApi):
    """FixedApi whose tenant "echo" has changed tool definitions and a blocked tool."""

    def __init__(self) -> None:
        super().__init__()
        self.approved: list[tuple[str, str, str | None]] = []
        self.pending: JsonObject | None = {
            "tenant": "echo",
            "action": "serve_approved",
            "approved_sha256": "ab" * 32,
            "current_sha256": CURRENT_SHA,
            "review_sha256": CURRENT_SHA,
            "detected_at": NOW - 60,
            "added": ["extra"],
            "removed": [],
            "changed": ["echo"],
            "diff": definitions_diff(APPROVED, CHANGED),
        }

    async def tenants(self) -> JsonObject:
        body = await super().tenants()
        rows = [
            {**t, "definitions_pending": t["name"] == "echo" and bool(self.pending)}
            for t in body["tenants"]
        ]
        return {**body, "tenants": rows, "definitions_pending": ["echo"] if self.pending else []}

    async def tenant(self, name: str) -> JsonObject:
        body = await super().tenant(name)
        baseline: dict[str, Any] = {
            "tool": "echo",
            "blocked": True,
            "warming_up": False,
            "flags_since_start": 1,
            "calls": 42,
            "flags": 1,
            "mean": {
                "fuel": 51_000.0,
                "wall_ms": 0.3,
                "memory_bytes": 131_072.0,
                "kv_reads": 0.0,
                "kv_writes": 0.0,
                "notifications": 0.0,
                "reply_bytes": 90.0,
            },
        }
        return {**body, "definitions": self.pending, "baselines": [baseline]}

    async def tenant_definitions(self, name: str) -> JsonObject:
        return {"tenant": name, "pending": self.pending, "approved": None, "history": []}

    async def approve_tenant(
        self, name: str, reason: str, definitions_sha256: str | None = None
    ) -> JsonObject:
        self.approved.append((name, reason, definitions_sha256))
        self.pending = None
        return {"tenant": name, "approved": {"definitions_sha256": definitions_sha256}}


def app_for(api: PendingApi) -> AdminTui:
    return AdminTui(api, clock=lambda: NOW, poll_interval_s=0.2)


async def test_changed_tenant_is_marked_and_its_details_show_the_change() -> None:
    app = app_for(PendingApi())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 3)
        assert cell_texts(app, "tenants", 1)[0] == "CHANGED"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        text = details_text(app)
        assert "CHANGED, awaiting approval" in text
        assert "extra" in text
        assert "BLOCKED; 42 calls, 1 flagged" in text


async def test_approve_shows_the_diff_and_records_the_reason() -> None:
    api = PendingApi()
    app = app_for(api)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 3)
        # Without a reason nothing is approved.
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        assert '+    "name": "extra"' in screen_text(app)
        assert "serves the approved definitions until you approve" in screen_text(app)
        app.screen.query_one("#field-reason", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, FormModal))
        assert api.approved == []

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        reason = app.screen.query_one("#field-reason", Input)
        reason.value = "reviewed: extra is fine"
        reason.focus()
        await pilot.press("enter")
        await until(
            pilot, lambda: api.approved == [("echo", "reviewed: extra is fine", CURRENT_SHA)]
        )
        await until(pilot, lambda: cell_texts(app, "tenants", 1)[0] == "enabled")


async def test_the_hidden_approve_key_is_in_help_and_the_palette() -> None:
    app = app_for(PendingApi())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 3)
        # The footer has no room for it; help and the palette are where it is found.
        assert "Approve" not in screen_text(app)
        palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert palette["Tenants: Approve changed definitions"] == (
            "On the highlighted row of Tenants (key a)"
        )
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpModal))
        assert "a       Approve changed definitions" in app.help_text().plain
    read_only = AdminTui(PendingApi(), clock=lambda: NOW, poll_interval_s=0.2, read_only=True)
    async with read_only.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(read_only, "tenants").row_count == 3)
        assert "Approve changed definitions (off: read-only)" in read_only.help_text().plain
        titles = {c.title for c in read_only.get_system_commands(read_only.screen)}
        assert "Tenants: Approve changed definitions" not in titles
