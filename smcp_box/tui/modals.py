"""Modal screens: confirmation, forms, the one-time key reveal, details and help."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 100%; height: auto; max-height: 100%;
    border: thick $accent; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; width: 100%; margin-bottom: 1; }}
{name} .buttons {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} .buttons Button {{ margin-left: 1; }}
"""


class ConfirmModal(ModalScreen[bool]):
    """Asks before a destructive action. Focus starts on Cancel, so a reflexive Enter is safe."""

    DEFAULT_CSS = (
        MODAL_CSS.format(name="ConfirmModal")
        + """
    ConfirmModal #confirm-body { height: auto; max-height: 15; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, consequence: str, confirm_label: str) -> None:
        super().__init__()
        self._title = title
        self._consequence = consequence
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title", id="confirm-title")
            # However long the consequence, the buttons stay on screen (it scrolls).
            with VerticalScroll(id="confirm-body", can_focus=False):
                yield Static(self._consequence, id="confirm-consequence")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self._confirm_label, id="confirm", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    #: When set, the field is a drop-down of these values.
    choices: Sequence[str] = field(default_factory=tuple)
    #: Mask what is typed (a password).
    password: bool = False


class FormModal(ModalScreen[dict[str, str] | None]):
    """A small form; dismisses with the field values, or None when cancelled.

    Sized for 80x24 whatever the number of fields: the fields scroll in a body of at most 16
    lines (the focused one is scrolled into view) while the title and the buttons stay on screen.
    ``two_column`` puts each label left of a one-line input, for forms of many short values (the
    limits). ``error`` is what the box said about the values last submitted, when the form is
    shown again with them to be corrected.
    """

    DEFAULT_CSS = (
        MODAL_CSS.format(name="FormModal")
        + """
    FormModal #form-body { height: auto; max-height: 16; }
    FormModal #form-body Input, FormModal #form-body Select { margin-bottom: 1; }
    FormModal .help { color: $text-muted; margin-bottom: 1; }
    FormModal .error { color: $error; text-style: bold; margin-bottom: 1; }
    FormModal .buttons { margin-top: 0; }
    FormModal #form-grid {
        grid-size: 2; grid-columns: 1fr 22; grid-rows: auto; grid-gutter: 0 1; height: auto;
    }
    FormModal #form-grid Label { width: 100%; }
    FormModal #form-grid Input, FormModal #form-grid Select { margin-bottom: 0; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        submit_label: str,
        help: str = "",
        *,
        two_column: bool = False,
        error: str = "",
    ):
        super().__init__()
        self._title = title
        self._fields = list(fields)
        self._submit_label = submit_label
        self._help = help
        self._two_column = two_column
        self._error = error

    def _field_widget(self, spec: Field) -> Input | Select[str]:
        compact = self._two_column
        if spec.choices:
            options = [(choice, choice) for choice in spec.choices]
            initial = spec.value if spec.value in spec.choices else Select.NULL
            return Select(
                options, value=initial, id=f"field-{spec.name}", allow_blank=True, compact=compact
            )
        return Input(
            spec.value,
            placeholder=spec.placeholder,
            id=f"field-{spec.name}",
            compact=compact,
            password=spec.password,
        )

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            # Not focusable itself: tab goes from field to field, each scrolled into view.
            with VerticalScroll(id="form-body", can_focus=False):
                if self._error:
                    yield Static(Text(self._error), classes="error", id="form-error")
                if self._help:
                    yield Static(self._help, classes="help")
                if self._two_column:
                    with Grid(id="form-grid"):
                        for spec in self._fields:
                            yield Label(spec.label, id=f"label-{spec.name}")
                            yield self._field_widget(spec)
                else:
                    for spec in self._fields:
                        yield Label(spec.label, id=f"label-{spec.name}")
                        yield self._field_widget(spec)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._submit_label, id="submit", variant="primary")

    def values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for spec in self._fields:
            widget = self.query_one(f"#field-{spec.name}")
            if isinstance(widget, Select):
                values[spec.name] = "" if widget.is_blank() else str(widget.value)
            elif isinstance(widget, Input):
                # A masked value (password, secret) is kept exactly as typed: spaces in it are
                # part of it, and nobody can see them to notice they were dropped.
                values[spec.name] = widget.value if spec.password else widget.value.strip()
        return values

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(self.values())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.values() if event.button.id == "submit" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def client_snippet(created: dict[str, Any]) -> str:
    """The client config as JSON to paste into an MCP client's settings (mcpServers)."""
    return json.dumps(created.get("client_config", {}), indent=1)


class NewKeyModal(ModalScreen[None]):
    """Shows a new key's secret once, with a copy hint and a ready-to-paste client config.

    Sized for 80x24: no buttons, the keys are named on the last line instead. The key fits on
    one line; the client config is in a read-only text area that never wraps (it scrolls
    sideways), so that selecting it (mouse, then ctrl+c) or ``s`` copies valid JSON.
    """

    DEFAULT_CSS = (
        MODAL_CSS.format(name="NewKeyModal")
        + """
    NewKeyModal > Vertical { overflow-y: auto; }
    NewKeyModal .title { margin-bottom: 0; }
    NewKeyModal #secret { background: $boost; text-style: bold; padding: 0 1; margin: 1 0; }
    NewKeyModal .hint { color: $warning; }
    NewKeyModal #snippet {
        background: $boost; margin-top: 1; border: none; padding: 0 1;
        scrollbar-size-horizontal: 1;
    }
    NewKeyModal .keys { margin-top: 1; color: $text-muted; }
    """
    )
    #: Nothing focused at first, so that enter and escape close the dialog; a click focuses
    #: the client config, for selecting and ctrl+c.
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy_key", "Copy key"),
        Binding("s", "copy_snippet", "Copy config"),
        Binding("escape,enter", "close", "Done"),
    ]

    def __init__(self, created: dict[str, Any]) -> None:
        super().__init__()
        self._created = created

    def compose(self) -> ComposeResult:
        created = self._created
        snippet = client_snippet(created)
        with Vertical():
            yield Label(
                f"New API key {created['key_id']} for tenant {created['tenant']}", classes="title"
            )
            yield Static(Text(str(created["key"]), no_wrap=True), id="secret")
            yield Static(
                "Shown ONCE: it cannot be shown again. Copy it now (c, in terminals with OSC 52 "
                "clipboard access) or select it with the mouse (shift+drag).",
                classes="hint",
            )
            area = TextArea(
                snippet,
                read_only=True,
                soft_wrap=False,
                show_cursor=False,
                highlight_cursor_line=False,
                compact=True,
                id="snippet",
            )
            # Every line, and one more for the sideways scroll bar.
            area.styles.height = snippet.count("\n") + 2
            yield area
            yield Static("c copy key · s copy client config · enter/esc done", classes="keys")

    def action_copy_key(self) -> None:
        self.app.copy_to_clipboard(str(self._created["key"]))
        self.notify("Key copied to the clipboard (if the terminal allows it).")

    def action_copy_snippet(self) -> None:
        self.app.copy_to_clipboard(client_snippet(self._created))
        self.notify("Client config copied to the clipboard (if the terminal allows it).")

    def action_close(self) -> None:
        self.dismiss(None)


class DetailsModal(ModalScreen[None]):
    """Read-only details of one object in two columns: labels, and values that wrap (and
    scroll) in their own column only."""

    DEFAULT_CSS = (
        MODAL_CSS.format(name="DetailsModal")
        + """
    DetailsModal VerticalScroll { height: auto; max-height: 16; }
    DetailsModal .buttons { margin-top: 0; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, details: dict[str, Any]) -> None:
        super().__init__()
        self._title = title
        self._details = details

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            with VerticalScroll():
                yield Static(render_details(self._details), id="details")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self, _: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


def show_value(value: Any) -> str:
    """One value as a person reads it: booleans as yes/no, lists joined, nothing as "-"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(show_value(item) for item in value) or "-"
    if value is None or value == "" or value == {}:
        return "-"
    return str(value)


def _detail_rows(details: dict[str, Any], indent: int = 0) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in details.items():
        label = " " * indent + str(key)
        if isinstance(value, dict) and value:
            rows.append((label, ""))
            rows.extend(_detail_rows(value, indent + 2))
        else:
            rows.append((label, show_value(value)))
    return rows


def render_details(details: dict[str, Any]) -> Table:
    """A grid of two columns: the labels never wrap; a long value wraps (or, with no spaces,
    folds) inside the value column, never under the labels."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold", ratio=1)
    for label, value in _detail_rows(details):
        # As Text, never markup: values come from modules and clients ("[rule] excerpt").
        grid.add_row(Text(label), Text(value))
    return grid


class HelpModal(ModalScreen[None]):
    DEFAULT_CSS = (
        MODAL_CSS.format(name="HelpModal")
        + """
    HelpModal VerticalScroll { height: auto; max-height: 19; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, text: Text) -> None:
        super().__init__()
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("smcp-box TUI: keys", classes="title")
            with VerticalScroll():
                yield Static(self._text, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
