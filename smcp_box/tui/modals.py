"""Modal screens: confirmation, forms, the one-time key reveal, details and help."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

_MODAL_CSS = """
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

    DEFAULT_CSS = _MODAL_CSS.format(name="ConfirmModal")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, consequence: str, confirm_label: str) -> None:
        super().__init__()
        self._title = title
        self._consequence = consequence
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title", id="confirm-title")
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


class FormModal(ModalScreen[dict[str, str] | None]):
    """A small form; dismisses with the field values, or None when cancelled."""

    DEFAULT_CSS = (
        _MODAL_CSS.format(name="FormModal")
        + """
    FormModal Input, FormModal Select { margin-bottom: 1; }
    FormModal .help { color: $text-muted; margin-bottom: 1; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: Sequence[Field], submit_label: str, help: str = ""):
        super().__init__()
        self._title = title
        self._fields = list(fields)
        self._submit_label = submit_label
        self._help = help

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            if self._help:
                yield Static(self._help, classes="help")
            for spec in self._fields:
                yield Label(spec.label)
                if spec.choices:
                    options = [(choice, choice) for choice in spec.choices]
                    initial = spec.value if spec.value in spec.choices else Select.BLANK
                    yield Select(options, value=initial, id=f"field-{spec.name}", allow_blank=True)
                else:
                    yield Input(spec.value, placeholder=spec.placeholder, id=f"field-{spec.name}")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._submit_label, id="submit", variant="primary")

    def values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for spec in self._fields:
            widget = self.query_one(f"#field-{spec.name}")
            if isinstance(widget, Select):
                value = widget.value
                values[spec.name] = "" if value is Select.BLANK else str(value)
            elif isinstance(widget, Input):
                values[spec.name] = widget.value.strip()
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

    Sized for 80x24: no buttons, the keys are named on the last line instead.
    """

    DEFAULT_CSS = (
        _MODAL_CSS.format(name="NewKeyModal")
        + """
    NewKeyModal > Vertical { overflow-y: auto; }
    NewKeyModal .title { margin-bottom: 0; }
    NewKeyModal #secret { background: $boost; text-style: bold; padding: 0 1; margin: 1 0; }
    NewKeyModal .hint { color: $warning; }
    NewKeyModal #snippet { background: $boost; padding: 0 1; margin-top: 1; }
    NewKeyModal .keys { margin-top: 1; color: $text-muted; }
    """
    )
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
        with Vertical():
            yield Label(
                f"New API key {created['key_id']} for tenant {created['tenant']}", classes="title"
            )
            yield Static(Text(str(created["key"])), id="secret")
            yield Static(
                "Shown ONCE: it cannot be shown again. Copy it now (c, in terminals with OSC 52 "
                "clipboard access) or select it with the mouse (shift+drag).",
                classes="hint",
            )
            yield Static(Text(client_snippet(created)), id="snippet")
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
    """Read-only details of one object, as aligned "key: value" lines."""

    DEFAULT_CSS = (
        _MODAL_CSS.format(name="DetailsModal")
        + """
    DetailsModal VerticalScroll { height: auto; max-height: 18; }
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


def render_details(details: dict[str, Any], indent: int = 0) -> Text:
    text = Text()
    width = max((len(key) for key in details), default=0)
    for key, value in details.items():
        text.append(" " * indent + f"{key:<{width}}  ", style="bold")
        if isinstance(value, dict) and value:
            text.append("\n")
            text.append_text(render_details(value, indent + 2))
            continue
        if isinstance(value, list | dict):
            shown = ", ".join(str(item) for item in value) if isinstance(value, list) else ""
            text.append((shown or "-") + "\n")
        else:
            text.append(("-" if value is None or value == "" else str(value)) + "\n")
    return text


class HelpModal(ModalScreen[None]):
    DEFAULT_CSS = (
        _MODAL_CSS.format(name="HelpModal")
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
