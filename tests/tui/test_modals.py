"""The dialogs on their own, at 80x24: long forms scroll with the buttons on screen, details
keep labels and values in their own columns."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from textual.app import App
from textual.widgets import Button, Input

from smcp_box.tui.modals import Field, FormModal, render_details
from tests.tui.support import SIZE, on_screen, until


class FormApp(App[None]):
    def __init__(self, form: FormModal) -> None:
        super().__init__()
        self.form = form
        self.result: dict[str, str] | str | None = "not dismissed"

    def on_mount(self) -> None:
        self.push_screen(self.form, callback=self._done)

    def _done(self, result: dict[str, str] | None) -> None:
        self.result = result


LONG_FORM = [Field(f"f{i}", f"Field number {i}", str(i)) for i in range(12)]


async def test_a_long_form_scrolls_each_focused_field_into_view_and_keeps_the_buttons() -> None:
    app = FormApp(FormModal("Many fields", LONG_FORM, "Save", help="Twelve full-size inputs."))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen is app.form)  # type: ignore[arg-type,return-value]
        form = app.form
        last = form.query_one("#field-f11", Input)
        assert not on_screen(app, last)  # it really does not fit: the body scrolls
        for spec in LONG_FORM:
            focused = form.focused
            assert focused is not None
            assert focused.id == f"field-{spec.name}"
            await until(pilot, lambda w=focused: on_screen(app, w))  # type: ignore[misc]
            assert on_screen(app, form.query_one("#submit", Button))
            await pilot.press("tab")
        assert form.focused is form.query_one("#cancel", Button)
        await pilot.press("tab", "enter")
        await until(pilot, lambda: app.result != "not dismissed")  # type: ignore[comparison-overlap]
        assert app.result == {spec.name: spec.value for spec in LONG_FORM}


async def test_escape_cancels_a_form() -> None:
    app = FormApp(FormModal("Many fields", LONG_FORM, "Save"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen is app.form)  # type: ignore[arg-type,return-value]
        await pilot.press("x", "escape")
        await until(pilot, lambda: app.result != "not dismissed")  # type: ignore[comparison-overlap]
        assert app.result is None


def rendered_lines(details: dict[str, Any], width: int) -> list[str]:
    out = io.StringIO()
    Console(width=width, color_system=None, file=out).print(render_details(details))
    return out.getvalue().splitlines()


def test_details_wrap_long_values_in_the_value_column_only() -> None:
    description = "a long description " * 8
    details = {
        "name": "echo",
        "description": description.strip(),
        "enabled": True,
        "public": False,
        "module": {"sha256": "ab" * 32, "file": "echo.wasm"},
        "config_keys": [],
    }
    lines = rendered_lines(details, 60)
    labels = ["name", "description", "enabled", "public", "module", "  sha256", "  file"]
    labels.append("config_keys")
    column = max(len(label) for label in labels) + 2  # where the values start
    starts = [line[:column].rstrip() for line in lines]
    # Every line starts with a label or with blanks (a value's continuation), never with text
    # of a value, and the labels come in order.
    assert [s for s in starts if s] == labels
    assert all(line[column - 2 : column] == "  " for line in lines)
    values = "".join(line[column:].strip() for line in lines)
    assert "ab" * 32 in values
    assert "".join(description.split()) in "".join(values.split())
    by_label = {line[:column].strip(): line[column:].strip() for line in lines if line.strip()}
    assert by_label["enabled"] == "yes"
    assert by_label["public"] == "no"
    assert by_label["config_keys"] == "-"
    assert "True" not in "\n".join(lines)
    assert "False" not in "\n".join(lines)
