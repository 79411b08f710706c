"""The resource server's credential check: which credentials a tenant takes, by its ``auth``.

- ``none``: nobody is asked for anything.
- ``api_key``: API keys only (:mod:`smcp_box.auth.apikeys`); an OAuth access token is refused.
- ``oauth``: OAuth access tokens only (:mod:`smcp_box.auth.tokens`); an API key is refused.
- ``both``: either.

Invariants:
- Credentials come only from the ``Authorization: Bearer`` header (RFC 6750 §2.1). The
  transport never passes a query string or a form body here, so a token in a URL (where logs,
  history and Referer headers keep it) authenticates nothing.
- An access token passes only when its ``aud`` is this request's resource URL (RFC 8707) and
  its ``tenant`` claim is this tenant: a token for tenant A is a 401 on tenant B, whatever
  route or Host the request came by.
- The two kinds are told apart by shape: a JWT is three dot-separated parts, and an API key
  (``smcp_<id>_<secret>``) has no dot.
"""

from __future__ import annotations

from collections.abc import Mapping

from smcp_box.auth.apikeys import ApiKeyAuthenticator, bearer_token
from smcp_box.auth.tokens import TokenService
from smcp_box.errors import AuthError
from smcp_box.seams import Principal, TenantRuntime


def is_jwt(credential: str) -> bool:
    """Whether a bearer credential has the shape of a JWT rather than an API key."""
    return credential.count(".") == 2


class TenantAuthenticator:
    """Implements the transport's Authenticator for every ``auth`` mode."""

    def __init__(self, api_keys: ApiKeyAuthenticator, tokens: TokenService) -> None:
        self._api_keys = api_keys
        self._tokens = tokens

    async def authenticate(
        self,
        tenant: TenantRuntime,
        headers: Mapping[str, str],
        source_ip: str | None,
        resource: str | None = None,
    ) -> Principal:
        mode = tenant.auth_mode
        if mode in ("none", "api_key"):
            credential = bearer_token(headers)
            if credential is not None and mode == "api_key" and is_jwt(credential):
                raise AuthError(
                    f"tenant {tenant.name!r} accepts API keys only, not OAuth access tokens "
                    f"(create a key with: smcp-box key create {tenant.name})"
                )
            return await self._api_keys.authenticate(tenant, headers, source_ip)
        credential = bearer_token(headers)
        if credential is None:
            wanted = "an OAuth access token" if mode == "oauth" else "an access token or API key"
            raise AuthError(
                f"tenant {tenant.name!r} requires {wanted}: send 'Authorization: Bearer <token>' "
                "(MCP clients sign in from this 401's resource_metadata)"
            )
        if not is_jwt(credential):
            if mode == "oauth":
                raise AuthError(
                    f"tenant {tenant.name!r} accepts OAuth access tokens only, not API keys: "
                    "connect with an MCP client that signs in (docs/oauth.md)"
                )
            return await self._api_keys.authenticate(tenant, headers, source_ip)
        if resource is None:
            raise AuthError("the request's resource URL is unknown (no Host header)")
        claims = self._tokens.verify_access_token(credential, audience=resource)
        if claims.tenant != tenant.name:
            # Same resource URL but another tenant's claim: only a forged or confused token
            # gets here; refused like any other invalid token.
            raise AuthError(f"the access token is not valid for tenant {tenant.name!r}")
        return Principal(
            tenant=tenant.name,
            subject=f"user:{claims.subject}",
            method="oauth",
            scopes=claims.scopes,
        )
