"""Users: the people who log in to OAuth tenants, one row per account followed by one row per
tenant it is granted. Add a user, grant a tenant, revoke a grant or remove a user; see a user's
live refresh tokens (in its details) and revoke them; list, pre-register and remove the OAuth
clients (``c``, a dialog of its own: views/clients.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.tui.format import fmt_time
from smcp_box.tui.modals import ConfirmModal, DetailsModal, Field, FormModal
from smcp_box.tui.views.base import View
from smcp_box.tui.views.clients import ClientsModal
from smcp_box.tui.widgets import Row

#: Row keys are "<user>" for an account and "<user><separator><tenant>" for a grant.
_SEPARATOR = "\x00"


class UsersView(View):
    TITLE = "Users"
    MUTATING = frozenset({"new", "grant", "delete", "revoke_tokens"})
    COLUMNS = (
        ("user", "User", 16),
        ("tenant", "Tenant", 14),
        ("scopes", "Scopes / account", None),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "Add user"),
        Binding("g", "grant", "Grant tenant"),
        Binding("d", "delete", "Revoke/remove"),
        Binding("t", "revoke_tokens", "Revoke tokens"),
        Binding("c", "clients", "Clients"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._users: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        body = await self.api.users()
        self._users = {user["username"]: user for user in body["users"]}
        rows: list[Row] = []
        for name, user in self._users.items():
            state = Text("disabled", "red") if user["disabled"] else Text("active", "green")
            account = Text.assemble(state, f" · created {fmt_time(user['created_at'])}")
            rows.append((name, [name, Text("(account)", style="dim"), account]))
            for tenant, scopes in user["grants"].items():
                rows.append((f"{name}{_SEPARATOR}{tenant}", ["", tenant, " ".join(scopes)]))
        self.show_rows(rows)

    def _selection(self) -> tuple[str, str | None] | None:
        key = self.selected()
        if key is None:
            return None
        name, _, tenant = key.partition(_SEPARATOR)
        return name, tenant or None

    async def open_selected(self) -> None:
        selection = self._selection()
        if selection is None:
            return
        user = dict(self._users[selection[0]])
        user["created_at"] = fmt_time(user["created_at"])
        user["grants"] = "; ".join(
            f"{tenant}: {' '.join(scopes)}" for tenant, scopes in user["grants"].items()
        )
        tokens = (await self.api.user_tokens(selection[0]))["tokens"]
        user["refresh tokens"] = "; ".join(_token_line(t) for t in tokens) or "none"
        await self.ask(DetailsModal(f"User {user['username']}", user))

    def action_clients(self) -> None:
        self.run_verb(self._clients)

    async def _clients(self) -> None:
        await self.ask(ClientsModal(self.api))

    def action_revoke_tokens(self) -> None:
        self.run_verb(self._revoke_tokens)

    async def _revoke_tokens(self) -> None:
        selection = self._selection()
        if selection is None:
            return
        name, tenant = selection
        where = f" on {tenant}" if tenant else ""
        confirmed = await self.ask(
            ConfirmModal(
                f"Revoke {name}'s refresh tokens{where}?",
                f"{name}'s clients{where} must sign in again when their access tokens run "
                "out; the grants stay.",
                "Revoke",
            )
        )
        if confirmed:
            answer = await self.api.revoke_user_tokens(name, tenant)
            self.notify(f"Revoked {answer['revoked']} refresh token(s) of {name}{where}.")
        await self.tui.refresh_now()

    def action_new(self) -> None:
        self.run_verb(self._add)

    async def _add(self) -> None:
        values = await self.ask(
            FormModal(
                "Add a user",
                [
                    Field("username", "Username (lowercase)", placeholder="e.g. alice"),
                    Field("password", "Password (8 characters or more)", password=True),
                    Field("again", "Password again", password=True),
                ],
                "Add",
            )
        )
        if not values or not values["username"]:
            return
        if values["password"] != values["again"]:
            self.notify("The two passwords differ; no user was added.", severity="error")
            return
        await self.api.add_user(values["username"], values["password"])
        self.notify(f"Added user {values['username']}; g grants it a tenant.")
        await self.tui.refresh_now()

    def action_grant(self) -> None:
        self.run_verb(self._grant)

    async def _grant(self) -> None:
        selection = self._selection()
        if selection is None:
            self.notify("Add a user first (n).", severity="warning")
            return
        name = selection[0]
        tenants = [t["name"] for t in (await self.api.tenants())["tenants"]]
        if not tenants:
            self.notify("There are no tenants to grant.", severity="warning")
            return
        values = await self.ask(
            FormModal(
                f"Grant a tenant to {name}",
                [
                    Field("tenant", "Tenant", selection[1] or tenants[0], choices=tenants),
                    Field("scopes", "Scopes (space-separated)", " ".join(ALL_SCOPES)),
                ],
                "Grant",
            )
        )
        if not values or not values["tenant"]:
            return
        granted = await self.api.grant_user(name, values["tenant"], values["scopes"].split())
        self.notify(f"{name} may use {granted['tenant']}: {' '.join(granted['scopes'])}.")
        await self.tui.refresh_now()

    def action_delete(self) -> None:
        self.run_verb(self._delete)

    async def _delete(self) -> None:
        selection = self._selection()
        if selection is None:
            return
        name, tenant = selection
        if tenant is not None:
            confirmed = await self.ask(
                ConfirmModal(
                    f"Revoke {name}'s grant on {tenant}?",
                    f"{name} can no longer log in to {tenant}'s clients or consent for them, "
                    "and its refresh tokens and consents there are revoked.",
                    "Revoke",
                )
            )
            if confirmed:
                answer = await self.api.revoke_user_grant(name, tenant)
                self.notify(
                    f"Revoked {name}'s grant on {tenant} and "
                    f"{answer['refresh_families_revoked']} refresh-token famil(ies)."
                )
        else:
            grants = ", ".join(self._users[name]["grants"]) or "none"
            confirmed = await self.ask(
                ConfirmModal(
                    f"Remove user {name}?",
                    f"The account and its grants ({grants}) are deleted and its refresh tokens "
                    f"revoked; {name} can no longer log in. This cannot be undone.",
                    "Remove",
                )
            )
            if confirmed:
                await self.api.remove_user(name)
                self.notify(f"Removed user {name}.")
        await self.tui.refresh_now()


def _token_line(token: dict[str, Any]) -> str:
    client = token["client_name"] or token["client_id"]
    return (
        f"{client} on {token['tenant']} ({' '.join(token['scopes'])}), since "
        f"{fmt_time(token['created_at'])}, expires {fmt_time(token['expires_at'])}"
    )
