"""Fleet: every box sharing this box's database, from their heartbeats (up, draining or gone,
the age of the last beat, the sessions each counted), and the database's health. Read-only:
draining is ``smcp-box drain`` on the box itself."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from smcp_box.tui.format import fmt_duration, fmt_time
from smcp_box.tui.modals import DetailsModal
from smcp_box.tui.views.base import View
from smcp_box.tui.widgets import Row

#: How each status looks in the table: a gone box stands out.
STATUS_STYLE = {"up": "green", "draining": "yellow", "gone": "bold red"}


class FleetView(View):
    TITLE = "Fleet"
    COLUMNS = (
        ("box", "Box", 14),
        ("address", "Address", 20),
        ("status", "Status", 9),
        ("beat", "Last beat", 10),
        ("sessions", "Sessions", 8),
        ("version", "Version", None),
    )
    DEFAULT_CSS = """
    FleetView #fleet-summary { height: 3; padding: 0 1; border-bottom: solid $accent; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._boxes: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="fleet-summary")
        yield from super().compose()

    async def load(self) -> None:
        status = await self.api.status()
        boxes = status.get("fleet")
        if boxes is None:
            self.query_one("#fleet-summary", Static).update(
                "This box's admin API reports no fleet (an older release)."
            )
            self.show_rows([])
            return
        self._boxes = {b["box_id"]: b for b in boxes}
        self.query_one("#fleet-summary", Static).update(_summary(status))
        rows: list[Row] = [
            (
                b["box_id"],
                [
                    ("* " if b["this_box"] else "  ") + b["box_id"],
                    b["address"],
                    Text(b["status"], style=STATUS_STYLE.get(b["status"], "")),
                    fmt_duration(b["beat_age_s"]) + " ago",
                    str(b["sessions"]),
                    b["version"],
                ],
            )
            for b in boxes
        ]
        self.show_rows(rows)

    async def open_selected(self) -> None:
        key = self.selected()
        if key is None or key not in self._boxes:
            return
        details = dict(self._boxes[key])
        details["last_beat"] = fmt_time(details["last_beat"])
        details["started_at"] = fmt_time(details["started_at"])
        await self.ask(DetailsModal(f"Box {key}", details))


def _summary(status: dict[str, Any]) -> Text:
    """Two lines: the database's health, and how many boxes are in each state."""
    database, this = status["database"], status["box"]
    text = Text("Database ")
    text.append(f"{database['backend']} {database['location']}", style="bold")
    if database["reachable"]:
        text.append(f"  reachable, {database['latency_ms']:.1f} ms", style="green")
    else:
        text.append(f"  UNREACHABLE: {database['error']}", style="bold red")
    counts = Counter(b["status"] for b in status["fleet"])
    text.append(
        f"\nBoxes: {counts['up']} up, {counts['draining']} draining, {counts['gone']} gone"
        f" · this box (*) {this['box_id']}"
    )
    if this["draining"]:
        text.append("  DRAINING (smcp-box drain --undo)", style="bold yellow")
    return text
