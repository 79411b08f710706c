"""Sessions: list the open ones, see one, end one."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from smcp_box.tui.format import fmt_time, shorten
from smcp_box.tui.modals import ConfirmModal, DetailsModal
from smcp_box.tui.views.base import View
from smcp_box.tui.widgets import Row

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
    BINDINGS: ClassVar[list[BindingType]] = [Binding("d", "delete", "End")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessions: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
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
