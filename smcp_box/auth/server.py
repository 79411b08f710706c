"""The box's OAuth 2.1 authorization server: authlib's grammar, the box's records and rules.

authlib does the protocol: request parsing, the authorization code and refresh grants, PKCE
(RFC 7636), revocation (RFC 7009), dynamic registration (RFC 7591), ``iss`` in authorization
responses (RFC 9207) and the error responses of each. This module supplies what authlib leaves
to its user: where clients, codes and tokens live (:class:`~smcp_box.store.oauth.OAuthRecords`),
who the user is and what they are granted, and the box's stricter rules:

- PKCE is required and S256 only (a missing or ``plain`` challenge is refused);
- ``resource`` (RFC 8707) is required and must be the resource URL of a tenant of this box whose
  auth is ``oauth`` or ``both``; the token's audience is that URL and nothing else;
- the scopes issued are the ones asked for that the user is granted on that tenant, rechecked
  at every token request so that revoking a grant stops refreshes too;
- refresh tokens rotate on every use, and a rotated token presented again revokes its family.

authlib is synchronous and the store is asynchronous. The endpoints run authlib in a worker
thread (``asyncio.to_thread``) and authlib's callbacks reach the store on the event loop with
``run_coroutine_threadsafe(...).result()``. Prefetching instead would mean re-implementing
authlib's decisions about which records a request needs; the thread keeps authlib the one place
that decides. The worker blocks only on the loop, which never waits on the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, JsonPayload, JsonRequest
from authlib.oauth2.rfc9207 import IssuerParameter

from smcp_box.auth.clients import OAuthClient
from smcp_box.auth.grants import (
    CodeFlow,
    Grantee,
    RefreshFlow,
    Revocation,
    S256Only,
    describe,
)
from smcp_box.auth.registration import Registration
from smcp_box.auth.scopes import ALL_SCOPES
from smcp_box.auth.urls import (
    AUTHORIZE_PATH,
    JWKS_PATH,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    base_url,
    host_resource_url,
    resource_url,
)
from smcp_box.config import OAuthSettings
from smcp_box.errors import ClientMetadataError
from smcp_box.seams import Auditor, JsonObject, TenantDirectory
from smcp_box.store.oauth import OAuthRecords, RefreshRecord

logger = logging.getLogger("smcp_box.oauth")

T = TypeVar("T")
_OAUTH_TENANT_MODES: Final = frozenset({"oauth", "both"})


# --- what the server is given ---------------------------------------------------------------


class UserDirectory(Protocol):
    """The users store (the Store facade has these)."""

    async def get_user(self, username: str) -> Any: ...

    async def user_grants(self, username: str) -> dict[str, frozenset[str]]: ...


class AccessTokenIssuer(Protocol):
    """:class:`smcp_box.auth.tokens.TokenService`, as far as the authorization server uses it."""

    def issue_access_token(
        self,
        *,
        issuer: str,
        subject: str,
        tenant: str,
        audience: str,
        client_id: str,
        scopes: frozenset[str],
    ) -> tuple[str, Any]: ...

    def verify_access_token(self, token: str, *, audience: str) -> Any: ...

    async def revoke_access_token(self, token: str) -> bool: ...


class ClientMetadataSource(Protocol):
    """:class:`smcp_box.auth.cimd.CimdFetcher`."""

    async def fetch(self, client_id_url: str) -> Any: ...


# --- one request's context --------------------------------------------------------------------


@dataclass(frozen=True)
class HttpInput:
    """The parts of an HTTP request authlib reads, taken from Quart by the web layer."""

    method: str
    #: The request's URL as the box's public base spells it (issuer + path + query).
    uri: str
    headers: Mapping[str, str]
    #: Query and form parameters, every value of each (authlib refuses repeated parameters).
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str]] = ()


@dataclass
class AsResponse:
    """What an endpoint answers: status, body (JSON object or text) and headers."""

    status: int
    body: JsonObject | str
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"]
        self.headers.append(("Location", value))


@dataclass(frozen=True)
class _Scope:
    loop: asyncio.AbstractEventLoop
    issuer: str
    source_ip: str | None


_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("smcp_oauth_scope")


class OAuthRefusal(Exception):
    """An authorization request that cannot be shown to the user. ``response`` is either a
    redirect to the client carrying the error (the client and redirect URI were valid) or an
    error the page shows (they were not, so the box never redirects: no open redirect)."""

    def __init__(self, response: AsResponse, error: str, description: str) -> None:
        super().__init__(description)
        self.response = response
        self.error = error
        self.description = description


@dataclass(frozen=True)
class ConsentRequest:
    """A valid authorization request, for the login and consent pages."""

    client: OAuthClient
    redirect_uri: str
    tenant: str
    resource: str
    #: The scopes asked for; empty when the client named none (then: the user's whole grant).
    scopes: frozenset[str]
    state: str | None
    grant: Any = field(repr=False, compare=False)

    @property
    def redirect_host(self) -> str:
        parts = urlsplit(self.redirect_uri)
        return parts.netloc or f"{parts.scheme}:"


class BoxAuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # authlib is untyped
    def __init__(
        self,
        *,
        settings: OAuthSettings,
        records: OAuthRecords,
        users: UserDirectory,
        tokens: AccessTokenIssuer,
        tenants: TenantDirectory,
        auditor: Auditor,
        cimd: ClientMetadataSource | None,
        clock: Callable[[], float] = time.time,
        new_secret: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        super().__init__(scopes_supported=list(ALL_SCOPES))
        self.settings = settings
        self.records = records
        self.users = users
        self.tokens = tokens
        self.tenants = tenants
        self.auditor = auditor
        self.cimd = cimd if settings.cimd_allowed_hosts else None
        self.clock = clock
        self.new_secret = new_secret
        self.register_grant(CodeFlow, [S256Only(required=True)])
        self.register_grant(RefreshFlow)
        self.register_endpoint(Revocation)
        self.register_endpoint(Registration)
        self._iss = _Issuer()
        self.register_extension(self._iss)
        self.register_token_generator("default", self._generate_token)

    # --- the async entry points (the web layer calls these) --------------------------------

    def issuer(self, scheme: str, host: str) -> str:
        return base_url(self.settings.issuer, scheme, host)

    def metadata(self, issuer: str) -> JsonObject:
        """RFC 8414 authorization server metadata."""
        body: JsonObject = {
            "issuer": issuer,
            "authorization_endpoint": issuer + AUTHORIZE_PATH,
            "token_endpoint": issuer + TOKEN_PATH,
            "revocation_endpoint": issuer + REVOKE_PATH,
            "jwks_uri": issuer + JWKS_PATH,
            "scopes_supported": list(ALL_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": self.cimd is not None,
        }
        if self.settings.dynamic_registration:
            body["registration_endpoint"] = issuer + REGISTER_PATH
        return body

    async def consent_request(self, inp: HttpInput, issuer: str, ip: str | None) -> ConsentRequest:
        """Validate an authorization request; :class:`OAuthRefusal` when it is not valid."""
        return await self._in_thread(self._consent_request, inp, issuer=issuer, ip=ip)

    async def authorize(
        self, inp: HttpInput, grantee: Grantee | None, issuer: str, ip: str | None
    ) -> AsResponse:
        """The redirect back to the client: a code for ``grantee``, or access_denied for None.
        :class:`OAuthRefusal` when the request is (no longer) valid."""
        return await self._in_thread(self._authorize, inp, grantee, issuer=issuer, ip=ip)

    async def token(self, inp: HttpInput, issuer: str, ip: str | None) -> AsResponse:
        return await self._in_thread(self.create_token_response, inp, issuer=issuer, ip=ip)

    async def revoke(self, inp: HttpInput, issuer: str, ip: str | None) -> AsResponse:
        return await self._in_thread(
            self.create_endpoint_response, Revocation.ENDPOINT_NAME, inp, issuer=issuer, ip=ip
        )

    async def register(
        self, inp: HttpInput, body: JsonObject, issuer: str, ip: str | None
    ) -> AsResponse:
        """RFC 7591 registration of ``body``, the request's JSON object. Every client is
        public, so "none" replaces whatever token_endpoint_auth_method was asked for."""
        payload = {**body, "token_endpoint_auth_method": "none"}
        return await self._in_thread(
            self.create_endpoint_response,
            Registration.ENDPOINT_NAME,
            _Json(inp, payload),
            issuer=issuer,
            ip=ip,
        )

    async def grantee_for(self, username: str, request: ConsentRequest) -> Grantee | None:
        """The user as grantee of ``request``: None when they have no grant on its tenant or
        none of the scopes asked for (an empty ask means their whole grant)."""
        return await self._grantee(username, request.tenant, request.resource, request.scopes)

    # --- authlib's framework hooks ----------------------------------------------------------

    def create_oauth2_request(self, request: HttpInput) -> OAuth2Request:
        return _Request(request)

    def create_json_request(self, request: _Json) -> JsonRequest:
        return request.to_authlib()

    def handle_response(self, status: int, body: Any, headers: Any) -> AsResponse:
        text = body if isinstance(body, dict | str) else str(body)
        return AsResponse(status, text, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass  # audit rows are written where the outcome is known, not from signals

    def query_client(self, client_id: str) -> OAuthClient | None:
        if client_id.startswith(("https://", "http://")):
            return self._metadata_document_client(client_id)
        record = self.run(self.records.get_client(client_id))
        if record is None:
            return None
        return OAuthClient(
            client_id=record.client_id,
            client_name=record.client_name,
            redirect_uris=record.redirect_uris,
            source=record.kind,
            client_uri=record.client_uri,
            grant_types=record.grant_types,
        )

    def save_token(self, token: JsonObject, request: OAuth2Request) -> None:
        refresh = token.get("refresh_token")
        user: Grantee = request.user
        previous = request.refresh_token
        family = previous.record.family if previous is not None else self.new_secret()
        if refresh is not None:
            self.run(
                self.records.save_refresh(
                    refresh,
                    RefreshRecord(
                        family=family,
                        client_id=request.client.client_id,
                        username=user.username,
                        tenant=user.tenant,
                        resource=user.resource,
                        scope=token["scope"],
                        expires_at=self.clock() + self.settings.refresh_token_ttl_s,
                    ),
                )
            )
        code = request.authorization_code
        if code is not None and refresh is not None:
            self.run(self.records.link_code_family(code.code, family))
        self.audit(
            "oauth.token",
            user=user.username,
            tenant=user.tenant,
            outcome="ok",
            detail={
                "grant": "refresh" if previous is not None else "issue",
                "client_id": request.client.client_id,
                "scope": token["scope"],
            },
        )

    # --- helpers the grants use -------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the event loop from authlib's worker thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, _scope.get().loop).result()

    def audit(
        self, event: str, *, user: str, tenant: str | None, outcome: str, detail: JsonObject
    ) -> None:
        self.run(
            self.auditor.record(
                event,
                tenant=tenant,
                actor=f"user:{user}" if user else "anonymous",
                source_ip=_scope.get().source_ip,
                outcome=outcome,
                detail=detail,
            )
        )

    def current_issuer(self) -> str:
        return _scope.get().issuer

    def tenant_of_resource(self, resource: str | None) -> str | None:
        """The tenant whose resource URL is ``resource``, if it takes OAuth tokens."""
        if not resource:
            return None
        try:
            parts = urlsplit(resource)
        except ValueError:
            return None
        if parts.query or parts.fragment:
            return None
        issuer = self.current_issuer()
        match = re.fullmatch(r"/t/([^/]+)/mcp", parts.path)
        if match is not None:
            name = match[1]
            tenant = self.tenants.get(name)
            expected = resource_url(issuer, name)
        elif parts.path == "/mcp" and parts.hostname:
            tenant = self.tenants.by_host(parts.hostname.lower())
            expected = host_resource_url(self.issuer(parts.scheme, parts.netloc))
        else:
            return None
        if tenant is None or resource != expected or tenant.auth_mode not in _OAUTH_TENANT_MODES:
            return None
        return tenant.name

    def grantee(
        self, username: str, tenant: str, resource: str, scopes: frozenset[str]
    ) -> Grantee | None:
        return self.run(self._grantee(username, tenant, resource, scopes))

    async def _grantee(
        self, username: str, tenant: str, resource: str, scopes: frozenset[str]
    ) -> Grantee | None:
        user = await self.users.get_user(username)
        if user is None or user.disabled:
            return None
        granted = (await self.users.user_grants(username)).get(tenant)
        if not granted:
            return None
        allowed = granted & scopes if scopes else frozenset(granted)
        if not allowed:
            return None
        return Grantee(username, tenant, resource, frozenset(allowed))

    # --- internals ------------------------------------------------------------------------------

    async def _in_thread(
        self, func: Callable[..., T], *args: Any, issuer: str, ip: str | None
    ) -> T:
        token = _scope.set(_Scope(asyncio.get_running_loop(), issuer, ip))
        try:
            # to_thread copies the context, so the worker sees this request's scope.
            return await asyncio.to_thread(func, *args)
        finally:
            _scope.reset(token)

    def _metadata_document_client(self, client_id: str) -> OAuthClient | None:
        if self.cimd is None:
            return None
        try:
            meta = self.run(self.cimd.fetch(client_id))
        except ClientMetadataError as exc:
            raise InvalidClientError(description=describe(exc.message)) from None
        return OAuthClient(
            client_id=meta.client_id,
            client_name=meta.client_name or urlsplit(client_id).netloc,
            redirect_uris=tuple(meta.redirect_uris),
            source="metadata document",
            client_uri=meta.client_uri,
            grant_types=tuple(meta.grant_types),
        )

    def _consent_request(self, inp: HttpInput) -> ConsentRequest:
        try:
            grant = self.get_consent_grant(request=inp, end_user=None)
        except OAuth2Error as error:
            raise self._refusal(inp, error) from None
        request = grant.request
        return ConsentRequest(
            client=request.client,
            redirect_uri=grant.redirect_uri,
            tenant=request.smcp_tenant,
            resource=request.smcp_resource,
            scopes=frozenset((request.scope or "").split()),
            state=request.payload.state,
            grant=grant,
        )

    def _authorize(self, inp: HttpInput, grantee: Grantee | None) -> AsResponse:
        consent = self._consent_request(inp)
        response: AsResponse = self.create_authorization_response(
            request=consent.grant.request, grant_user=grantee, grant=consent.grant
        )
        return response

    def _refusal(self, inp: HttpInput, error: OAuth2Error) -> OAuthRefusal:
        response: AsResponse = self.handle_error_response(inp, error)
        if response.location is not None:
            # The client and its redirect URI were valid: the error goes back to the client,
            # with iss like every authorization response (RFC 9207).
            self._iss.add_issuer_parameter(self, response)
        return OAuthRefusal(response, str(error.error), str(error.description or error.error))

    def _generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: Grantee,
        scope: str | None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> JsonObject:
        scopes = frozenset((scope or "").split()) & user.scopes
        access, _claims = self.tokens.issue_access_token(
            issuer=self.current_issuer(),
            subject=user.username,
            tenant=user.tenant,
            audience=user.resource,
            client_id=client.client_id,
            scopes=scopes,
        )
        token: JsonObject = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": self.settings.access_token_ttl_s,
            "scope": " ".join(s for s in ALL_SCOPES if s in scopes),
        }
        if include_refresh_token:
            token["refresh_token"] = self.new_secret()
        return token


class _Payload(BasicOAuth2Payload):  # type: ignore[misc]  # authlib is untyped
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        super().__init__({})
        self._data: dict[str, str] = {}
        self._datalist: dict[str, list[str]] = {}
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist.setdefault(key, []).append(value)


class _Request(OAuth2Request):  # type: ignore[misc]  # authlib is untyped
    def __init__(self, inp: HttpInput) -> None:
        super().__init__(method=inp.method, uri=inp.uri, headers=dict(inp.headers))
        self.payload = _Payload([*inp.query, *inp.form])
        self._form = dict(reversed(inp.form))  # first value wins, as in the payload
        self._args = dict(reversed(inp.query))
        self.smcp_tenant: str | None = None
        self.smcp_resource: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class _Json:
    inp: HttpInput
    body: JsonObject

    def to_authlib(self) -> JsonRequest:
        request = JsonRequest(self.inp.method, self.inp.uri, dict(self.inp.headers))
        request.payload = _JsonBody(self.body)
        return request


class _JsonBody(JsonPayload):  # type: ignore[misc]  # authlib is untyped
    def __init__(self, body: JsonObject) -> None:
        self._body = body

    @property
    def data(self) -> JsonObject:
        return self._body


class _Issuer(IssuerParameter):  # type: ignore[misc]  # authlib is untyped
    def get_issuer(self) -> str:
        return _scope.get().issuer
