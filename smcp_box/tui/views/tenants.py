"""Tenants: list, details (with the catalog entry), add, enable/disable, limits, reload,
remove, and the secrets and blobs dialogs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual.binding import Binding, BindingType

from smcp_box.admin.upload import read_tenant_upload
from smcp_box.config import LIMITS
from smcp_box.tui.format import fmt_count, shorten
from smcp_box.tui.modals import ConfirmModal, DetailsModal, Field, FormModal
from smcp_box.tui.views.base import View
from smcp_box.tui.views.blobs import BlobsModal
from smcp_box.tui.views.catalog import tenant_details
from smcp_box.tui.views.secrets import SecretsModal
from smcp_box.tui.widgets import Row

#: The Auth column (7 wide) for tenants that ask for a credential; public ones stand out apart.
_AUTH_LABELS = {"api_key": "key", "oauth": "oauth", "both": "key+oa"}

FAILED_PREFIX = "!"
#: The limits form: one field per tenant.toml ``[limits]`` key, labelled with its unit.
LIMIT_FIELDS = tuple(
    (name, f"{bound.label[:1].upper()}{bound.label[1:]} ({bound.unit})")
    for name, bound in LIMITS.items()
)


class TenantsView(View):
    TITLE = "Tenants"
    MUTATING = frozenset({"new", "delete", "enable_disable", "limits", "reload", "approve"})
    COLUMNS = (
        ("name", "Tenant", 16),
        ("state", "State", 8),
        ("auth", "Auth", 7),
        ("calls", "Calls", 6),
        ("errors", "Errors", 6),
        ("description", "Description", None),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "Add"),
        Binding("d", "delete", "Remove"),
        Binding("e", "enable_disable", "On/Off"),
        Binding("l", "limits", "Limits"),
        Binding("m", "reload", "Reload"),
        Binding("s", "secrets", "Secrets"),
        # Hidden from the footer (it is full at 80 columns); help and the command palette list
        # it, and the CHANGED marker and the details name it.
        Binding("a", "approve", "Approve changed definitions", show=False),
        Binding("b", "blobs", "Blobs", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tenants: dict[str, dict[str, Any]] = {}
        self._failed: dict[str, dict[str, Any]] = {}
        #: Tenants whose tool definitions changed and await approval (served or refused).
        self._pending: set[str] = set()

    async def load(self) -> None:
        body = await self.api.tenants()
        self._tenants = {t["name"]: t for t in body["tenants"]}
        self._failed = {FAILED_PREFIX + f["folder"]: f for f in body["failed"]}
        self._pending = set(body.get("definitions_pending", ()))
        rows: list[Row] = []
        for name, tenant in self._tenants.items():
            state = (
                Text("enabled", style="green")
                if tenant["enabled"]
                else Text("disabled", style="yellow")
            )
            if tenant.get("definitions_pending"):
                # Serving the approved definitions while a change waits for an admin ("a").
                state = Text("CHANGED", style="bold magenta")
            rows.append(
                (
                    name,
                    [
                        name,
                        state,
                        # A public tenant answers anyone on the network: make it stand out.
                        Text("PUBLIC!", style="bold yellow")
                        if tenant["auth"] == "none"
                        else _AUTH_LABELS.get(tenant["auth"], tenant["auth"]),
                        fmt_count(tenant["calls"]),
                        fmt_count(tenant["errors"]),
                        shorten(tenant["description"], 60),
                    ],
                )
            )
        for key, failed in self._failed.items():
            rows.append(
                (
                    key,
                    [
                        failed["name"],
                        Text("CHANGED", style="bold red")
                        if failed["name"] in self._pending
                        else Text("FAILED", style="bold red"),
                        "-",
                        "-",
                        "-",
                        Text(shorten(failed["reason"], 60), style="red"),
                    ],
                )
            )
        self.show_rows(rows)

    def tenant_names(self) -> list[str]:
        return sorted(self._tenants)

    def _selected_tenant(self) -> str | None:
        key = self.selected()
        if key is None:
            self.notify("No tenant selected.", severity="warning")
            return None
        return key

    # --- verbs -----------------------------------------------------------------------------

    async def open_selected(self) -> None:
        key = self._selected_tenant()
        if key is None:
            return
        if key.startswith(FAILED_PREFIX):
            failed = self._failed[key]
            await self.ask(DetailsModal(f"Tenant {failed['name']} failed to load", failed))
            return
        details = await tenant_details(self.api, key)
        await self.ask(DetailsModal(f"Tenant {key}", details))

    def action_new(self) -> None:
        self.run_verb(self._add)

    async def _add(self) -> None:
        values = await self.ask(
            FormModal(
                "Add a tenant",
                [Field("path", "Tenant folder or tenant.toml", placeholder="/path/to/tenant")],
                "Add",
                help="The box checks the module's pinned sha256 and loads it before serving.",
            )
        )
        if not values or not values["path"]:
            return
        manifest, module = await asyncio.to_thread(read_tenant_upload, Path(values["path"]))
        added = await self.api.add_tenant(manifest, module)
        self.notify(f"Added tenant {added['name']} at {added['url']}")
        await self.tui.refresh_now()

    def action_delete(self) -> None:
        self.run_verb(self._remove)

    async def _remove(self) -> None:
        key = self._selected_tenant()
        if key is None:
            return
        name = self._failed[key]["name"] if key.startswith(FAILED_PREFIX) else key
        consequence = (
            f"Tenant {name} stops serving now (files in the tenants folder are kept). Its kv "
            "data is erased, its API keys are revoked and its open sessions end. This cannot "
            "be undone."
        )
        if not key.startswith(FAILED_PREFIX):
            details = await self.api.tenant(name)
            files = (
                f"Its files in {details['folder']} are deleted"
                if details.get("origin") == "admin"
                else f"Its folder {details['folder']} is kept"
            )
            consequence = (
                f"Tenant {name} stops serving now. {files}, "
                f"its kv data ({details['kv_keys']} keys) is erased, its "
                f"{details['active_keys']} active API key(s) are revoked and its "
                f"{details['open_sessions']} open session(s) end. This cannot be undone."
            )
        if not await self.ask(ConfirmModal(f"Remove tenant {name}?", consequence, "Remove")):
            return
        await self.api.remove_tenant(name)
        self.notify(f"Removed tenant {name} and its data.")
        await self.tui.refresh_now()

    def action_enable_disable(self) -> None:
        self.run_verb(self._toggle)

    async def _toggle(self) -> None:
        key = self._selected_tenant()
        if key is None or key.startswith(FAILED_PREFIX):
            return
        enable = not self._tenants[key]["enabled"]
        await self.api.set_enabled(key, enable)
        self.notify(f"Tenant {key} {'enabled' if enable else 'disabled'}.")
        await self.tui.refresh_now()

    def action_limits(self) -> None:
        self.run_verb(self._limits)

    async def _limits(self) -> None:
        key = self._selected_tenant()
        if key is None or key.startswith(FAILED_PREFIX):
            return
        current = self._tenants[key]["limits"]
        fields = [Field(name, label, str(current[name])) for name, label in LIMIT_FIELDS]
        values = await self.ask(
            FormModal(
                f"Limits of tenant {key}",
                fields,
                "Apply",
                help="Empty a field to drop its override (back to tenant.toml / box default).",
                two_column=True,
            )
        )
        if values is None:
            return
        changes: dict[str, int | None] = {}
        for name, _ in LIMIT_FIELDS:
            raw = values[name]
            if raw == "":
                changes[name] = None
            elif raw != str(current[name]):
                if not raw.isdigit():
                    self.notify(f"{name} must be a whole number, not {raw!r}", severity="error")
                    return
                changes[name] = int(raw)
        if not changes:
            return
        await self.api.set_limits(key, changes)
        self.notify(
            f"Limits of {key} updated: " + ", ".join(f"{k}={v}" for k, v in changes.items())
        )
        await self.tui.refresh_now()

    def action_reload(self) -> None:
        self.run_verb(self._reload)

    async def _reload(self) -> None:
        key = self._selected_tenant()
        if key is None:
            return
        name = self._failed[key]["name"] if key.startswith(FAILED_PREFIX) else key
        reloaded = await self.api.reload_tenant(name)
        self.notify(f"Reloaded {name} (module sha256 {reloaded['module']['sha256'][:12]}…).")
        await self.tui.refresh_now()

    def action_secrets(self) -> None:
        self.run_verb(self._secrets)

    async def _secrets(self) -> None:
        key = self._selected_tenant()
        if key is None:
            return
        if key.startswith(FAILED_PREFIX):
            name = self._failed[key]["name"]
            self.notify(
                f"{name} failed to load; set its secrets with: smcp-box secret set {name} NAME",
                severity="warning",
            )
            return
        await self.ask(SecretsModal(self.api, key))

    def action_blobs(self) -> None:
        self.run_verb(self._blobs)

    async def _blobs(self) -> None:
        key = self._selected_tenant()
        if key is None:
            return
        name = self._failed[key]["name"] if key.startswith(FAILED_PREFIX) else key
        await self.ask(BlobsModal(self.api, name))

    def action_approve(self) -> None:
        self.run_verb(self._approve)

    async def _approve(self) -> None:
        key = self._selected_tenant()
        if key is None:
            return
        name = self._failed[key]["name"] if key.startswith(FAILED_PREFIX) else key
        body = await self.api.tenant_definitions(name)
        pending = body.get("pending")
        if pending is None:
            self.notify(f"Tenant {name} has no changed tool definitions to approve.")
            return
        values = await self.ask(
            FormModal(
                f"Approve the changed tool definitions of {name}?",
                [Field("reason", "Reason (recorded with your name)", placeholder="reviewed …")],
                "Approve",
                # The diff is the module's own text: shown literally, never as markup.
                help=escape(approval_summary(pending)),
            )
        )
        if not values:
            return
        if not values["reason"]:
            self.notify("An approval needs a reason; nothing was approved.", severity="error")
            return
        await self.api.approve_tenant(name, values["reason"], pending["review_sha256"])
        self.notify(f"Approved the new definitions of {name}; they are served now.")
        await self.tui.refresh_now()


def approval_summary(pending: dict[str, Any]) -> str:
    """What the approve dialog shows: what happens now, which tools changed, and the diff."""
    action = (
        "The box serves the approved definitions until you approve."
        if pending["action"] == "serve_approved"
        else "The tenant is not served until you approve."
    )
    changed = "; ".join(
        f"{what}: {', '.join(pending[what])}"
        for what in ("added", "removed", "changed")
        if pending[what]
    )
    return f"{action}\n{changed}\n\n{pending['diff']}"
