"""The audit log: newest rows first loaded, new rows appended as they come, follow mode."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from smcp_box.tui.format import fmt_time
from smcp_box.tui.modals import DetailsModal
from smcp_box.tui.views.base import View
from smcp_box.tui.widgets import Row

#: Rows kept in the view; older ones are dropped (page back with the CLI: smcp-box audit).
MAX_ROWS = 1000
PAGE = 200
_OUTCOME_STYLES = {"ok": "green", "denied": "bold red", "error": "red"}


class AuditView(View):
    TITLE = "Audit"
    COLUMNS = (
        ("id", "#", 5),
        ("ts", "Time", 14),
        ("event", "Event", 20),
        ("tenant", "Tenant", 10),
        ("outcome", "Outcome", 7),
        ("actor", "Actor", None),
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("f", "follow", "Follow")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._entries: dict[str, dict[str, Any]] = {}
        self._last_id: int | None = None
        self.following = False

    async def load(self) -> None:
        if self._last_id is None:
            # Newest first from the API; shown oldest first, like a log.
            fresh = list(reversed((await self.api.audit(limit=PAGE))["entries"]))
        else:
            fresh = (await self.api.audit(after_id=self._last_id, limit=PAGE))["entries"]
        if not fresh and self._last_id is not None:
            return
        first_load = self._last_id is None
        for entry in fresh:
            self._entries[str(entry["id"])] = entry
            self._last_id = max(self._last_id or 0, int(entry["id"]))
        if self._last_id is None:
            self._last_id = 0
        while len(self._entries) > MAX_ROWS:
            del self._entries[next(iter(self._entries))]
        rows: list[Row] = [
            (
                key,
                [
                    str(entry["id"]),
                    fmt_time(entry["ts"]),
                    entry["event"],
                    entry["tenant"] or "-",
                    Text(entry["outcome"], style=_OUTCOME_STYLES.get(entry["outcome"], "")),
                    entry["actor"],
                ],
            )
            for key, entry in self._entries.items()
        ]
        self.show_rows(rows)
        # A log is read from its newest end: start there, and stay there while following.
        if (first_load or self.following) and self.table.row_count:
            self.table.move_cursor(row=self.table.row_count - 1, animate=False)

    async def open_selected(self) -> None:
        key = self.selected()
        if key is None:
            return
        entry = dict(self._entries[key])
        entry["ts"] = fmt_time(entry["ts"])
        await self.ask(DetailsModal(f"Audit row {key}", entry))

    def action_follow(self) -> None:
        self.following = not self.following
        if self.following and self.table.row_count:
            self.table.move_cursor(row=self.table.row_count - 1, animate=False)
        self.notify("Following new audit rows." if self.following else "Stopped following.")
