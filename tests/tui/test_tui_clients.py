"""The OAuth clients dialog (``c`` on Users) against a real box: pre-register a client through
the form, see it listed, remove it after the confirm dialog; a refused redirect URI shows the
box's message in the form, with what was typed kept."""

from __future__ import annotations

from textual.widgets import Input

from smcp_box.tui.modals import ConfirmModal, DetailsModal, FormModal
from smcp_box.tui.views.clients import ClientsModal, redirect_uri_list
from tests.admin.support import RunningBox
from tests.tui.support import SIZE, details_text, make_app, until
from tests.tui.test_tui_actions import modal_text


def client_rows(app: object) -> list[list[str]]:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, ClientsModal)
    table = screen.table
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def fill_client_form(app: object, name: str, uris: str) -> None:
    form = app.screen  # type: ignore[attr-defined]
    assert isinstance(form, FormModal)
    form.query_one("#field-name", Input).value = name
    field = form.query_one("#field-redirect_uris", Input)
    field.value = uris
    field.focus()


async def test_clients_add_through_the_form_list_and_remove(rb: RunningBox) -> None:
    await rb.client.add_oauth_client("Old", ["https://old.example/cb"])
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "c")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await until(pilot, lambda: len(client_rows(app)) == 1)
        assert client_rows(app)[0][:2] == ["Old", "pre"]

        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        await fill_client_form(app, "VS Code", "http://127.0.0.1/callback, vscode://auth/callback")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await until(pilot, lambda: len(client_rows(app)) == 2)
        stored = {c.client_name: c for c in await rb.box.store.oauth.list_clients()}
        added = stored["VS Code"]
        assert added.redirect_uris == ("http://127.0.0.1/callback", "vscode://auth/callback")
        row = next(r for r in client_rows(app) if r[0] == "VS Code")
        assert row[2] == added.client_id
        assert any(added.client_id in str(n.message) for n in app._notifications)

        # d asks first, with Cancel focused: a reflexive enter removes nothing.
        app.screen.table.move_cursor(row=[r[0] for r in client_rows(app)].index("VS Code"))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Remove OAuth client VS Code?" in modal_text(app, "#confirm-title")
        assert app.focused is not None
        assert app.focused.id == "cancel"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        assert len(await rb.box.store.oauth.list_clients()) == 2
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("tab", "enter")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await until(pilot, lambda: [r[0] for r in client_rows(app)] == ["Old"])
    assert [c.client_name for c in await rb.box.store.oauth.list_clients()] == ["Old"]
    await rb.box.auditor.flush()
    events = [r["event"] for r in (await rb.client.audit(limit=10))["entries"]]
    assert "admin.oauth.client.add" in events
    assert "admin.oauth.client.remove" in events


async def test_a_refused_redirect_uri_is_shown_in_the_form_with_the_values_kept(
    rb: RunningBox,
) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "c")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        first = app.screen
        await fill_client_form(app, "Web app", "http://web.example/callback")
        await pilot.press("enter")
        # The same form again, saying why, with both values as typed.
        await until(pilot, lambda: isinstance(app.screen, FormModal) and app.screen is not first)
        error = modal_text(app, "#form-error")
        assert "http is allowed only to a loopback host; use https" in error
        assert "http://web.example/callback" in error
        form = app.screen
        assert form.query_one("#field-name", Input).value == "Web app"
        uris = form.query_one("#field-redirect_uris", Input)
        assert uris.value == "http://web.example/callback"
        assert await rb.box.store.oauth.list_clients() == []

        uris.value = "https://web.example/callback"
        uris.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await until(pilot, lambda: len(client_rows(app)) == 1)
    [client] = await rb.box.store.oauth.list_clients()
    assert (client.client_name, client.redirect_uris) == (
        "Web app",
        ("https://web.example/callback",),
    )


async def test_cancelling_the_form_adds_nothing(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "c")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        await fill_client_form(app, "Editor", "http://127.0.0.1/cb")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ClientsModal))
    assert await rb.box.store.oauth.list_clients() == []


async def test_read_only_lists_clients_but_refuses_changes(rb: RunningBox) -> None:
    editor = await rb.client.add_oauth_client(
        "Editor", ["http://127.0.0.1/callback", "https://editor.example/a-long-callback-path"]
    )
    app = make_app(rb, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "c")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await until(pilot, lambda: len(client_rows(app)) == 1)
        assert "read-only" in modal_text(app, "#list-keys")
        assert app.screen.check_action("new", ()) is False
        await pilot.press("n", "d")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, ClientsModal)  # no form, no confirm dialog
        # enter shows the whole client, redirect URIs too long for the table included.
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        shown = details_text(app)
        assert editor["client_id"] in shown
        assert "https://editor.example/a-long-callback-path" in shown
    assert len(await rb.box.store.oauth.list_clients()) == 1


def test_redirect_uris_are_split_on_spaces_and_commas() -> None:
    assert redirect_uri_list(" http://127.0.0.1/a,https://x.example/b  app://c ") == [
        "http://127.0.0.1/a",
        "https://x.example/b",
        "app://c",
    ]
    assert redirect_uri_list("   ") == []
