"""The admin operations the TUI uses. :class:`smcp_box.admin.client.AdminClient` implements
them over the socket; tests may pass another implementation with fixed data."""

from __future__ import annotations

from typing import Any, Protocol

JsonDict = dict[str, Any]


class AdminApi(Protocol):
    #: Where the box is reached (socket path or URL), for messages.
    where: str

    async def aclose(self) -> None: ...

    async def status(self) -> JsonDict: ...

    async def metrics(self, window_s: int = 60, tenant: str | None = None) -> JsonDict: ...

    async def tenants(self) -> JsonDict: ...

    async def tenant(self, name: str) -> JsonDict: ...

    async def add_tenant(self, manifest_toml: str, module: bytes) -> JsonDict: ...

    async def set_enabled(self, name: str, enabled: bool) -> JsonDict: ...

    async def set_limits(self, name: str, limits: dict[str, int | None]) -> JsonDict: ...

    async def reload_tenant(self, name: str) -> JsonDict: ...

    async def remove_tenant(self, name: str) -> JsonDict: ...

    async def keys(self, tenant: str | None = None) -> JsonDict: ...

    async def create_key(self, tenant: str, label: str = "") -> JsonDict: ...

    async def revoke_key(self, key_id: str) -> JsonDict: ...

    async def sessions(self, tenant: str | None = None) -> JsonDict: ...

    async def end_session(self, tenant: str, session_id: str) -> JsonDict: ...

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
    ) -> JsonDict: ...
