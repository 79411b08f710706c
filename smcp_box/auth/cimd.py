"""Client ID Metadata Documents: an OAuth client whose ``client_id`` is an HTTPS URL publishes
its metadata (name, redirect URIs) at that URL, and the box fetches it.

Fetching a URL a stranger chose is a server-side request forgery risk, so the rules are strict:

- The host must be on ``[oauth] cimd_allowed_hosts``. ``"*"`` admits any host whose every
  resolved address is public; a host listed by name may resolve to private or loopback addresses
  (a client on the LAN). An empty list turns CIMD off.
- ``https`` only; ``http`` only for a host listed by name whose addresses are all loopback (a
  test server on the box itself).
- The host is resolved once, every address checked, and the connection goes to a checked
  address: the request URL carries the IP literal, the ``Host`` header and the TLS server name
  (httpx's ``sni_hostname`` extension) carry the host name, so TLS still verifies the
  certificate against the name while nothing resolves the name a second time (no DNS
  rebinding between the check and the connect).
- No redirects (a 3xx is an error naming it), no proxies from the environment, a size cap
  (``cimd_max_bytes``, enforced while streaming) and one overall deadline (``cimd_timeout_s``).
- Successful documents are cached per URL for ``cimd_cache_s`` or the response's
  ``Cache-Control: max-age`` if lower (``no-store``/``no-cache``: not cached). Failures are not
  cached, so a fixed document is picked up on the next attempt.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from smcp_box.config import OAuthSettings
from smcp_box.errors import ClientMetadataError

#: ``resolve(host, port)`` → the host's IP addresses as strings. Injected so tests can pretend
#: a name resolves to a private address without any such address being contacted.
Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAX_CACHED: Final = 1_000
_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_STRING_FIELDS: Final = ("client_name", "client_uri", "logo_uri")


@dataclass(frozen=True)
class ClientMetadata:
    """The fields of a Client ID Metadata Document the authorization server uses."""

    client_id: str
    redirect_uris: tuple[str, ...]
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    #: Always "none": a CIMD client is public (it has no secret to authenticate with).
    token_endpoint_auth_method: str = "none"  # noqa: S105 - a method's name, not a secret
    grant_types: tuple[str, ...] = ("authorization_code",)
    response_types: tuple[str, ...] = ("code",)


@dataclass(frozen=True)
class _Target:
    """A checked URL: where to connect (``address``) and what name to present (``host``)."""

    scheme: str
    host: str
    port: int
    address: IPAddress
    path_and_query: str


@dataclass(frozen=True)
class _Cached:
    metadata: ClientMetadata
    expires_at: float


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver, asynchronously: every address ``host`` has for TCP."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CimdFetcher:
    """Fetches, checks and caches Client ID Metadata Documents under ``settings``' rules."""

    def __init__(
        self,
        settings: OAuthSettings,
        *,
        resolve: Resolver = system_resolve,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._resolve = resolve
        self._clock = clock
        self._any_public = "*" in settings.cimd_allowed_hosts
        self._named = frozenset(
            host.strip().lower().strip("[]") for host in settings.cimd_allowed_hosts if host != "*"
        )
        self._verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._cache: dict[str, _Cached] = {}

    async def fetch(self, client_id_url: str) -> ClientMetadata:
        """The metadata published at ``client_id_url``; ClientMetadataError says what is wrong."""
        now = self._clock()
        cached = self._cache.get(client_id_url)
        if cached is not None and cached.expires_at > now:
            return cached.metadata
        target = await self._check(client_id_url)
        try:
            async with asyncio.timeout(self._settings.cimd_timeout_s):
                body, max_age = await self._get(client_id_url, target)
        except TimeoutError:
            raise ClientMetadataError(
                f"client metadata {client_id_url}: no complete answer within "
                f"{self._settings.cimd_timeout_s:g} s ([oauth] cimd_timeout_s)"
            ) from None
        metadata = parse_client_metadata(client_id_url, body)
        lifetime = min(self._settings.cimd_cache_s, max_age) if max_age is not None else None
        if lifetime is None:
            lifetime = self._settings.cimd_cache_s
        if lifetime > 0:
            self._remember(client_id_url, _Cached(metadata, self._clock() + lifetime))
        return metadata

    def forget(self, client_id_url: str | None = None) -> None:
        """Drop one cached document, or all of them."""
        if client_id_url is None:
            self._cache.clear()
        else:
            self._cache.pop(client_id_url, None)

    async def _check(self, url: str) -> _Target:
        def refuse(why: str) -> ClientMetadataError:
            return ClientMetadataError(f"client_id {url!r} cannot be fetched: {why}")

        if not self._settings.cimd_allowed_hosts:
            raise refuse("client ID metadata documents are turned off ([oauth] cimd_allowed_hosts)")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise refuse(f"not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in ("https", "http") or not host:
            raise refuse("a client_id URL must be an https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise refuse("a client_id URL must not contain a user name or password")
        if parts.fragment or "#" in url:
            raise refuse("a client_id URL must not contain a fragment")
        segments = parts.path.split("/")
        if parts.path in ("", "/") or "." in segments or ".." in segments:
            raise refuse("a client_id URL needs a path, without '.' or '..' segments")
        named = host in self._named
        if not named and not self._any_public:
            raise refuse(f"host {host!r} is not in [oauth] cimd_allowed_hosts")
        port = port or (443 if scheme == "https" else 80)
        addresses = await self._addresses(host, port, refuse)
        if not named:
            private = [str(a) for a in addresses if not is_public_address(a)]
            if private:
                raise refuse(
                    f"host {host!r} resolves to non-public address {', '.join(private)}; "
                    f"list the host in [oauth] cimd_allowed_hosts to allow a LAN client"
                )
        if scheme == "http" and not (named and all(a.is_loopback for a in addresses)):
            raise refuse("http is allowed only for a loopback host listed by name; use https")
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
        return _Target(scheme, host, port, addresses[0], path_and_query)

    async def _addresses(
        self, host: str, port: int, refuse: Callable[[str], ClientMetadataError]
    ) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            found = await self._resolve(host, port)
        except OSError as exc:
            raise refuse(f"host {host!r} does not resolve ({exc})") from None
        addresses: list[IPAddress] = []
        for text in found:
            try:
                addresses.append(ipaddress.ip_address(text))
            except ValueError:
                raise refuse(f"host {host!r} resolved to {text!r}, not an address") from None
        if not addresses:
            raise refuse(f"host {host!r} has no addresses")
        return addresses

    async def _get(self, url: str, target: _Target) -> tuple[bytes, int | None]:
        literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        extensions: dict[str, Any] = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        limit = self._settings.cimd_max_bytes
        try:
            async with httpx.AsyncClient(
                verify=self._verify,
                # Proxy variables must not send the fetch somewhere unchecked.
                trust_env=False,
                follow_redirects=False,
                timeout=self._settings.cimd_timeout_s,
            ) as client:
                request = client.build_request(
                    "GET",
                    f"{target.scheme}://{literal}:{target.port}{target.path_and_query}",
                    headers={
                        "Host": host_header,
                        "Accept": "application/json",
                        # Raw bytes are counted against the cap: no compression (no bombs).
                        "Accept-Encoding": "identity",
                    },
                    extensions=extensions,
                )
                response = await client.send(request, stream=True)
                try:
                    _check_status(url, response)
                    declared = response.headers.get("content-length")
                    if declared is not None and declared.isdigit() and int(declared) > limit:
                        raise _too_large(url, limit)
                    body = bytearray()
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > limit:
                            raise _too_large(url, limit)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise ClientMetadataError(
                f"client metadata {url}: fetch failed: {exc or type(exc).__name__}"
            ) from None
        return bytes(body), _max_age(response.headers.get("cache-control", ""))

    def _remember(self, url: str, entry: _Cached) -> None:
        if len(self._cache) >= _MAX_CACHED:
            now = self._clock()
            for key in [k for k, v in self._cache.items() if v.expires_at <= now]:
                del self._cache[key]
            if len(self._cache) >= _MAX_CACHED:
                del self._cache[next(iter(self._cache))]
        self._cache[url] = entry


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address (IPv4 inside IPv6 judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not (address.is_multicast or address.is_reserved)


def parse_client_metadata(client_id_url: str, body: bytes) -> ClientMetadata:
    """Validate a fetched document; ClientMetadataError names the first problem found."""

    def bad(why: str) -> ClientMetadataError:
        return ClientMetadataError(f"client metadata {client_id_url}: {why}")

    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise bad("the document must be a JSON object")
    if document.get("client_id") != client_id_url:
        raise bad(
            f"its client_id {document.get('client_id')!r} must equal the URL it is served from"
        )
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise bad("a metadata document must not contain a client secret (clients are public)")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise bad(f"token_endpoint_auth_method {method!r} is not supported: only 'none'")
    redirect_uris = _string_list(document, "redirect_uris", bad, required=True)
    strings: dict[str, str | None] = {}
    for name in _STRING_FIELDS:
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            raise bad(f"{name} must be a string")
        strings[name] = value
    return ClientMetadata(
        client_id=client_id_url,
        redirect_uris=redirect_uris,
        client_name=strings["client_name"],
        client_uri=strings["client_uri"],
        logo_uri=strings["logo_uri"],
        grant_types=_string_list(document, "grant_types", bad) or ("authorization_code",),
        response_types=_string_list(document, "response_types", bad) or ("code",),
    )


def _string_list(
    document: dict[str, Any],
    name: str,
    bad: Callable[[str], ClientMetadataError],
    *,
    required: bool = False,
) -> tuple[str, ...]:
    value = document.get(name)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise bad(f"{name} must be a non-empty list of strings")
    return tuple(value)


def _check_status(url: str, response: httpx.Response) -> None:
    if response.is_redirect or 300 <= response.status_code < 400:
        location = response.headers.get("location", "")
        raise ClientMetadataError(
            f"client metadata {url}: the server answered {response.status_code} redirect"
            f"{f' to {location}' if location else ''}; redirects are not followed, the document "
            f"must be served at the client_id URL itself"
        )
    if response.status_code != 200:
        raise ClientMetadataError(
            f"client metadata {url}: the server answered HTTP {response.status_code}"
        )


def _too_large(url: str, limit: int) -> ClientMetadataError:
    return ClientMetadataError(
        f"client metadata {url}: the document is larger than {limit} bytes ([oauth] cimd_max_bytes)"
    )


def _max_age(cache_control: str) -> int | None:
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None
