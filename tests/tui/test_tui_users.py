"""The Users screen against a real box: add a user, grant a tenant, revoke it, remove the user."""

from __future__ import annotations

from textual.widgets import Input, Select

from smcp_box.auth.passwords import verify_password
from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.store.oauth import RefreshRecord
from smcp_box.tui.modals import ConfirmModal, DetailsModal, FormModal
from smcp_box.tui.views.clients import ClientsModal
from tests.admin.support import RunningBox
from tests.tui.support import SIZE, cell_texts, details_text, make_app, table, until
from tests.tui.test_tui_actions import modal_text
from tests.tui.test_tui_clients import client_rows


async def test_users_screen_add_grant_revoke_remove(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: app.active_view is app.view("users"))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        form = app.screen
        form.query_one("#field-username", Input).value = "alice"
        password = form.query_one("#field-password", Input)
        assert password.password  # masked
        password.value = "a long password"
        again = form.query_one("#field-again", Input)
        again.value = "a long password"
        again.focus()
        await pilot.press("enter")
        await until(pilot, lambda: table(app, "users").row_count == 1)
        stored = await rb.box.store.get_user("alice")
        assert stored is not None
        assert verify_password(stored.password_hash, "a long password")

        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        form = app.screen
        form.query_one("#field-tenant", Select).value = "utils"
        scopes = form.query_one("#field-scopes", Input)
        scopes.value = "mcp:prompts"
        scopes.focus()
        await pilot.press("enter")
        await until(pilot, lambda: table(app, "users").row_count == 2)
        assert cell_texts(app, "users", 1)[1] == "utils"
        assert cell_texts(app, "users", 2)[1] == "mcp:prompts"
        assert await rb.box.store.user_grants("alice") == {"utils": frozenset({"mcp:prompts"})}

        await pilot.press("down", "d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Revoke alice's grant on utils?" in modal_text(app, "#confirm-title")
        assert app.focused is not None
        assert app.focused.id == "cancel"
        await pilot.press("tab", "enter")
        await until(pilot, lambda: table(app, "users").row_count == 1)
        assert await rb.box.store.user_grants("alice") == {}

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Remove user alice?" in modal_text(app, "#confirm-title")
        await pilot.press("tab", "enter")
        await until(pilot, lambda: table(app, "users").row_count == 0)
    assert await rb.box.store.get_user("alice") is None
    await rb.box.auditor.flush()
    events = [r["event"] for r in (await rb.client.audit(limit=10))["entries"]]
    for event in ("admin.user.add", "admin.user.grant", "admin.user.revoke", "admin.user.remove"):
        assert event in events


async def test_mismatched_passwords_add_nobody(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        form = app.screen
        form.query_one("#field-username", Input).value = "bob"
        form.query_one("#field-password", Input).value = "first password"
        again = form.query_one("#field-again", Input)
        again.value = "other password"
        again.focus()
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, FormModal))
        await until(pilot, lambda: any("differ" in str(n.message) for n in app._notifications))
    assert await rb.box.store.get_user("bob") is None


async def test_users_screen_shows_and_revokes_tokens_and_lists_clients(rb: RunningBox) -> None:
    await rb.client.add_user("alice", "a long password")
    await rb.client.grant_user("alice", "notes")
    editor = await rb.client.add_oauth_client("Editor", ["http://127.0.0.1/callback"])
    await rb.box.store.oauth.save_refresh(
        "rt-secret",
        RefreshRecord(
            "f1",
            editor["client_id"],
            "alice",
            "notes",
            "http://box/t/notes/mcp",
            "mcp:tools",
            rb.box.clock() + 3600,
        ),
    )
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: table(app, "users").row_count == 2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        shown = details_text(app)
        assert "refresh tokens" in shown
        assert "Editor on notes (mcp:tools)" in shown
        assert "rt-secret" not in shown
        await pilot.press("escape")

        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
        await until(pilot, lambda: client_rows(app) != [])
        assert client_rows(app)[0][:3] == ["Editor", "pre", editor["client_id"]]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ClientsModal))

        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Revoke alice's refresh tokens?" in modal_text(app, "#confirm-title")
        assert app.focused is not None
        assert app.focused.id == "cancel"
        await pilot.press("enter")  # Cancel: nothing happens
        await until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert len(await rb.box.store.oauth.live_families("alice")) == 1
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("tab", "enter")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
    assert await rb.box.store.oauth.live_families("alice") == []
    assert await rb.box.store.user_grants("alice") == {"notes": frozenset(ALL_SCOPES)}


async def test_read_only_refuses_revoking_tokens(rb: RunningBox) -> None:
    await rb.client.add_user("alice", "a long password")
    app = make_app(rb, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: table(app, "users").row_count == 1)
        await pilot.press("t")
        await pilot.press("c")
        # t did nothing (no dialog in the way), and listing the clients, a read, still works.
        await until(pilot, lambda: isinstance(app.screen, ClientsModal))
