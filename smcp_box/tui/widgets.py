"""Widgets shared by the TUI's views: a table that updates in place, and the status line."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable, Static

Cell = str | Text
Row = tuple[str, Sequence[Cell]]


class LiveTable(DataTable[Cell]):
    """A DataTable fed whole snapshots, changed in place so the cursor never jumps.

    Invariant: after :meth:`sync` the cursor is on the row with the same key as before when that
    row still exists, else at the same index (clamped), and the view does not scroll.
    """

    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """

    #: Columns of width None share what the fixed ones leave, never less than this.
    MIN_FLEX_WIDTH = 6

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._spec = list(columns)
        self._rows: list[Row] = []
        self._flex_width = -1

    def _column_widths(self) -> list[int]:
        fixed = sum(width for _, _, width in self._spec if width is not None)
        flexible = sum(1 for _, _, width in self._spec if width is None)
        # Room for cell padding on both sides of each column and a vertical scrollbar (2).
        padding = 2 * self.cell_padding * len(self._spec) + 2
        share = (self.size.width - fixed - padding) // max(1, flexible)
        self._flex_width = max(self.MIN_FLEX_WIDTH, share)
        return [self._flex_width if width is None else width for _, _, width in self._spec]

    def on_mount(self) -> None:
        for (key, label, _), width in zip(self._spec, self._column_widths(), strict=True):
            self.add_column(label, key=key, width=width)

    def on_resize(self) -> None:
        # Flexible columns fill the width, so that nothing scrolls sideways at 80 columns and
        # wide terminals show more text. Rebuilding (public API only) is fine: resizes are rare.
        previous = self._flex_width
        widths = self._column_widths()
        if self._flex_width == previous or not self.columns:
            return
        selected, index = self.selected_key(), self.cursor_row
        self.clear(columns=True)
        for (key, label, _), width in zip(self._spec, widths, strict=True):
            self.add_column(label, key=key, width=width)
        for key, cells in self._rows:
            self.add_row(*cells, key=key)
        self._restore_cursor(selected, index)

    def _restore_cursor(self, selected: str | None, index: int) -> None:
        if not self._rows:
            return
        keys = [key for key, _ in self._rows]
        target = keys.index(selected) if selected in keys else min(index, len(keys) - 1)
        self.move_cursor(row=target, animate=False, scroll=False)

    def row_keys(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return str(self.ordered_rows[self.cursor_row].key.value)

    def sync(self, rows: Sequence[Row]) -> None:
        self._rows = list(rows)
        wanted = [key for key, _ in rows]
        current = self.row_keys()
        columns = [key for key, _, _ in self._spec]
        if wanted[: len(current)] == current:
            # Same rows (maybe more at the end): update changed cells, append the new rows.
            for key, cells in rows[: len(current)]:
                for column, value in zip(columns, cells, strict=True):
                    if self.get_cell(key, column) != value:
                        self.update_cell(key, column, value)
            for key, cells in rows[len(current) :]:
                self.add_row(*cells, key=key)
            return
        selected = self.selected_key()
        index = self.cursor_row
        scroll_y = self.scroll_y
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._restore_cursor(selected, index)
        self.scroll_to(y=scroll_y, animate=False, immediate=True)


class StatusLine(Static):
    """One line: what the box says about itself, or that it is not answering ("stale")."""

    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; background: $panel; }
    StatusLine.-stale { background: $error; color: $text; text-style: bold; }
    """

    def show_live(self, text: str) -> None:
        self.remove_class("-stale")
        self.update(Text.assemble(("● ", "bold green"), text))

    def show_stale(self, reason: str, data_from: str | None = None) -> None:
        self.add_class("-stale")
        since = f" (data from {data_from})" if data_from else ""
        self.update(Text(f"○ STALE{since}: {reason}"))
