"""Pure HTTP-level rules of the Streamable HTTP transport (no sockets, no framework).

Media negotiation, Origin validation against DNS rebinding, the Bearer challenge, client
addresses and bounded metric labels. (The status a JSON-RPC error travels with is
:mod:`smcp_box.protocol.error_replies`'.)
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

JSON_MEDIA_TYPE: Final = "application/json"
SSE_MEDIA_TYPE: Final = "text/event-stream"

_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})

#: Methods that become metric labels as themselves; anything else is "other", so a client
#: cannot blow up label cardinality with made-up method names.
_METRIC_METHODS: Final = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "logging/setLevel",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
        "subscriptions/listen",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    }
)


def _media_types(accept: str) -> set[str]:
    return {part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()}


def accepts(accept: str | None) -> tuple[bool, bool]:
    """(accepts JSON, accepts SSE) for an ``Accept`` header, honouring ``*/*`` and ``type/*``.

    An absent header accepts neither: MCP requires clients to list the types they take.
    """
    if accept is None:
        return False, False
    types = _media_types(accept)
    wildcard = "*/*" in types
    return (
        wildcard or JSON_MEDIA_TYPE in types or "application/*" in types,
        wildcard or SSE_MEDIA_TYPE in types or "text/*" in types,
    )


def is_json_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """Whether a request's ``Origin`` passes DNS-rebinding protection.

    No Origin (a non-browser client) passes. Loopback origins (``localhost``, ``127.0.0.1``,
    ``[::1]``, any port, http or https) pass. Otherwise the origin must equal an allowed entry,
    or match an entry ending in ``:*`` (any port). The opaque origin ``null`` never passes.
    """
    if origin is None:
        return True
    origin = origin.strip()
    try:
        parts = urlsplit(origin)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    if parts.scheme in ("http", "https") and host in _LOOPBACK_HOSTS:
        return True
    lowered = origin.lower().rstrip("/")
    for entry in allowed:
        candidate = entry.strip().lower().rstrip("/")
        if candidate == lowered:
            return True
        if candidate.endswith(":*") and lowered.startswith(candidate[:-1]):
            port = lowered[len(candidate) - 1 :]
            if port.isdigit():
                return True
    return False


def host_name(host: str | None) -> str | None:
    """The bare name a ``Host`` header (HTTP/2 ``:authority``, which Hypercorn hands over as
    ``Host``) names: lowercase, without port, IPv6 brackets or a trailing dot. None when absent
    or malformed (userinfo, a path, a bad port)."""
    if not host:
        return None
    value = host.strip()
    if any(ch in value for ch in "/?#@\\ "):
        return None
    try:
        parts = urlsplit(f"//{value}")
        name = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return None
    name = (name or "").rstrip(".")
    return name or None


def https_origin_host(origin: str | None) -> str | None:
    """The host name of an ``https`` Origin (any port), else None.

    A tenant's ``hosts`` are its own origins: a page served from ``https://notes.box.lan`` (on
    any port, since a name under the admin's DNS is theirs on every port) may call that tenant.
    Plain http is left to ``allowed_origins``: the name's certificate is what makes it the
    tenant's. DNS rebinding cannot forge this: the attacker's page carries the attacker's name.
    """
    if origin is None:
        return None
    try:
        parts = urlsplit(origin.strip())
        name = parts.hostname
        _ = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or not name or parts.path not in ("", "/"):
        return None
    return name.rstrip(".") or None


def _quoted(value: str) -> str:
    # RFC 9110 quoted-string: escape backslash and quote, drop control characters.
    cleaned = "".join(ch for ch in value if ch == "\t" or 0x20 <= ord(ch) < 0x7F)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(
    *,
    realm: str,
    error: str | None,
    description: str | None,
    resource_metadata: str | None = None,
    scope: str | None = None,
) -> str:
    """A ``WWW-Authenticate: Bearer`` value (RFC 6750 §3, RFC 9728 ``resource_metadata``;
    ``scope`` names what the client should ask for, or what a 403 lacked)."""
    params = [f"realm={_quoted(realm)}"]
    if error is not None:
        params.append(f"error={_quoted(error)}")
    if scope is not None:
        params.append(f"scope={_quoted(scope)}")
    if description:
        params.append(f"error_description={_quoted(description)}")
    if resource_metadata is not None:
        params.append(f"resource_metadata={_quoted(resource_metadata)}")
    return "Bearer " + ", ".join(params)


def metric_method_label(method: str | None) -> str:
    if method is None:
        return "none"
    return method if method in _METRIC_METHODS else "other"


#: An IPv4 or IPv6 network (trusted proxies here, allowed_networks in tenancy).
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: An IPv4 or IPv6 address.
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def parse_address(text: str | None) -> IpAddress | None:
    """An address as the box compares, counts and records it; None when ``text`` is not one.

    The one parser of client and proxy addresses (trusted proxies, ``allowed_networks``,
    per-address lockout). An IPv6 zone (``%eth0``) is dropped, and an IPv4-mapped IPv6 address
    (``::ffff:192.0.2.1``, how a dual-stack socket reports an IPv4 peer) *is* that IPv4
    address: otherwise a proxy or network written as IPv4, the safe and usual way, would not
    match the same host arriving on a dual-stack listener, and one client would have two
    lockout counters.
    """
    if not text:
        return None
    try:
        parsed = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def in_networks(address: IpAddress | None, networks: Iterable[IpNetwork]) -> bool:
    """Whether ``address`` (from :func:`parse_address`) lies in one of ``networks``; an IPv4
    address never lies in an IPv6 network and the other way round."""
    return address is not None and any(address in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[str, ...]
) -> str | None:
    """The client's address, normalized by :func:`parse_address`: the TCP peer, unless the
    peer is a trusted proxy, in which case the nearest ``X-Forwarded-For`` entry that is not
    itself a trusted proxy. A peer that is not an IP address (None, a Unix socket) is returned
    as it is.

    Entries are read right to left (each proxy appends the address it saw), so a client cannot
    choose its own address by sending the header: only what trusted proxies appended counts.
    A malformed entry stops the walk at the last proxy.
    """
    if not (trusted_proxies and forwarded_for):
        return _normalized_peer(peer)
    chosen = parse_address(peer)
    if chosen is None:
        return peer
    if trusted_proxies and forwarded_for:
        networks = _networks(trusted_proxies)
        if in_networks(chosen, networks):
            for entry in reversed(forwarded_for.split(",")):
                candidate = parse_address(entry)
                if candidate is None:
                    break
                chosen = candidate
                if not in_networks(candidate, networks):
                    break
    return str(chosen)


@functools.lru_cache(maxsize=1024)
def _normalized_peer(peer: str | None) -> str | None:
    """The TCP peer as :func:`client_address` returns it without proxies. Cached: parsing an
    address costs more than the rest of the per-request address checks, and a box sees the
    same peers again and again (the cache is bounded; peers are not chosen by the request)."""
    chosen = parse_address(peer)
    return peer if chosen is None else str(chosen)
