"""API keys: list, create (the secret is shown once), revoke."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from smcp_box.tui.format import fmt_time
from smcp_box.tui.modals import ConfirmModal, DetailsModal, Field, FormModal, NewKeyModal
from smcp_box.tui.views.base import View
from smcp_box.tui.widgets import Row


class KeysView(View):
    TITLE = "Keys"
    MUTATING = frozenset({"new", "delete"})
    COLUMNS = (
        ("key_id", "Key id", 16),
        ("tenant", "Tenant", 14),
        ("state", "State", 7),
        ("last_used", "Last used", 14),
        ("label", "Label", None),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "Create"),
        Binding("d", "delete", "Revoke"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keys: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        body = await self.api.keys()
        self._keys = {key["key_id"]: key for key in body["keys"]}
        rows: list[Row] = []
        for key_id, key in self._keys.items():
            state = Text("revoked", style="dim") if key["revoked"] else Text("active", "green")
            rows.append(
                (
                    key_id,
                    [key_id, key["tenant"], state, fmt_time(key["last_used"]), key["label"]],
                )
            )
        self.show_rows(rows)

    async def open_selected(self) -> None:
        key_id = self.selected()
        if key_id is None:
            return
        key = dict(self._keys[key_id])
        key["created_at"] = fmt_time(key["created_at"])
        key["last_used"] = fmt_time(key["last_used"])
        await self.ask(DetailsModal(f"API key {key_id}", key))

    def action_new(self) -> None:
        self.run_verb(self._create)

    async def _create(self) -> None:
        tenants = [t["name"] for t in (await self.api.tenants())["tenants"]]
        if not tenants:
            self.notify("There are no tenants to create a key for.", severity="warning")
            return
        values = await self.ask(
            FormModal(
                "Create an API key",
                [
                    Field(
                        "tenant", "Tenant", self.tui.current_tenant or tenants[0], choices=tenants
                    ),
                    Field("label", "Label (who or what uses it)", placeholder="e.g. laptop"),
                ],
                "Create",
            )
        )
        if not values or not values["tenant"]:
            return
        created = await self.api.create_key(values["tenant"], values["label"])
        await self.tui.refresh_now()
        await self.ask(NewKeyModal(created))

    def action_delete(self) -> None:
        self.run_verb(self._revoke)

    async def _revoke(self) -> None:
        key_id = self.selected()
        if key_id is None:
            return
        key = self._keys[key_id]
        if key["revoked"]:
            self.notify(f"Key {key_id} is already revoked.", severity="warning")
            return
        label = f" ({key['label']})" if key["label"] else ""
        confirmed = await self.ask(
            ConfirmModal(
                f"Revoke API key {key_id}{label}?",
                f"Clients of tenant {key['tenant']} using this key are refused (401) from now "
                "on. Revoking cannot be undone; they will need a new key.",
                "Revoke",
            )
        )
        if not confirmed:
            return
        await self.api.revoke_key(key_id)
        self.notify(f"Revoked key {key_id}.")
        await self.tui.refresh_now()
