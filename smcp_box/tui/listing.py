"""Dialogs that list the objects of one kind and change them in place (OAuth clients, a
tenant's secrets), and the form loop that keeps what was typed when the box refuses it.

A list dialog has the views' verbs: ``n`` new, ``d`` delete (after a confirm dialog), ``esc``
closes. It loads when opened and after each change; verbs run as the app's workers, so a box
that does not answer is reported as everywhere else. ``--read-only`` refuses ``n`` and ``d``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from smcp_box.errors import AdminRequestFailed, BoxError
from smcp_box.tui.api import AdminApi
from smcp_box.tui.modals import MODAL_CSS, Field, FormModal
from smcp_box.tui.widgets import LiveTable, Row

if TYPE_CHECKING:
    from smcp_box.tui.app import AdminTui

_T = TypeVar("_T")

#: Answers that mean "these values are wrong" (bad input, a clash): the form is shown again.
#: Others (the box is down, the object vanished) end the verb with a toast, as everywhere.
_CORRECTABLE = frozenset({400, 409})


class FormRefused(BoxError):
    """Values the TUI itself refuses before asking the box (two differing passwords...)."""

    kind = "bad_input"


async def submit_form(
    app: AdminTui,
    form: Callable[[Sequence[Field], str], FormModal],
    fields: Sequence[Field],
    submit: Callable[[dict[str, str]], Awaitable[_T]],
) -> _T | None:
    """Ask with ``form(fields, error)`` until ``submit(values)`` is accepted or the form is
    cancelled (None). A refusal shows the form again with the box's message and every value as
    typed, so that nothing is lost and the mistake can be corrected in place."""
    error = ""
    while True:
        values = await app.push_screen_wait(form(fields, error))
        if values is None:
            return None
        try:
            return await submit(values)
        except FormRefused as exc:
            error = exc.message
        except AdminRequestFailed as exc:
            if exc.status not in _CORRECTABLE:
                raise
            error = exc.message
        fields = [replace(spec, value=values.get(spec.name, spec.value)) for spec in fields]


class ListModal(ModalScreen[None]):
    """A titled table of objects with ``n``/``d`` verbs; subclasses load the rows and do the
    verbs (``new``, ``delete``), named in ``MUTATING`` so that read-only mode refuses them."""

    DEFAULT_CSS = (
        MODAL_CSS.format(name="ListModal")
        + """
    ListModal LiveTable { height: auto; max-height: 12; }
    ListModal .hint { color: $text-muted; margin-top: 1; }
    ListModal .keys { color: $text-muted; }
    """
    )
    MUTATING: ClassVar[frozenset[str]] = frozenset({"new", "delete"})
    COLUMNS: ClassVar[Sequence[tuple[str, str, int | None]]] = ()
    #: What ``enter`` (none when empty), ``n`` and ``d`` do here, for the line of keys.
    ENTER_LABEL: ClassVar[str] = ""
    NEW_LABEL: ClassVar[str] = "add"
    DELETE_LABEL: ClassVar[str] = "remove"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New"),
        Binding("d", "delete", "Delete"),
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(self, api: AdminApi, title: str, hint: str) -> None:
        super().__init__()
        self.api = api
        self._title = title
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title", id="list-title")
            yield LiveTable(self.COLUMNS, id="list-table")
            yield Static(self._hint, classes="hint", id="list-hint")
            yield Static(self._keys(), classes="keys", id="list-keys")

    def _keys(self) -> str:
        keys = [f"enter {self.ENTER_LABEL}"] if self.ENTER_LABEL else []
        if self.tui.read_only:
            keys.append("read-only: changes are off")
        else:
            keys += [f"n {self.NEW_LABEL}", f"d {self.DELETE_LABEL}"]
        return " · ".join([*keys, "esc close"])

    @property
    def tui(self) -> AdminTui:
        return cast("AdminTui", self.app)

    @property
    def table(self) -> LiveTable:
        return self.query_one(LiveTable)

    def selected(self) -> str | None:
        return self.table.selected_key()

    def on_mount(self) -> None:
        self.table.focus()
        self.tui.run_verb(self.reload)

    async def reload(self) -> None:
        self.table.sync(await self.rows())

    async def rows(self) -> list[Row]:
        raise NotImplementedError

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in self.MUTATING and self.tui.read_only)

    async def ask(self, screen: ModalScreen[_T]) -> _T:
        return await self.app.push_screen_wait(screen)

    def action_new(self) -> None:
        self.tui.run_verb(self.new)

    def action_delete(self) -> None:
        self.tui.run_verb(self.delete)

    def action_close(self) -> None:
        self.dismiss(None)

    async def new(self) -> None:
        raise NotImplementedError

    async def delete(self) -> None:
        raise NotImplementedError
