"""The admin operations the TUI uses. :class:`smcp_box.admin.client.AdminClient` implements
them over the socket; tests may pass another implementation with fixed data."""

from __future__ import annotations

from typing import Protocol

from smcp_box.seams import JsonObject


class AdminApi(Protocol):
    #: Where the box is reached (socket path or URL), for messages.
    where: str

    async def aclose(self) -> None: ...

    async def status(self) -> JsonObject: ...

    async def metrics(self, window_s: int = 60, tenant: str | None = None) -> JsonObject: ...

    async def tenants(self) -> JsonObject: ...

    async def tenant(self, name: str) -> JsonObject: ...

    async def add_tenant(self, manifest_toml: str, module: bytes) -> JsonObject: ...

    async def set_enabled(self, name: str, enabled: bool) -> JsonObject: ...

    async def set_limits(self, name: str, limits: dict[str, int | None]) -> JsonObject: ...

    async def reload_tenant(self, name: str) -> JsonObject: ...

    async def remove_tenant(self, name: str) -> JsonObject: ...

    async def keys(self, tenant: str | None = None) -> JsonObject: ...

    async def create_key(self, tenant: str, label: str = "") -> JsonObject: ...

    async def revoke_key(self, key_id: str) -> JsonObject: ...

    async def sessions(self, tenant: str | None = None) -> JsonObject: ...

    async def end_session(self, tenant: str, session_id: str) -> JsonObject: ...

    async def audit(
        self,
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
        tenant: str | None = None,
        event: str | None = None,
        actor: str | None = None,
        outcome: str | None = None,
    ) -> JsonObject: ...
