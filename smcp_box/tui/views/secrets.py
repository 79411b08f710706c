"""A tenant's secrets dialog (``s`` on the Tenants screen): the NAMES of its secrets, and those
its tenant.toml declares but the box has no value for; ``n`` sets one, ``d`` deletes one after a
confirm dialog (admin API ``/v1/secrets``, as ``smcp-box secret``).

A value is typed into a masked field and sent to the box once; the box seals it and never
gives it back, so no screen, toast or log of the TUI ever holds it afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from smcp_box.tui.api import AdminApi
from smcp_box.tui.format import fmt_time
from smcp_box.tui.listing import FormRefused, ListModal, submit_form
from smcp_box.tui.modals import ConfirmModal, Field, FormModal
from smcp_box.tui.widgets import Row


class SecretsModal(ListModal):
    COLUMNS = (
        ("name", "Secret", 30),
        ("state", "State", 9),
        ("updated", "Updated", None),
    )
    NEW_LABEL = "set"
    DELETE_LABEL = "delete"

    def __init__(self, api: AdminApi, tenant: str) -> None:
        super().__init__(
            api,
            f"Secrets of tenant {tenant}",
            "Names only: values are sealed in the box's database and never shown. The module "
            "reads a secret with config_get, like plain config.",
        )
        self.tenant = tenant
        self._stored: set[str] = set()

    async def rows(self) -> list[Row]:
        body = await self.api.secrets(self.tenant)
        stored = [s for s in body["secrets"] if s["tenant"] == self.tenant]
        self._stored = {s["name"] for s in stored}
        rows: list[Row] = [
            (s["name"], [s["name"], Text("set", "green"), fmt_time(s["updated_at"])])
            for s in stored
        ]
        for name in body["missing"].get(self.tenant, []):
            rows.append((name, [name, Text("MISSING", "bold red"), "declared in tenant.toml"]))
        return rows

    async def new(self) -> None:
        # On a missing secret's row, n sets that one: its name is filled in.
        highlighted = self.selected()
        name = highlighted if highlighted is not None and highlighted not in self._stored else ""
        fields = [
            Field("name", "Name (letters, digits, '_', '.', '-')", name, placeholder="API_TOKEN"),
            Field("value", "Value (not shown; replaces any value it has)", password=True),
        ]

        def form(specs: Sequence[Field], error: str) -> FormModal:
            return FormModal(f"Set a secret of {self.tenant}", specs, "Set", error=error)

        async def set_secret(values: dict[str, str]) -> dict[str, Any]:
            if not values["value"]:
                raise FormRefused("Type the secret's value: an empty secret is not set.")
            return await self.api.set_secret(self.tenant, values["name"], values["value"])

        done = await submit_form(self.tui, form, fields, set_secret)
        if done is None:
            return
        await self.reload()
        note = f" ({done['note']})" if "note" in done else ""
        self.notify(f"Set secret {done['name']} of {self.tenant}{note}.")

    async def delete(self) -> None:
        name = self.selected()
        if name is None:
            self.notify("No secret selected.", severity="warning")
            return
        if name not in self._stored:
            self.notify(f"{name} has no value to delete; n sets it.", severity="warning")
            return
        if not await self.ask(
            ConfirmModal(
                f"Delete secret {name} of {self.tenant}?",
                f"The value is erased from the box now; the module no longer reads {name}, and "
                "calls that need it may fail. This cannot be undone (set it again with n).",
                "Delete",
            )
        ):
            return
        await self.api.delete_secret(self.tenant, name)
        await self.reload()
        self.notify(f"Deleted secret {name} of {self.tenant}.")
