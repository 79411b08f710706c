"""Protocol revisions the box speaks, and which era a message belongs to.

Two eras share one endpoint. The *legacy* (handshake) revisions open a session with
``initialize``; the *modern* revision (2026-07-28) carries its version, client info and
capabilities in every request's ``_meta`` and has no sessions. Versions are an enumerated set,
compared by position in :data:`KNOWN_VERSIONS`, never as strings.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

from smcp_box.errors import UnsupportedProtocolVersion

#: Every revision the box knows, oldest first.
KNOWN_VERSIONS: Final[tuple[str, ...]] = (
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
)
#: Revisions reached through the ``initialize`` handshake.
HANDSHAKE_VERSIONS: Final[tuple[str, ...]] = KNOWN_VERSIONS[:4]
#: Revisions that use the stateless per-request envelope.
MODERN_VERSIONS: Final[tuple[str, ...]] = ("2026-07-28",)
LATEST_HANDSHAKE_VERSION: Final = HANDSHAKE_VERSIONS[-1]
LATEST_MODERN_VERSION: Final = MODERN_VERSIONS[-1]
#: What a request without an ``MCP-Protocol-Version`` header is taken to speak when nothing else
#: identifies its version (the header did not exist before 2025-06-18).
HEADERLESS_VERSION: Final = "2025-03-26"
#: Every version the box serves, newest first: the ``supported`` list of error -32022.
SUPPORTED_VERSIONS: Final[tuple[str, ...]] = tuple(reversed(KNOWN_VERSIONS))

#: Reserved ``_meta`` key carrying a modern request's protocol version.
PROTOCOL_VERSION_META_KEY: Final = "io.modelcontextprotocol/protocolVersion"


class Era(enum.Enum):
    LEGACY = "legacy"
    MODERN = "modern"


def is_at_least(version: str, minimum: str) -> bool:
    """True when ``version`` is a known revision no older than ``minimum`` (a known one)."""
    if version not in KNOWN_VERSIONS:
        return False
    return KNOWN_VERSIONS.index(version) >= KNOWN_VERSIONS.index(minimum)


def negotiate_handshake(requested: str) -> str:
    """The version the box answers an ``initialize`` with.

    The requested version when the box speaks it through the handshake, otherwise the latest
    handshake version; the client then decides whether it can live with that.
    """
    return requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION


def supports_priming(version: str) -> bool:
    """Whether a client of ``version`` understands an SSE event with an id and empty data.

    2025-11-25 introduced the priming event; older clients may choke on an empty ``data``.
    """
    return is_at_least(version, "2025-11-25")


def unsupported_version(
    requested: str, supported: tuple[str, ...] = SUPPORTED_VERSIONS
) -> UnsupportedProtocolVersion:
    """Error -32022 naming the versions a client may use instead.

    A modern-envelope request is told the modern versions only, the same list ``server/discover``
    advertises (the 2026-07-28 conformance suite requires the two to agree); a request with no
    envelope and an unknown header is told every version, so a handshake-era client sees that it
    can fall back to ``initialize``.
    """
    return UnsupportedProtocolVersion(
        f"Unsupported protocol version {requested!r}; use one of {', '.join(supported)}",
        data={"supported": list(supported), "requested": requested},
    )


def has_modern_envelope(body: Any) -> bool:
    """Whether a decoded body carries the reserved protocol-version key in ``params._meta``.

    The key's prefix is reserved for MCP and legacy traffic never mints it (a bare ``_meta`` is
    no evidence: legacy requests carry ``progressToken`` there), so the key alone selects the
    modern era; a half-built envelope is then rejected by the modern checks with a precise error.
    """
    if not isinstance(body, Mapping):
        return False
    params = body.get("params")
    if not isinstance(params, Mapping):
        return False
    meta = params.get("_meta")
    return isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta


def select_era(header_version: str | None, body: Any = None) -> Era:
    """Which era serves a request, from its ``MCP-Protocol-Version`` header and decoded body.

    A modern header or a modern ``_meta`` envelope selects the modern era (the spec: "a request
    carrying modern per-request ``_meta`` is served statelessly"); a handshake-era header or no
    header selects the legacy era. A header naming no known version is error -32022 (HTTP 400)
    unless the body carries a modern envelope, in which case the modern checks report the
    header/body disagreement instead.
    """
    if header_version in MODERN_VERSIONS or has_modern_envelope(body):
        return Era.MODERN
    if header_version is None or header_version in HANDSHAKE_VERSIONS:
        return Era.LEGACY
    raise unsupported_version(header_version)
