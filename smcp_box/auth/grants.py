"""authlib's grants and endpoints with the box's rules, for :mod:`smcp_box.auth.server`.

- :class:`S256Only`: PKCE on every authorization request, S256 only.
- :class:`CodeFlow`: the authorization code grant; ``resource`` (RFC 8707) must name a tenant
  that takes OAuth; a code is consumed atomically, and a reused one revokes what it issued.
- :class:`RefreshFlow`: rotation on every use; a rotated token presented again revokes its
  family (the store does both in one transaction).
- :class:`Revocation`: RFC 7009 for refresh tokens (the whole family) and access tokens (their
  ``jti`` denied until expiry).

Each callback reaches the async store through ``server.run`` (see the server's docstring).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    InvalidRequestError,
    OAuth2Error,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jws

from smcp_box.auth.clients import OAuthClient
from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.errors import AuthError
from smcp_box.store.oauth import CodeGrant, RefreshRecord

if TYPE_CHECKING:
    from smcp_box.auth.server import BoxAuthorizationServer

#: Characters RFC 6749 allows in ``error_description``; anything else becomes a space.
_UNSAFE_DESCRIPTION: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


@dataclass(frozen=True)
class Grantee:
    """The user a code or token speaks for, on one tenant, with the scopes they may have."""

    username: str
    tenant: str
    resource: str
    scopes: frozenset[str]


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]  # authlib is untyped
    """RFC 8707 ``invalid_target``: the resource is missing, unknown or not this client's."""

    error = "invalid_target"


def describe(text: str) -> str:
    """``text`` with the characters RFC 6749 forbids in ``error_description`` replaced."""
    return _UNSAFE_DESCRIPTION.sub(" ", text)


# --- the server -----------------------------------------------------------------------------


def server_of(grant: Any) -> BoxAuthorizationServer:
    server: BoxAuthorizationServer = grant.server
    return server


class S256Only(CodeChallenge):  # type: ignore[misc]  # authlib is untyped
    """PKCE as OAuth 2.1 and MCP require it: a challenge on every request, S256 only."""

    SUPPORTED_CODE_CHALLENGE_METHOD: Final = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD: Final = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "code_challenge is required: use PKCE with code_challenge_method=S256"
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is refused)")
        super().validate_code_challenge(grant, redirect_uri)


@dataclass(frozen=True)
class _Code(AuthorizationCodeMixin):  # type: ignore[misc]  # authlib is untyped
    code: str
    grant: CodeGrant

    @property
    def code_challenge(self) -> str:
        return self.grant.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.grant.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope


class CodeFlow(AuthorizationCodeGrant):  # type: ignore[misc]  # authlib is untyped
    TOKEN_ENDPOINT_AUTH_METHODS: Final = ["none"]

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        server = server_of(self)
        resource = self.request.payload.data.get("resource")
        tenant = server.tenant_of_resource(resource)
        if tenant is None:
            raise InvalidTargetError(
                description=describe(
                    f"resource {resource!r} is not the resource URL of a tenant of this box that "
                    "accepts OAuth"
                    if resource
                    else "the resource parameter (RFC 8707) is required"
                ),
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        self.request.smcp_tenant = tenant
        self.request.smcp_resource = resource
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        server = server_of(self)
        user: Grantee = request.user
        data = request.payload.data
        grant = CodeGrant(
            client_id=request.client.client_id,
            username=user.username,
            tenant=user.tenant,
            resource=user.resource,
            redirect_uri=request.payload.redirect_uri,
            scope=" ".join(s for s in ALL_SCOPES if s in user.scopes),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
        )
        server.run(server.records.save_code(code, grant, server.settings.code_ttl_s))

    def query_authorization_code(self, code: str, client: OAuthClient) -> _Code | None:
        server = server_of(self)
        status, grant = server.run(server.records.consume_code(code))
        if status == "reused":
            server.audit(
                "oauth.token",
                user="",
                tenant=None,
                outcome="reuse",
                detail={"what": "authorization code", "client_id": client.client_id},
            )
        if grant is None or grant.client_id != client.client_id:
            return None
        return _Code(code, grant)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        code: _Code = self.request.authorization_code
        _check_resource(self.request, code.grant.resource)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        pass  # consume_code already used it up, atomically

    def authenticate_user(self, authorization_code: _Code) -> Grantee | None:
        grant = authorization_code.grant
        return server_of(self).grantee(
            grant.username, grant.tenant, grant.resource, frozenset(grant.scope.split())
        )


@dataclass(frozen=True)
class _Refresh(TokenMixin):  # type: ignore[misc]  # authlib is untyped
    token: str
    record: RefreshRecord

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.record.client_id == client.client_id)

    def get_scope(self) -> str:
        return self.record.scope


class RefreshFlow(RefreshTokenGrant):  # type: ignore[misc]  # authlib is untyped
    TOKEN_ENDPOINT_AUTH_METHODS: Final = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN: Final = True

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        server = server_of(self)
        status, record = server.run(server.records.claim_refresh(refresh_token))
        if status == "reused" and record is not None:
            server.audit(
                "oauth.token",
                user=record.username,
                tenant=record.tenant,
                outcome="reuse",
                detail={"what": "refresh token", "client_id": record.client_id},
            )
        if status != "ok" or record is None:
            return None
        return _Refresh(refresh_token, record)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        _check_resource(self.request, self.request.refresh_token.record.resource)

    def authenticate_user(self, refresh_token: _Refresh) -> Grantee | None:
        record = refresh_token.record
        return server_of(self).grantee(
            record.username, record.tenant, record.resource, frozenset(record.scope.split())
        )

    def revoke_old_credential(self, refresh_token: _Refresh) -> None:
        pass  # claim_refresh marked it rotated, atomically


def _check_resource(request: OAuth2Request, granted: str) -> None:
    resource = request.form.get("resource")
    if resource is not None and resource != granted:
        raise InvalidTargetError(
            description=describe(f"resource {resource!r} is not the one this grant was for")
        )


@dataclass(frozen=True)
class _Access(TokenMixin):  # type: ignore[misc]  # authlib is untyped
    token: str
    client_id: str

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.client_id == client.client_id)


class Revocation(RevocationEndpoint):  # type: ignore[misc]  # authlib is untyped
    CLIENT_AUTH_METHODS: Final = ["none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        server = server_of(self)
        if token_type_hint != "access_token":  # noqa: S105 (a hint's name)
            record = server.run(server.records.find_refresh(token_string))
            if record is not None:
                return _Refresh(token_string, record)
        audience = _unverified_audience(token_string)
        if audience is None:
            return None
        try:
            claims = server.tokens.verify_access_token(token_string, audience=audience)
        except AuthError:
            return None  # not ours, expired or malformed: RFC 7009 answers 200 all the same
        return _Access(token_string, claims.client_id)

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        server = server_of(self)
        if isinstance(token, _Refresh):
            server.run(server.records.revoke_family(token.record.family))
            user, tenant, what = token.record.username, token.record.tenant, "refresh token"
        else:
            server.run(server.tokens.revoke_access_token(token.token))
            user, tenant, what = "", None, "access token"
        server.audit(
            "oauth.token",
            user=user,
            tenant=tenant,
            outcome="revoke",
            detail={"what": what, "client_id": request.client.client_id},
        )


def _unverified_audience(token: str) -> str | None:
    """The ``aud`` a JWT claims, read without verifying it, only to pick the audience to verify
    it against (verification then checks the signature and everything else)."""
    try:
        payload = json.loads(jws.extract_compact(token.encode()).payload)
    except Exception:  # anything unreadable is simply not one of our tokens
        return None
    audience = payload.get("aud") if isinstance(payload, dict) else None
    return audience if isinstance(audience, str) else None
