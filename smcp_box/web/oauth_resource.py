"""What a client needs to find out how to sign in to a tenant, and to check the box's tokens.

- Protected resource metadata (RFC 9728) of each tenant that takes OAuth (``auth = "oauth"``
  or ``"both"``), where the 401 challenge's ``resource_metadata`` points:
  ``/.well-known/oauth-protected-resource/t/<tenant>/mcp`` for a tenant served by path,
  ``/.well-known/oauth-protected-resource/mcp`` (and the root form
  ``/.well-known/oauth-protected-resource``) for a tenant served by its own host name.
  Unknown tenants and tenants without OAuth are 404, like the MCP endpoint's unknown tenant.
- The token signing keys (JWKS) at ``/oauth/jwks``.

The resource URL in the metadata is computed the way the transport computes an access token's
required audience (:func:`smcp_box.auth.urls.request_resource_url`), so a client that asks for
a token for the ``resource`` it read here gets one the endpoint accepts.
"""

from __future__ import annotations

from typing import Any, Final

from quart import Blueprint, Response, jsonify, request

from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.auth.tokens import TokenService
from smcp_box.auth.urls import JWKS_PATH, PRM_PATH, base_url, request_resource_url
from smcp_box.errors import TenantNotFound, TransportError
from smcp_box.protocol.http import host_name
from smcp_box.seams import TenantDirectory, TenantRuntime

#: Metadata and keys are public and change rarely; browser-based clients read them cross-origin.
_PUBLIC_HEADERS: Final = {"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=60"}


def create_oauth_resource_blueprint(
    tenants: TenantDirectory, tokens: TokenService, *, oauth_issuer: str
) -> Blueprint:
    blueprint = Blueprint("oauth_resource", __name__)

    def metadata(tenant: TenantRuntime | None, routed_by_path: bool) -> Response:
        if tenant is None or tenant.auth_mode not in ("oauth", "both"):
            raise TenantNotFound(
                "Not found: no tenant that signs in with OAuth is served at this address"
            )
        host = request.headers.get("host", "")
        try:
            resource = request_resource_url(
                oauth_issuer, request.scheme, host, tenant.name if routed_by_path else None
            )
            issuer = base_url(oauth_issuer, request.scheme, host)
        except ValueError as exc:
            raise TransportError(f"Bad request: {exc}") from None
        body = {
            "resource": resource,
            "authorization_servers": [issuer],
            "scopes_supported": list(ALL_SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": tenant.name,
        }
        return _public(jsonify(body))

    def by_host() -> TenantRuntime | None:
        name = host_name(request.headers.get("host"))
        return tenants.by_host(name) if name is not None else None

    @blueprint.get(f"{PRM_PATH}/t/<tenant>/mcp")
    async def path_form(tenant: str) -> Any:
        return metadata(tenants.get(tenant), routed_by_path=True)

    @blueprint.get(f"{PRM_PATH}/mcp")
    async def host_form() -> Any:
        return metadata(by_host(), routed_by_path=False)

    @blueprint.get(PRM_PATH)
    async def root_form() -> Any:
        tenant = by_host()
        if tenant is None:
            raise TenantNotFound(
                "Not found: protected resource metadata is per tenant, at "
                f"{PRM_PATH}/t/<tenant>/mcp"
            )
        return metadata(tenant, routed_by_path=False)

    @blueprint.get(JWKS_PATH)
    async def jwks() -> Any:
        return _public(jsonify(tokens.jwks()))

    return blueprint


def _public(response: Response) -> Response:
    response.headers.update(_PUBLIC_HEADERS)
    return response
