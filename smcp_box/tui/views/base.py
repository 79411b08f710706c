"""What every view shares: a live table, the ``/`` filter, verbs run as workers, and the
read-only guard.

Key convention (the same key is the same verb on every view that has the verb):
``n`` new, ``d`` delete (remove / revoke / end), ``e`` enable or disable, ``l`` limits,
``m`` reload module, ``f`` follow, ``enter`` details, ``/`` filter, ``r`` refresh.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input

from smcp_box.tui.api import AdminApi
from smcp_box.tui.widgets import Cell, LiveTable, Row

if TYPE_CHECKING:
    from smcp_box.tui.app import AdminTui

_T = TypeVar("_T")


class View(Vertical):
    TITLE: ClassVar[str] = ""
    #: Actions that change the box: hidden from the footer and refused in read-only mode.
    MUTATING: ClassVar[frozenset[str]] = frozenset()
    COLUMNS: ClassVar[Sequence[tuple[str, str, int | None]]] = ()
    DEFAULT_CSS = """
    View { height: 1fr; }
    View > .filter { display: none; height: 3; }
    View > .filter.-visible { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", show=False)
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: list[Row] = []
        self.filter_text = ""

    # --- composition -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter rows (esc clears)", classes="filter")
        yield LiveTable(self.COLUMNS, id=f"{self.id}-table")
        yield from self.compose_extra()

    def compose_extra(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> LiveTable:
        return self.query_one(LiveTable)

    @property
    def tui(self) -> AdminTui:
        return cast("AdminTui", self.app)

    @property
    def api(self) -> AdminApi:
        return self.tui.api

    def focus_main(self) -> None:
        self.table.focus()

    # --- data ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Fetch this view's data from the admin API and show it."""
        raise NotImplementedError

    def show_rows(self, rows: list[Row]) -> None:
        self._rows = rows
        self._render_rows()

    def _render_rows(self) -> None:
        needle = self.filter_text.lower()
        if needle:
            rows = [row for row in self._rows if needle in _row_text(row[1]).lower()]
        else:
            rows = self._rows
        self.table.sync(rows)

    def selected(self) -> str | None:
        return self.table.selected_key()

    # --- filter ----------------------------------------------------------------------------

    def start_filter(self) -> None:
        field = self.query_one(".filter", Input)
        field.add_class("-visible")
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._render_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.filter_text:
            self.query_one(".filter", Input).remove_class("-visible")
        self.focus_main()

    def action_clear_filter(self) -> None:
        field = self.query_one(".filter", Input)
        field.value = ""
        field.remove_class("-visible")
        self.filter_text = ""
        self._render_rows()
        self.focus_main()

    # --- verbs -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in self.MUTATING and self.tui.read_only)

    def run_verb(self, verb: Callable[[], Awaitable[None]]) -> None:
        """Run a verb as a worker (modals are awaited there), reporting failures as toasts."""
        self.tui.run_verb(verb)

    async def ask(self, screen: ModalScreen[_T]) -> _T:
        return await self.app.push_screen_wait(screen)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.run_verb(self.open_selected)

    async def open_selected(self) -> None:
        """Enter on a row: show its details (views override)."""


def _row_text(cells: Sequence[Cell]) -> str:
    return " ".join(cell.plain if isinstance(cell, Text) else str(cell) for cell in cells)
