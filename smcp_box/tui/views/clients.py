"""The OAuth clients dialog (``c`` on the Users screen): every registered client, pre-registered
and self-registered (DCR); ``n`` pre-registers one (a name and its redirect URIs, as
``smcp-box oauth client add``), ``d`` removes one after a confirm dialog. The box checks the
values (redirect URIs by OAuth 2.1 rules); a refusal shows the form again with its message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import DataTable

from smcp_box.tui.api import AdminApi
from smcp_box.tui.format import fmt_time
from smcp_box.tui.listing import ListModal, submit_form
from smcp_box.tui.modals import ConfirmModal, DetailsModal, Field, FormModal
from smcp_box.tui.widgets import Row

_FIELDS = (
    Field("name", "Client name (the consent page shows it)", placeholder="e.g. VS Code"),
    Field(
        "redirect_uris",
        "Redirect URIs (space-separated; loopback http ones match on any port)",
        placeholder="http://127.0.0.1/callback",
    ),
)

#: The Kind column: pre-registered by an admin, or registered by the client itself (RFC 7591).
_KIND_LABELS = {"preregistered": "pre", "dynamic": "dcr"}


def redirect_uri_list(text: str) -> list[str]:
    """The URIs typed in one field: separated by spaces or commas (neither is valid inside a
    URI, so splitting cannot cut one in two)."""
    return text.replace(",", " ").split()


class ClientsModal(ListModal):
    COLUMNS = (
        ("name", "Client", 14),
        ("kind", "Kind", 4),
        ("client_id", "Client id", 26),
        ("redirects", "Redirect URIs", None),
    )
    ENTER_LABEL = "details"
    NEW_LABEL = "pre-register"
    DELETE_LABEL = "remove"

    def __init__(self, api: AdminApi) -> None:
        super().__init__(
            api,
            "OAuth clients",
            "Every client is public: it signs in with PKCE and no secret. Removing one revokes "
            "its refresh tokens and its users' consents.",
        )
        self._clients: dict[str, dict[str, Any]] = {}

    async def rows(self) -> list[Row]:
        clients = (await self.api.oauth_clients())["clients"]
        self._clients = {c["client_id"]: c for c in clients}
        return [
            (
                c["client_id"],
                [
                    c["client_name"],
                    _KIND_LABELS.get(c["kind"], c["kind"]),
                    c["client_id"],
                    " ".join(c["redirect_uris"]),
                ],
            )
            for c in clients
        ]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.tui.run_verb(self._details)

    async def _details(self) -> None:
        client_id = self.selected()
        if client_id is not None:
            client = dict(self._clients[client_id])
            client["created_at"] = fmt_time(client["created_at"])
            await self.ask(DetailsModal(f"OAuth client {client['client_name']}", client))

    async def new(self) -> None:
        def form(fields: Sequence[Field], error: str) -> FormModal:
            return FormModal(
                "Pre-register an OAuth client",
                fields,
                "Add",
                help="The box gives it a client id, shown once added and in this list.",
                error=error,
            )

        async def add(values: dict[str, str]) -> dict[str, Any]:
            return await self.api.add_oauth_client(
                values["name"], redirect_uri_list(values["redirect_uris"])
            )

        added = await submit_form(self.tui, form, _FIELDS, add)
        if added is None:
            return
        await self.reload()
        self.notify(
            f"Added {added['client_name']}; its client id is {added['client_id']}.", timeout=12
        )

    async def delete(self) -> None:
        client_id = self.selected()
        if client_id is None:
            self.notify("No client selected.", severity="warning")
            return
        client = self._clients[client_id]
        consequence = (
            f"{client['client_name']} ({client['kind']}, id {client_id}, created "
            f"{fmt_time(client['created_at'])}) can no longer sign anyone in: its refresh "
            "tokens are revoked and its users' consents deleted. This cannot be undone."
        )
        if not await self.ask(
            ConfirmModal(f"Remove OAuth client {client['client_name']}?", consequence, "Remove")
        ):
            return
        await self.api.remove_oauth_client(client_id)
        await self.reload()
        self.notify(f"Removed OAuth client {client['client_name']}.")
