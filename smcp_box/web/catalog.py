"""``GET /catalog``: the tenants a credential may use, for clients to discover what is hosted.

The caller sends the same ``Authorization`` header it would send to a tenant's endpoint. The
box lists each tenant that credential is accepted by (an API key: its own tenant), plus the
public tenants; a request whose credential no tenant accepts gets 401, so the catalog never
tells an anonymous LAN client what is hosted. Admins see every tenant through the admin API
(``smcp-box catalog``). Disabled tenants are left out: nobody can use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from quart import Blueprint, Response, jsonify, request

from smcp_box.auth.urls import request_resource_url
from smcp_box.errors import AuthError
from smcp_box.seams import Authenticator
from smcp_box.tenancy.catalog import catalog_entry
from smcp_box.tenancy.runtime import WasmTenant


def create_catalog_blueprint(
    tenants: Callable[[], Sequence[WasmTenant]],
    authenticator: Authenticator,
    *,
    realm: str = "smcp-box",
    oauth_issuer: str = "",
) -> Blueprint:
    bp = Blueprint("catalog", __name__)

    @bp.get("/catalog")
    async def catalog() -> Response:
        headers = {key.lower(): value for key, value in request.headers.items()}
        usable: list[WasmTenant] = []
        public: list[WasmTenant] = []
        for tenant in tenants():
            if not tenant.enabled:
                continue
            if tenant.auth_mode == "none":
                public.append(tenant)
                continue
            if "authorization" not in headers:
                continue
            try:
                # An access token is for one tenant's URL: ask as if the request went there.
                resource = request_resource_url(
                    oauth_issuer, request.scheme, headers.get("host", ""), tenant.name
                )
                await authenticator.authenticate(tenant, headers, request.remote_addr, resource)
            except (AuthError, ValueError):
                continue
            usable.append(tenant)
        if not usable:
            response = jsonify(
                {
                    "error": "auth",
                    "message": "the catalog lists what a credential may use: send the "
                    "Authorization header you use for a tenant (Bearer <API key>)",
                }
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = f'Bearer realm="{realm}"'
            return response
        base = request.host_url.rstrip("/")
        entries = [
            await catalog_entry(tenant, f"{base}/t/{tenant.name}/mcp")
            for tenant in sorted([*usable, *public], key=lambda t: t.name)
        ]
        return jsonify({"tenants": entries})

    return bp


__all__ = ["create_catalog_blueprint"]
