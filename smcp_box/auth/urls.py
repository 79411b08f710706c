"""The box's OAuth URLs: each tenant's resource URL, its protected-resource metadata URL, and the
authorization server's paths. Pure string functions, no I/O.

A tenant's resource URL is what an access token's ``aud`` must equal (RFC 8707) and what the
client names in its ``resource`` parameter, so the resource server, the authorization server
and the metadata endpoints must all compute it the same way: here, and nowhere else.

The base is the ``[oauth] issuer`` setting when set (one canonical name for a box reached
through a proxy or by several names); otherwise the request's scheme and Host, lowercased and
without the scheme's default port, since that is how a client that was given the URL spells it.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

#: Authorization server endpoints (the ``oauth`` blueprint serves them).
AUTHORIZE_PATH: Final = "/oauth/authorize"
TOKEN_PATH: Final = "/oauth/token"  # noqa: S105 (a URL path, not a secret)
REVOKE_PATH: Final = "/oauth/revoke"
REGISTER_PATH: Final = "/oauth/register"
JWKS_PATH: Final = "/oauth/jwks"
#: RFC 8414 authorization server metadata, and the OpenID discovery path clients also probe.
AS_METADATA_PATH: Final = "/.well-known/oauth-authorization-server"
OIDC_METADATA_PATH: Final = "/.well-known/openid-configuration"
#: RFC 9728 protected resource metadata: this prefix, then the resource URL's path.
PRM_PATH: Final = "/.well-known/oauth-protected-resource"

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


def base_url(issuer_setting: str, scheme: str, host: str) -> str:
    """The box's public base URL: ``issuer_setting`` when set, else ``scheme://host``.

    ``host`` is the request's Host header (or HTTP/2 ``:authority``), port included. The
    result has no trailing slash; scheme and host are lowercased and the scheme's default
    port dropped, so ``HTTPS://Box.LAN:443`` and ``https://box.lan`` name one resource.
    """
    if issuer_setting:
        return issuer_setting.rstrip("/")
    scheme = scheme.lower()
    host = host.strip().lower()
    if not host:
        raise ValueError("the request has no Host header to build the box's URL from")
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and host.endswith(f":{default}") and not host.endswith("]"):
        host = host[: -len(default) - 1]
    return f"{scheme}://{host}"


def resource_url(base: str, tenant: str) -> str:
    """The resource URL of ``tenant`` served by path: ``{base}/t/{tenant}/mcp``."""
    return f"{base}/t/{tenant}/mcp"


def host_resource_url(base: str) -> str:
    """The resource URL of a tenant served by its own host name: ``{base}/mcp``."""
    return f"{base}/mcp"


def request_resource_url(issuer_setting: str, scheme: str, host: str, tenant: str | None) -> str:
    """The resource URL a request was made to: ``tenant``'s path form, or (``tenant`` None, a
    request to ``/mcp`` routed by its Host) the host form on the request's own host name.

    A host-routed tenant has its own name, so its base is never the issuer's host; it takes
    the issuer's scheme when one is set (a TLS-terminating proxy makes requests look like
    http), else the request's. ValueError when the request has no Host.
    """
    if tenant is not None:
        return resource_url(base_url(issuer_setting, scheme, host), tenant)
    if issuer_setting:
        scheme = urlsplit(issuer_setting).scheme
    return host_resource_url(base_url("", scheme, host))


def protected_resource_metadata_url(resource: str) -> str:
    """RFC 9728 section 3.1: the well-known segment goes between the origin and the path, so
    ``https://h/t/a/mcp`` has its metadata at
    ``https://h/.well-known/oauth-protected-resource/t/a/mcp``."""
    parts = urlsplit(resource)
    path = parts.path if parts.path != "/" else ""
    return urlunsplit((parts.scheme, parts.netloc, PRM_PATH + path, "", ""))
