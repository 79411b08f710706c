"""OAuth clients as the authorization server sees them, and the redirect URI rules (OAuth 2.1).

Every client is public: it authenticates with nothing at the token endpoint, and PKCE (S256) is
what binds a code to the client that asked for it. A client comes from one of three places, in
the order the MCP specification lists them: pre-registered by an admin, a Client ID Metadata
Document (its ``client_id`` is an https URL the box fetches), or dynamic registration.

Redirect URIs (RFC 9700, RFC 8252):
- registered: https anywhere; http only to a loopback host (127.0.0.1, [::1], localhost);
  private-use schemes of native apps (``cursor://...``); never a fragment, never a scheme a
  browser runs or reads locally (javascript, data, file, ...).
- matched exactly, except that a loopback http redirect may use any port (RFC 8252 section
  7.3: native apps listen on an ephemeral port).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})
#: Schemes that must never be a redirect target: they run script or read local data.
_FORBIDDEN_SCHEMES: Final = frozenset(
    {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ws", "wss"}
)
GRANT_TYPES: Final = ("authorization_code", "refresh_token")


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered as a redirect URI, or None if it can."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (parses the port; a bad one raises ValueError)
    except ValueError:
        return f"redirect URI {uri!r} is not a valid URL"
    scheme = parts.scheme.lower()
    if not scheme:
        return f"redirect URI {uri!r} has no scheme"
    if parts.fragment or "#" in uri:
        return f"redirect URI {uri!r} has a fragment, which OAuth forbids"
    if scheme in _FORBIDDEN_SCHEMES:
        return f"redirect URI {uri!r} uses the {scheme}: scheme, which is never allowed"
    if scheme == "https":
        return None if parts.hostname else f"redirect URI {uri!r} has no host"
    if scheme == "http":
        if parts.hostname in LOOPBACK_HOSTS:
            return None
        return f"redirect URI {uri!r}: http is allowed only to a loopback host; use https"
    return None  # a native app's private-use scheme (RFC 8252 section 7.1)


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Exact match, or the same loopback http URI on another port."""
    if registered == requested:
        return True
    try:
        want, got = urlsplit(registered), urlsplit(requested)
        got.port  # noqa: B018 (a bad port raises ValueError)
    except ValueError:
        return False
    return (
        want.scheme == got.scheme == "http"
        and want.hostname in LOOPBACK_HOSTS
        and want.hostname == got.hostname
        and (want.path or "/") == (got.path or "/")
        and want.query == got.query
        and not got.fragment
    )


@dataclass(frozen=True)
class OAuthClient(ClientMixin):  # type: ignore[misc]  # authlib is untyped
    """One client, from whichever source, in the shape authlib's grants ask about."""

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    #: "preregistered", "dynamic" or "metadata document".
    source: str
    client_uri: str | None = None
    grant_types: tuple[str, ...] = GRANT_TYPES

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # No default: a request must name its redirect URI, so the page never guesses where to
        # send the user.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        # Which scopes a user may grant is decided per tenant at consent time; the scope
        # vocabulary itself is checked by the server against scopes_supported.
        return " ".join((scope or "").split())

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(uri, redirect_uri) for uri in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # public clients only

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types
