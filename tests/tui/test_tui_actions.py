"""Pilot tests of every TUI action, including the modal flows, against a real box."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Button, Input, Static, TextArea

from smcp_box.errors import AuthError
from smcp_box.tui.modals import ConfirmModal, FormModal, HelpModal, NewKeyModal
from smcp_box.tui.views.tenants import LIMIT_FIELDS
from tests.admin.support import RunningBox
from tests.tui.support import (
    SIZE,
    cell_texts,
    make_app,
    on_screen,
    palette_offers,
    table,
    until,
)


def modal_text(app: object, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())  # type: ignore[attr-defined]


async def test_enable_disable_toggle(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("e")
        await until(pilot, lambda: not rb.box.tenants.require("notes").enabled)
        await until(pilot, lambda: "disabled" in cell_texts(app, "tenants", 1))
        await pilot.press("e")
        await until(pilot, lambda: rb.box.tenants.require("notes").enabled)


async def test_limits_form(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        fuel = app.screen.query_one("#field-fuel", Input)
        assert fuel.value == "2000000000"
        fuel.value = "3000000"
        fuel.focus()
        await pilot.press("enter")
        await until(pilot, lambda: rb.box.tenants.require("notes").module.limits.fuel == 3_000_000)


async def test_limits_form_every_field_and_the_buttons_are_reachable(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        form = app.screen
        expected = [f"field-{name}" for name, _ in LIMIT_FIELDS] + ["cancel", "submit"]
        assert len(LIMIT_FIELDS) == 10
        visited: list[str | None] = []
        for _ in expected:
            focused = form.focused
            assert focused is not None
            visited.append(focused.id)
            await until(pilot, lambda w=focused: on_screen(app, w))  # type: ignore[misc]
            await pilot.press("tab")
        assert visited == expected
        assert on_screen(app, form.query_one("#submit", Button))
        # The last field: typed into after tabbing to it, then submitted with the Apply button.
        last = form.query_one(f"#field-{LIMIT_FIELDS[-1][0]}", Input)
        last.focus()
        await pilot.press(*"2000")
        assert last.value == "2000"
        form.query_one("#submit", Button).focus()
        await pilot.press("enter")
        notes = rb.box.tenants.require("notes")
        await until(pilot, lambda: notes.module.limits.max_host_calls == 2000)


async def test_limits_form_escape_cancels(rb: RunningBox) -> None:
    app = make_app(rb)
    before = rb.box.tenants.require("notes").module.limits
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        await pilot.press(*"7", "escape")
        await until(pilot, lambda: not isinstance(app.screen, FormModal))
        await pilot.press("question_mark")  # handled after the form's result
        await until(pilot, lambda: isinstance(app.screen, HelpModal))
    assert rb.box.tenants.require("notes").module.limits == before


async def test_reload(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        before = rb.box.tenants.require("notes")
        await pilot.press("m")
        await until(pilot, lambda: rb.box.tenants.require("notes") is not before)
        rows = (await rb.client.audit(event="admin.tenant.reload"))["entries"]
        assert rows[0]["tenant"] == "notes"


async def test_remove_confirms_with_cancel_focused(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Remove tenant notes?" in modal_text(app, "#confirm-title")
        consequence = modal_text(app, "#confirm-consequence")
        assert "stops serving" in consequence
        assert "cannot be undone" in consequence
        focused = app.focused
        assert isinstance(focused, Button)
        assert focused.id == "cancel"
        await pilot.press("enter")  # a reflexive Enter cancels
        await until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert rb.box.tenants.get("notes") is not None
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("tab", "enter")  # to "Remove", then press it
        await until(pilot, lambda: rb.box.tenants.get("notes") is None)
        await until(pilot, lambda: cell_texts(app, "tenants") == ["utils"])
        # The tenants folder is read-only input: removing hides the tenant, its files stay.
        assert (rb.tenants_dir / "notes" / "tenant.toml").is_file()


async def test_add_tenant_from_a_folder(rb: RunningBox, tmp_path: Path) -> None:
    source = tmp_path / "incoming"
    source.mkdir()
    manifest = (rb.tenants_dir / "utils" / "tenant.toml").read_text()
    (source / "tenant.toml").write_text(manifest.replace('name = "utils"', 'name = "added"'))
    (source / "utils.wasm").write_bytes((rb.tenants_dir / "utils" / "utils.wasm").read_bytes())
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        app.screen.query_one("#field-path", Input).value = str(source)
        await pilot.press("enter")
        await until(pilot, lambda: rb.box.tenants.get("added") is not None)
        await until(pilot, lambda: "added" in cell_texts(app, "tenants"))


async def test_add_tenant_error_is_shown_not_raised(rb: RunningBox, tmp_path: Path) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        app.screen.query_one("#field-path", Input).value = str(tmp_path / "missing")
        await pilot.press("enter")
        await until(pilot, lambda: any("cannot read" in str(n.message) for n in app._notifications))
        assert app.is_running


async def test_create_key_shows_it_once_with_a_snippet(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("2", "n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        app.screen.query_one("#field-label", Input).value = "from-tui"
        app.screen.query_one("#submit", Button).press()
        await until(pilot, lambda: isinstance(app.screen, NewKeyModal))
        keys = (await rb.client.keys("notes"))["keys"]
        assert [k["label"] for k in keys] == ["from-tui"]
        secret = modal_text(app, "#secret")
        assert secret.startswith(f"smcp_{keys[0]['key_id']}_")
        # The key is shown whole, on one line.
        assert len(secret) <= app.screen.query_one("#secret", Static).content_size.width
        # The client config never wraps: what a selection copies is the JSON itself.
        area = app.screen.query_one("#snippet", TextArea)
        assert not area.soft_wrap
        assert area.wrapped_document.height == area.document.line_count
        # Selecting it with the mouse (click, then f7 for all) and ctrl+c copies the JSON whole.
        await pilot.click("#snippet")
        assert app.screen.focused is area
        await pilot.press("f7", "ctrl+c")
        config = json.loads(app.clipboard)
        server = config["mcpServers"]["notes"]
        assert server["url"] == "http://127.0.0.1:8765/t/notes/mcp"
        assert server["headers"]["Authorization"] == f"Bearer {secret}"
        await pilot.press("c")  # copy: must not fail even where the terminal has no clipboard
        assert app.clipboard == secret
        await pilot.press("s")
        assert json.loads(app.clipboard) == config
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, NewKeyModal))
        await until(pilot, lambda: table(app, "keys").row_count == 1)
        # Shown once: the table never holds the secret.
        assert all(secret not in str(cell) for cell in table(app, "keys").get_row_at(0))


async def test_revoke_key_confirms(rb: RunningBox) -> None:
    created = await rb.client.create_key("notes", "old laptop")
    notes = rb.box.tenants.require("notes")
    headers = {"authorization": f"Bearer {created['key']}"}
    await rb.box.authenticator.authenticate(notes, headers, None)
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: table(app, "keys").row_count == 1)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        title = modal_text(app, "#confirm-title")
        assert created["key_id"] in title
        assert "old laptop" in title
        assert "refused (401)" in modal_text(app, "#confirm-consequence")
        assert app.focused is not None
        assert app.focused.id == "cancel"
        await pilot.press("tab", "enter")
        await until(pilot, lambda: "revoked" in cell_texts(app, "keys", 2))
    try:
        await rb.box.authenticator.authenticate(notes, headers, None)
    except AuthError:
        pass
    else:
        raise AssertionError("a revoked key still authenticates")


async def test_end_session_confirms(rb: RunningBox) -> None:
    await rb.box.store.create_session("notes", "sid-end-me", "2025-11-25", {"name": "ide"})
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: table(app, "sessions").row_count == 1)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "of tenant notes" in modal_text(app, "#confirm-title")
        assert "ide loses this session" in modal_text(app, "#confirm-consequence")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert await rb.box.store.count_open_sessions("notes") == 1
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("tab", "enter")
        await until(pilot, lambda: table(app, "sessions").row_count == 0)
    assert await rb.box.store.count_open_sessions("notes") == 0


async def test_read_only_hides_and_refuses_changes(rb: RunningBox) -> None:
    app = make_app(rb, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await until(pilot, lambda: "READ-ONLY" in str(app.query_one("#status").render()))
        shown = {key for key, active in app.active_bindings.items() if active.enabled}
        assert not {"d", "e", "l", "m", "n"} & shown
        # Help after the refused keys: once it shows, they have been handled (in order).
        await pilot.press("d", "e", "n", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpModal))
        assert not [s for s in app.screen_stack if isinstance(s, (ConfirmModal, FormModal))]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpModal))
        assert rb.box.tenants.require("notes").enabled
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Tenants: Remove" not in titles
        assert "Audit: Follow" in titles


async def test_palette_offers_every_action_and_runs_them(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        expected = {
            "Tenants: Add",
            "Tenants: Remove",
            "Tenants: On/Off",
            "Tenants: Limits",
            "Tenants: Reload",
            # Keys left out of the footer for room are in the palette too.
            "Tenants: Approve changed definitions",
            "Tenants: Blobs",
            "Keys: Create",
            "Keys: Revoke",
            "Sessions: End",
            "Audit: Follow",
            "Go to Tenants",
            "Go to Keys",
            "Go to Sessions",
            "Go to Audit",
            "Go to Metrics",
            "Refresh",
            "Filter rows",
            "Help",
        }
        assert expected <= titles
        await pilot.press("ctrl+p")
        await pilot.press(*"go to audit")
        await until(pilot, lambda: palette_offers(app, "Go to Audit"))
        await pilot.press("enter")
        await until(pilot, lambda: app.query_one("TabbedContent").active == "audit")  # type: ignore[attr-defined]
        await pilot.press("ctrl+p")
        await pilot.press(*"tenants: on/off")
        await until(pilot, lambda: palette_offers(app, "Tenants: On/Off"))
        await pilot.press("enter")
        await until(pilot, lambda: not rb.box.tenants.require("notes").enabled)
