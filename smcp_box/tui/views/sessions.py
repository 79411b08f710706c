"""Sessions: list the open ones, see one, end one; below them, the tenants' tasks
(docs/tasks.md: id prefix, tool, status, age; read-only, their owners' data is not shown)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from smcp_box.tui.format import fmt_duration, fmt_time, shorten
from smcp_box.tui.modals import ConfirmModal, DetailsModal
from smcp_box.tui.views.base import View
from smcp_box.tui.widgets import LiveTable, Row

_SEPARATOR = "\x00"


class SessionsView(View):
    TITLE = "Sessions"
    MUTATING = frozenset({"delete"})
    COLUMNS = (
        ("tenant", "Tenant", 14),
        ("session", "Session", 12),
        ("protocol", "Protocol", 10),
        ("last_seen", "Last seen", 14),
        ("client", "Client", None),
    )
    TASK_COLUMNS = (
        ("tenant", "Tenant", 14),
        ("task", "Task", 12),
        ("status", "Status", 16),
        ("age", "Age", 10),
        ("tool", "Tool", None),
    )
    DEFAULT_CSS = """
    SessionsView #sessions-tasks-title { height: 1; border-top: solid $accent; padding: 0 1; }
    SessionsView #sessions-tasks { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("d", "delete", "End")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessions: dict[str, dict[str, Any]] = {}

    def compose_extra(self) -> ComposeResult:
        yield Static("Tasks", id="sessions-tasks-title")
        yield LiveTable(self.TASK_COLUMNS, id="sessions-tasks")

    async def load(self) -> None:
        await self._load_sessions()
        tasks = (await self.api.tasks())["tasks"]
        open_count = sum(1 for t in tasks if t["status"] in ("working", "input_required"))
        self.query_one("#sessions-tasks-title", Static).update(
            f"Tasks: {open_count} open, {len(tasks) - open_count} finished (kept for their TTL)"
        )
        rows: list[Row] = [
            (
                f"{t['tenant']}{_SEPARATOR}{t['task']}",
                [t["tenant"], t["task"], t["status"], fmt_duration(t["age_s"]), t["tool"]],
            )
            for t in tasks
        ]
        self.query_one("#sessions-tasks", LiveTable).sync(rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter on a task shows nothing more than its row: only sessions have details.
        if event.data_table is self.table:
            super().on_data_table_row_selected(event)
        else:
            event.stop()

    async def _load_sessions(self) -> None:
        body = await self.api.sessions()
        # Session ids are unique per tenant only, so the row key carries both.
        self._sessions = {
            f"{s['tenant']}{_SEPARATOR}{s['session_id']}": s for s in body["sessions"]
        }
        rows: list[Row] = []
        for key, session in self._sessions.items():
            client = session.get("client") or {}
            client_text = " ".join(str(v) for v in (client.get("name"), client.get("version")) if v)
            rows.append(
                (
                    key,
                    [
                        session["tenant"],
                        shorten(session["session_id"], 11),
                        session["protocol_version"],
                        fmt_time(session["last_seen"]),
                        client_text or "-",
                    ],
                )
            )
        self.show_rows(rows)

    async def open_selected(self) -> None:
        key = self.selected()
        if key is None:
            return
        session = dict(self._sessions[key])
        session["created_at"] = fmt_time(session["created_at"])
        session["last_seen"] = fmt_time(session["last_seen"])
        await self.ask(DetailsModal(f"Session of tenant {session['tenant']}", session))

    def action_delete(self) -> None:
        self.run_verb(self._end)

    async def _end(self) -> None:
        key = self.selected()
        if key is None:
            return
        session = self._sessions[key]
        client = (session.get("client") or {}).get("name") or "its client"
        short = shorten(session["session_id"], 11)
        confirmed = await self.ask(
            ConfirmModal(
                f"End session {short} of tenant {session['tenant']}?",
                f"{client} loses this session: its next request gets 404 and it must "
                "initialize a new one. Events not yet replayed are dropped.",
                "End session",
            )
        )
        if not confirmed:
            return
        await self.api.end_session(session["tenant"], session["session_id"])
        self.notify(f"Ended session {short}.")
        await self.tui.refresh_now()
