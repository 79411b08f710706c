"""``AdminClient``: the admin API over its Unix socket (or a token-guarded TCP port).

The CLI and the TUI use only this class to talk to a running box. Every method returns the
decoded JSON body; every failure is one of two errors, so callers need only two ``except``
clauses: :class:`AdminUnavailable` (nothing answers: the box is not running there) and
:class:`AdminRequestFailed` (the box answered with an error, whose message is meant for people).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from smcp_box.errors import AdminRequestFailed, AdminUnavailable
from smcp_box.seams import JsonObject

#: Must match smcp_box.admin.context.USER_HEADER (not imported: that module loads the box).
USER_HEADER = "x-smcp-admin-user"

#: The host part of URLs on the socket; a Unix socket has no host, but HTTP needs one.
SOCKET_BASE_URL = "http://smcp-box-admin"
API = "/v1"


class AdminClient:
    def __init__(
        self,
        socket_path: Path | None = None,
        *,
        base_url: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if (socket_path is None) == (base_url is None):
            raise ValueError("give exactly one of socket_path and base_url")
        self.socket_path = socket_path
        self.where = str(socket_path) if socket_path is not None else str(base_url)
        headers = {USER_HEADER: _local_user()}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if socket_path is not None:
            transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
            self._http = httpx.AsyncClient(
                transport=transport, base_url=SOCKET_BASE_URL, headers=headers, timeout=timeout_s
            )
        else:
            self._http = httpx.AsyncClient(
                base_url=str(base_url), headers=headers, timeout=timeout_s
            )

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- plumbing ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout_s: float | None = None,
    ) -> JsonObject:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._http.request(
                method,
                API + path,
                params=query,
                json=json,
                timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            raise AdminUnavailable(self._unavailable_message(exc)) from None
        except httpx.TimeoutException:
            raise AdminUnavailable(
                f"the box did not answer on {self.where} in time; it may be overloaded or hung"
            ) from None
        body = _raise_for_error(response)
        if not isinstance(body, dict):
            raise AdminRequestFailed(response.status_code, "http", "the admin API sent no JSON")
        return body

    def _unavailable_message(self, exc: Exception) -> str:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, PermissionError) or "Permission denied" in str(exc):
            return (
                f"permission denied on the admin socket {self.where}: run as root or as a member "
                "of the group that owns it"
            )
        if self.socket_path is not None and not self.socket_path.exists():
            return (
                f"the box is not running: there is no admin socket at {self.where} "
                "(start it with 'smcp-box serve' or 'systemctl start smcp-box', or pass --socket)"
            )
        return f"the box is not running: nothing answers on {self.where}"

    # --- status and metrics --------------------------------------------------------------

    async def status(self) -> JsonObject:
        return await self.request("GET", "/status")

    async def fleet(self) -> JsonObject:
        """Every box from the heartbeats, and the database's health."""
        return await self.request("GET", "/fleet")

    async def drain(self, *, undo: bool = False) -> JsonObject:
        """Make the box refuse new sessions and answer /readyz 503 (``undo``: serve again)."""
        return await self.request("DELETE" if undo else "POST", "/drain")

    async def metrics(self, window_s: int = 60, tenant: str | None = None) -> JsonObject:
        return await self.request("GET", "/metrics", params={"window": window_s, "tenant": tenant})

    # --- tenants -------------------------------------------------------------------------

    async def tenants(self) -> JsonObject:
        return await self.request("GET", "/tenants")

    async def tenant(self, name: str) -> JsonObject:
        return await self.request("GET", f"/tenants/{_seg(name)}")

    async def add_tenant(
        self, manifest_toml: str, module: bytes, source: str | None = None
    ) -> JsonObject:
        """Upload a tenant.toml and its module; the box checks both and installs the folder.
        ``source``, the folder the files came from: a folder inside the box's tenants folder is
        served from there instead (``origin`` "folder" in the reply)."""
        body: JsonObject = {"manifest": manifest_toml, "module": base64.b64encode(module).decode()}
        if source is not None:
            body["source"] = source
        return await self.request("POST", "/tenants", json=body, timeout_s=120.0)

    async def tenant_definitions(self, name: str) -> JsonObject:
        """The pending change of the tenant's tool definitions (with its diff) and approvals."""
        return await self.request("GET", f"/tenants/{_seg(name)}/definitions")

    async def approve_tenant(
        self, name: str, reason: str, definitions_sha256: str | None = None
    ) -> JsonObject:
        body: JsonObject = {"reason": reason}
        if definitions_sha256 is not None:
            body["definitions_sha256"] = definitions_sha256
        return await self.request(
            "POST", f"/tenants/{_seg(name)}/approve", json=body, timeout_s=120.0
        )

    async def tenant_baselines(self, name: str) -> JsonObject:
        return await self.request("GET", f"/tenants/{_seg(name)}/baselines")

    async def reset_baseline(self, name: str, tool: str) -> JsonObject:
        return await self.request("POST", f"/tenants/{_seg(name)}/baselines/{_seg(tool)}/reset")

    async def rescan_tenants(self) -> JsonObject:
        """Serve the tenants folder's new folders (and retry failed ones)."""
        return await self.request("POST", "/tenants/rescan", timeout_s=300.0)

    async def set_enabled(self, name: str, enabled: bool) -> JsonObject:
        verb = "enable" if enabled else "disable"
        return await self.request("POST", f"/tenants/{_seg(name)}/{verb}")

    async def set_limits(self, name: str, limits: dict[str, int | None]) -> JsonObject:
        """Override limits; a value of None drops that override (back to tenant.toml)."""
        return await self.request("PATCH", f"/tenants/{_seg(name)}/limits", json=limits)

    async def reload_tenant(self, name: str) -> JsonObject:
        return await self.request("POST", f"/tenants/{_seg(name)}/reload", timeout_s=120.0)

    async def remove_tenant(self, name: str) -> JsonObject:
        return await self.request("DELETE", f"/tenants/{_seg(name)}")

    # --- keys ----------------------------------------------------------------------------

    async def keys(self, tenant: str | None = None) -> JsonObject:
        return await self.request("GET", "/keys", params={"tenant": tenant})

    async def create_key(self, tenant: str, label: str = "") -> JsonObject:
        return await self.request("POST", "/keys", json={"tenant": tenant, "label": label})

    async def revoke_key(self, key_id: str) -> JsonObject:
        return await self.request("DELETE", f"/keys/{_seg(key_id)}")

    # --- users and grants -----------------------------------------------------------------

    async def users(self) -> JsonObject:
        return await self.request("GET", "/users")

    async def add_user(self, username: str, password: str) -> JsonObject:
        return await self.request(
            "POST", "/users", json={"username": username, "password": password}
        )

    async def set_user_password(self, username: str, password: str) -> JsonObject:
        return await self.request(
            "PUT", f"/users/{_seg(username)}/password", json={"password": password}
        )

    async def remove_user(self, username: str) -> JsonObject:
        return await self.request("DELETE", f"/users/{_seg(username)}")

    async def grant_user(
        self, username: str, tenant: str, scopes: list[str] | None = None
    ) -> JsonObject:
        """Let ``username`` use ``tenant`` with ``scopes`` (None: every scope)."""
        return await self.request(
            "PUT", f"/users/{_seg(username)}/grants/{_seg(tenant)}", json={"scopes": scopes}
        )

    async def revoke_user_grant(self, username: str, tenant: str) -> JsonObject:
        return await self.request("DELETE", f"/users/{_seg(username)}/grants/{_seg(tenant)}")

    # --- OAuth clients and tokens ----------------------------------------------------------

    async def oauth_clients(self) -> JsonObject:
        return await self.request("GET", "/oauth/clients")

    async def add_oauth_client(self, name: str, redirect_uris: list[str]) -> JsonObject:
        return await self.request(
            "POST", "/oauth/clients", json={"client_name": name, "redirect_uris": redirect_uris}
        )

    async def remove_oauth_client(self, client_id: str) -> JsonObject:
        return await self.request("DELETE", f"/oauth/clients/{_seg(client_id)}")

    async def user_tokens(self, username: str) -> JsonObject:
        """The user's live refresh-token families (never the tokens)."""
        return await self.request("GET", f"/oauth/tokens/{_seg(username)}")

    async def revoke_user_tokens(self, username: str, tenant: str | None = None) -> JsonObject:
        return await self.request(
            "DELETE", f"/oauth/tokens/{_seg(username)}", params={"tenant": tenant}
        )

    # --- secrets -------------------------------------------------------------------------

    async def secrets(self, tenant: str | None = None) -> JsonObject:
        """Secret names (never values), and the tenants missing ones they declare."""
        return await self.request("GET", "/secrets", params={"tenant": tenant})

    async def set_secret(self, tenant: str, name: str, value: str) -> JsonObject:
        # In the body, never the URL: URLs end up in access logs.
        return await self.request(
            "PUT", f"/secrets/{_seg(tenant)}/{_seg(name)}", json={"value": value}
        )

    async def delete_secret(self, tenant: str, name: str) -> JsonObject:
        return await self.request("DELETE", f"/secrets/{_seg(tenant)}/{_seg(name)}")

    # --- blobs ---------------------------------------------------------------------------

    async def blob_usage(self) -> JsonObject:
        return await self.request("GET", "/blobs")

    async def blobs(self, tenant: str, prefix: str | None = None) -> JsonObject:
        return await self.request("GET", f"/blobs/{_seg(tenant)}", params={"prefix": prefix})

    async def blob_stat(self, tenant: str, name: str) -> JsonObject:
        return await self.request(
            "GET", f"/blobs/{_seg(tenant)}/{_seg(name)}", params={"stat": "1"}
        )

    async def delete_blob(self, tenant: str, name: str) -> JsonObject:
        return await self.request("DELETE", f"/blobs/{_seg(tenant)}/{_seg(name)}")

    async def put_blob(
        self,
        tenant: str,
        name: str,
        source: BinaryIO,
        content_type: str,
        progress: Progress | None = None,
    ) -> JsonObject:
        """Upload ``source`` (read a part at a time) as blob ``name``; the blob changes only
        when every part is in. ``progress(bytes sent, None)`` follows each part."""
        started = await self.request(
            "POST",
            "/blob-uploads",
            json={"tenant": tenant, "name": name, "content_type": content_type},
        )
        upload, part_bytes = str(started["upload"]), int(started["part_bytes"])
        sent = 0
        try:
            while part := await asyncio.to_thread(source.read, part_bytes):
                await self._send_part(upload, part)
                sent += len(part)
                if progress is not None:
                    progress(sent, None)
            return await self.request("POST", f"/blob-uploads/{_seg(upload)}/commit")
        except BaseException:
            with contextlib.suppress(AdminUnavailable, AdminRequestFailed):
                await self.request("DELETE", f"/blob-uploads/{_seg(upload)}")
            raise

    async def _send_part(self, upload: str, part: bytes) -> None:
        try:
            response = await self._http.put(
                f"{API}/blob-uploads/{_seg(upload)}",
                content=part,
                headers={"content-type": "application/octet-stream"},
            )
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise AdminUnavailable(self._unavailable_message(exc)) from None
        _raise_for_error(response)

    async def get_blob(
        self, tenant: str, name: str, sink: BinaryIO, progress: Progress | None = None
    ) -> JsonObject:
        """Write blob ``name`` into ``sink`` as it streams in; checks its length and SHA-256
        against what the box declared. ``progress(bytes received, total)`` follows chunks."""
        url = f"{API}/blobs/{_seg(tenant)}/{_seg(name)}"
        digest, received = hashlib.sha256(), 0
        try:
            async with self._http.stream("GET", url, timeout=None) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_error(response)
                total = int(response.headers.get("content-length", "0"))
                expected = response.headers.get("x-blob-sha256", "")
                async for piece in response.aiter_bytes():
                    digest.update(piece)
                    received += len(piece)
                    await asyncio.to_thread(sink.write, piece)
                    if progress is not None:
                        progress(received, total)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise AdminRequestFailed(
                502,
                "transfer",
                f"the download of blob {name!r} broke off after "
                f"{received} bytes ({exc}); see the box's log",
            ) from None
        if received != total or digest.hexdigest() != expected:
            raise AdminRequestFailed(
                502,
                "transfer",
                f"blob {name!r} arrived damaged ({received} of {total} bytes, SHA-256 "
                f"{'matching' if digest.hexdigest() == expected else 'not matching'}); try again",
            )
        return {
            "tenant": tenant,
            "name": name,
            "size": received,
            "sha256": expected,
            "contentType": response.headers.get("content-type", ""),
        }

    async def catalog(self) -> JsonObject:
        """Every tenant as the catalog describes it (publisher, vetting, tools, endpoint)."""
        return await self.request("GET", "/catalog")

    # --- sessions ------------------------------------------------------------------------

    async def sessions(self, tenant: str | None = None) -> JsonObject:
        return await self.request("GET", "/sessions", params={"tenant": tenant})

    async def end_session(self, tenant: str, session_id: str) -> JsonObject:
        return await self.request("DELETE", f"/sessions/{_seg(tenant)}/{_seg(session_id)}")

    async def tasks(self, tenant: str | None = None) -> JsonObject:
        """Tasks (docs/tasks.md), oldest first: tenant, id prefix, tool, status, age."""
        return await self.request("GET", "/tasks", params={"tenant": tenant})

    # --- audit ---------------------------------------------------------------------------

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
    ) -> JsonObject:
        params = {
            "after_id": after_id,
            "before_id": before_id,
            "limit": limit,
            "tenant": tenant,
            "event": event,
            "actor": actor,
            "outcome": outcome,
        }
        return await self.request("GET", "/audit", params=params)

    async def audit_follow(
        self,
        after_id: int,
        *,
        wait_s: float = 25.0,
        tenant: str | None = None,
        event: str | None = None,
    ) -> JsonObject:
        """Long-poll: returns as soon as rows newer than ``after_id`` exist, or empty after
        ``wait_s``."""
        params = {"after_id": after_id, "wait": wait_s, "tenant": tenant, "event": event}
        return await self.request("GET", "/audit/follow", params=params, timeout_s=wait_s + 10.0)


#: Called with (bytes done, total or None when unknown) as a transfer goes.
Progress = Callable[[int, int | None], None]


def _raise_for_error(response: httpx.Response) -> Any:
    """The decoded JSON body (None if there is none), or AdminRequestFailed for an error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        if isinstance(body, dict):
            raise AdminRequestFailed(
                response.status_code,
                str(body.get("error", "error")),
                str(body.get("message", response.reason_phrase)),
            )
        raise AdminRequestFailed(
            response.status_code, "http", f"HTTP {response.status_code} from the admin API"
        )
    return body


def _local_user() -> str:
    """Who drives this client, for the audit log's actor (a label, not a credential)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def _seg(value: str) -> str:
    """One path segment, so that a name can never reach another route."""
    return quote(value, safe="")
