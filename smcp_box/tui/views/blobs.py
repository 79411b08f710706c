"""A tenant's blobs dialog (``b`` on the Tenants screen): name, size, content type and when
each was written, with the tenant's usage against its quotas; ``d`` deletes one after a confirm
dialog (admin API ``/v1/blobs``, as ``smcp-box blob``). Putting and getting blobs move files,
so they are the CLI's (``smcp-box blob put`` / ``get``, with progress); ``n`` names the command.
"""

from __future__ import annotations

from typing import ClassVar

from textual.widgets import Static

from smcp_box.tui.api import AdminApi
from smcp_box.tui.format import fmt_bytes, fmt_count, fmt_time, shorten
from smcp_box.tui.listing import ListModal
from smcp_box.tui.modals import ConfirmModal
from smcp_box.tui.widgets import Row


class BlobsModal(ListModal):
    COLUMNS = (
        ("name", "Blob", 22),
        ("size", "Size", 7),
        ("type", "Type", 18),
        ("updated", "Updated", None),
    )
    NEW_LABEL = "put (shows the CLI command)"
    DELETE_LABEL = "delete"
    #: ``n`` only shows a command: read-only mode need not refuse it.
    MUTATING: ClassVar[frozenset[str]] = frozenset({"delete"})

    def __init__(self, api: AdminApi, tenant: str) -> None:
        super().__init__(api, f"Blobs of tenant {tenant}", "Loading the tenant's usage…")
        self.tenant = tenant

    async def rows(self) -> list[Row]:
        body = await self.api.blobs(self.tenant)
        usage, quotas = body["usage"], body["quotas"]
        self.query_one("#list-hint", Static).update(
            f"{usage['blobs']} of at most {fmt_count(quotas['blob_max_count'])} blobs, "
            f"{fmt_bytes(usage['bytes'])} of at most {fmt_bytes(quotas['blob_max_total_bytes'])}"
            f"; the largest allowed is {fmt_bytes(quotas['blob_max_bytes'])}. Blobs are "
            "encrypted in the box's database; get one with: "
            f"smcp-box blob get {self.tenant} NAME -o FILE"
        )
        return [
            (
                blob["name"],
                [
                    # Names are safe paths ([A-Za-z0-9._-] and '/'): never markup.
                    shorten(blob["name"], 22),
                    fmt_bytes(blob["size"]),
                    shorten(blob["contentType"], 18),
                    fmt_time(blob["updatedAt"]),
                ],
            )
            for blob in body["blobs"]
        ]

    async def new(self) -> None:
        self.notify(
            f"Put a file as a blob with: smcp-box blob put {self.tenant} NAME FILE [--type MIME]"
        )

    async def delete(self) -> None:
        name = self.selected()
        if name is None:
            self.notify("No blob selected.", severity="warning")
            return
        if not await self.ask(
            ConfirmModal(
                f"Delete blob {name} of {self.tenant}?",
                f"The blob is erased from the box now: the module no longer reads it and "
                f"clients no longer see blob:{name}. This cannot be undone.",
                "Delete",
            )
        ):
            return
        await self.api.delete_blob(self.tenant, name)
        await self.reload()
        self.notify(f"Deleted blob {name} of {self.tenant}.")
