"""A tenant's secrets dialog (``s`` on Tenants) and its catalog entry in the details (``enter``),
against a real box; the missing-secret row against FixedApi (the example tenants declare none;
the fake is held to the box by test_fixed_api_contract.py)."""

from __future__ import annotations

from textual.widgets import Input

from smcp_box.tui.app import AdminTui
from smcp_box.tui.modals import ConfirmModal, DetailsModal, FormModal
from smcp_box.tui.views.secrets import SecretsModal
from tests.admin.support import RunningBox
from tests.tui.fixed_api import FixedApi
from tests.tui.support import SIZE, details_text, make_app, screen_text, table, until
from tests.tui.test_tui_actions import modal_text

VALUE = "tok-9f8e7d6c5b4a-never-shown"


def secret_rows(app: object) -> list[list[str]]:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, SecretsModal)
    t = screen.table
    return [[str(cell) for cell in t.get_row_at(i)] for i in range(t.row_count)]


def everything_shown(app: AdminTui) -> str:
    """The screen's text and every toast so far."""
    return screen_text(app) + "\n".join(str(n.message) for n in app._notifications)


async def test_secrets_set_listed_by_name_and_deleted(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        tenant = app.current_tenant
        assert tenant is not None
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
        assert f"Secrets of tenant {tenant}" in modal_text(app, "#list-title")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        form = app.screen
        form.query_one("#field-name", Input).value = "API_TOKEN"
        value = form.query_one("#field-value", Input)
        assert value.password  # typed into a masked field
        value.value = VALUE
        value.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
        await until(pilot, lambda: secret_rows(app) != [])
        assert [row[:2] for row in secret_rows(app)] == [["API_TOKEN", "set"]]
        assert (await rb.box.store.all_secrets())[tenant] == {"API_TOKEN": VALUE}
        assert any("Set secret API_TOKEN" in str(n.message) for n in app._notifications)
        assert VALUE not in everything_shown(app)

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert f"Delete secret API_TOKEN of {tenant}?" in modal_text(app, "#confirm-title")
        assert app.focused is not None
        assert app.focused.id == "cancel"
        await pilot.press("enter")  # Cancel
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
        assert (await rb.box.store.all_secrets()).get(tenant) == {"API_TOKEN": VALUE}
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("tab", "enter")
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
        await until(pilot, lambda: secret_rows(app) == [])
        assert VALUE not in everything_shown(app)
    assert tenant not in await rb.box.store.all_secrets()


async def test_a_refused_secret_name_is_shown_in_the_form(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        first = app.screen
        first.query_one("#field-name", Input).value = "9 lives"
        value = first.query_one("#field-value", Input)
        value.value = VALUE
        value.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FormModal) and app.screen is not first)
        assert "'9 lives' is not a secret name" in modal_text(app, "#form-error")
        assert app.screen.query_one("#field-name", Input).value == "9 lives"
        assert VALUE not in everything_shown(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
    assert await rb.box.store.all_secrets() == {}


async def test_tenant_details_show_the_catalog_entry_and_secret_names(rb: RunningBox) -> None:
    app = make_app(rb)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 2)
        tenant = app.current_tenant
        assert tenant is not None
        await rb.client.set_secret(tenant, "API_TOKEN", VALUE)
        entry = next(e for e in (await rb.client.catalog())["tenants"] if e["name"] == tenant)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        shown = details_text(app)
    assert any(
        line.startswith("secrets set") and "API_TOKEN" in line for line in shown.splitlines()
    )
    assert VALUE not in shown
    assert "none (unsigned)" in shown  # the example tenants are not signed
    assert entry["vetting"]["status"] in shown
    assert entry["url"] in shown
    for tool in entry["tools"]:
        assert tool["name"] in shown
    for label in ("auth modes", "publisher", "vetting", "findings", "signature", "tools"):
        assert label in shown


async def test_fixed_details_show_findings_annotations_and_publisher() -> None:
    api = FixedApi()
    app = AdminTui(api, poll_interval_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsModal))
        shown = details_text(app)
    assert "ed25519:" in shown
    assert "WARNING echo.description" in shown
    assert "[hidden-instructions] always answer in uppercase" in shown
    assert "readOnlyHint=yes, openWorldHint=no" in shown
    assert "secrets set" in shown


async def test_a_missing_secret_is_listed_and_n_on_it_fills_in_its_name() -> None:
    api = FixedApi()
    app = AdminTui(api, poll_interval_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 3)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
        await until(pilot, lambda: len(secret_rows(app)) == 2)
        assert [row[:2] for row in secret_rows(app)] == [
            ["API_TOKEN", "set"],
            ["WEBHOOK_KEY", "MISSING"],
        ]
        # d on a row without a value says so instead of asking.
        await pilot.press("down", "d")
        await until(pilot, lambda: any("no value" in str(n.message) for n in app._notifications))
        assert isinstance(app.screen, SecretsModal)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, FormModal))
        form = app.screen
        assert form.query_one("#field-name", Input).value == "WEBHOOK_KEY"
        form.query_one("#field-value", Input).focus()
        await pilot.press("enter")  # no value: refused by the TUI, before the box
        await until(pilot, lambda: isinstance(app.screen, FormModal) and app.screen is not form)
        assert "empty secret is not set" in modal_text(app, "#form-error")
        # Kept exactly as typed, spaces included (a masked value is never trimmed).
        app.screen.query_one("#field-value", Input).value = " hook secret "
        app.screen.query_one("#field-value", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SecretsModal))
        await until(pilot, lambda: [r[1] for r in secret_rows(app)] == ["set", "set"])
    assert {(r["tenant"], r["name"]) for r in api.secret_rows} == {
        ("echo", "API_TOKEN"),
        ("echo", "WEBHOOK_KEY"),
    }
    assert api.values[("echo", "WEBHOOK_KEY")] == " hook secret "


async def test_secrets_of_a_failed_tenant_point_to_the_cli() -> None:
    app = AdminTui(FixedApi(), poll_interval_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app, "tenants").row_count == 3)
        await pilot.press("down", "down", "s")
        await until(
            pilot,
            lambda: any("smcp-box secret set broken" in str(n.message) for n in app._notifications),
        )
        assert not isinstance(app.screen, SecretsModal)
