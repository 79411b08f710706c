"""The 2026-07-28 per-request envelope: header and ``_meta`` checks, discover, result shaping.

Validation ladder for a request (first failure wins), as the spec and the reference SDK order it:

1. A routing header (``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``) sent twice:
   -32020 (first-copy and last-copy readers would disagree).
2. ``params._meta`` is an object holding ``io.modelcontextprotocol/protocolVersion`` and
   ``io.modelcontextprotocol/clientCapabilities``: else -32602.
3. ``MCP-Protocol-Version`` is present and equals the ``_meta`` version; ``Mcp-Method`` is present
   and equals ``method``; for ``tools/call``/``prompts/get`` (``params.name``) and
   ``resources/read`` (``params.uri``) carrying that value, ``Mcp-Name`` is present and equals it
   after decoding the ``=?base64?…?=`` sentinel: else -32020. Header checks run before the version
   check so a client that disagrees with itself is told so.
4. The ``_meta`` version is a string (-32602) naming a modern version this box serves (-32022
   with ``data.supported`` — the modern versions, as ``server/discover`` lists them — and
   ``data.requested``).
5. ``clientCapabilities`` is an object, ``clientInfo`` (optional) an object, ``logLevel``
   (optional) a known level: else -32602.

Every rejection is HTTP 400, except -32601 (method not found) which is 404 in this era.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from smcp_box.errors import HeaderMismatch, InvalidParams
from smcp_box.protocol.jsonrpc import Request
from smcp_box.protocol.loglevels import parse_level
from smcp_box.protocol.versions import (
    MODERN_VERSIONS,
    PROTOCOL_VERSION_META_KEY,
    unsupported_version,
)
from smcp_box.seams import JsonObject

CLIENT_INFO_META_KEY: Final = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_META_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
LOG_LEVEL_META_KEY: Final = "io.modelcontextprotocol/logLevel"
SERVER_INFO_META_KEY: Final = "io.modelcontextprotocol/serverInfo"

PROTOCOL_VERSION_HEADER: Final = "mcp-protocol-version"
METHOD_HEADER: Final = "mcp-method"
NAME_HEADER: Final = "mcp-name"
ROUTING_HEADERS: Final = frozenset({PROTOCOL_VERSION_HEADER, METHOD_HEADER, NAME_HEADER})

#: Methods whose target is mirrored into ``Mcp-Name``, and the params key holding it.
NAME_BEARING_METHODS: Final[Mapping[str, str]] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    # The tasks extension (docs/tasks.md): the task id is the routing name (SEP-2663).
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}

#: Results that carry client-cache hints (``ttlMs``, ``cacheScope``), required on this wire.
CACHEABLE_METHODS: Final = frozenset(
    {
        "server/discover",
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
    }
)

_BASE64_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")
# Field values per RFC 9110: visible ASCII, space and tab.
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")


@dataclass(frozen=True)
class Envelope:
    """What a modern request says about itself in ``_meta``."""

    protocol_version: str
    client_capabilities: JsonObject
    client_info: JsonObject | None
    #: The lowest log level the request opted in to; None means no log notifications.
    log_level: str | None


def decode_header_value(value: str | None) -> str | None:
    """Undo the ``=?base64?…?=`` sentinel encoding; None for absent or malformed values."""
    if value is None:
        return None
    match = _BASE64_SENTINEL.fullmatch(value)
    if match is None:
        return value if _HEADER_VALUE.fullmatch(value) else None
    payload = match.group("payload")
    try:
        raw = base64.b64decode(payload, validate=True)
    except binascii.Error:
        return None
    # Only the canonical encoding counts: two spellings of one value must not both match.
    if base64.b64encode(raw).decode("ascii") != payload:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def find_duplicate_routing_header(header_lines: Iterable[tuple[str, str]]) -> str | None:
    seen: set[str] = set()
    for name, _ in header_lines:
        key = name.lower()
        if key in ROUTING_HEADERS:
            if key in seen:
                return key
            seen.add(key)
    return None


def check_request(
    request: Request,
    headers: Mapping[str, str],
    header_lines: Iterable[tuple[str, str]] = (),
) -> Envelope:
    """Run the validation ladder; ``headers`` is keyed by lower-case header name."""
    duplicate = find_duplicate_routing_header(header_lines)
    if duplicate is not None:
        raise HeaderMismatch(f"Header mismatch: the {duplicate} header appears more than once")

    params = request.params or {}
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise InvalidParams(
            f"Invalid params: params._meta must be an object carrying "
            f"{PROTOCOL_VERSION_META_KEY!r} and {CLIENT_CAPABILITIES_META_KEY!r}"
        )
    missing = [
        k for k in (PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY) if k not in meta
    ]
    if missing:
        raise InvalidParams(f"Invalid params: params._meta is missing {', '.join(missing)}")
    version: Any = meta[PROTOCOL_VERSION_META_KEY]

    header_version = headers.get(PROTOCOL_VERSION_HEADER)
    if header_version is None:
        raise HeaderMismatch("Header mismatch: the MCP-Protocol-Version header is required")
    if header_version != version:
        raise HeaderMismatch(
            f"Header mismatch: MCP-Protocol-Version {header_version!r} does not match "
            f"params._meta {PROTOCOL_VERSION_META_KEY} {version!r}"
        )
    header_method = headers.get(METHOD_HEADER)
    if header_method is None:
        raise HeaderMismatch("Header mismatch: the Mcp-Method header is required")
    if header_method != request.method:
        raise HeaderMismatch(
            f"Header mismatch: Mcp-Method {header_method!r} does not match method "
            f"{request.method!r}"
        )
    name_key = NAME_BEARING_METHODS.get(request.method)
    if name_key is not None and params.get(name_key) is not None:
        raw_name = headers.get(NAME_HEADER)
        if raw_name is None:
            raise HeaderMismatch(
                f"Header mismatch: {request.method} requires the Mcp-Name header "
                f"(mirroring params.{name_key})"
            )
        if decode_header_value(raw_name) != params[name_key]:
            raise HeaderMismatch(
                f"Header mismatch: Mcp-Name does not match params.{name_key} "
                f"(or is not a valid header value)"
            )

    if not isinstance(version, str):
        raise InvalidParams(f"Invalid params: {PROTOCOL_VERSION_META_KEY} must be a string")
    if version not in MODERN_VERSIONS:
        raise unsupported_version(version, MODERN_VERSIONS)

    capabilities = meta[CLIENT_CAPABILITIES_META_KEY]
    if not isinstance(capabilities, dict):
        raise InvalidParams(f"Invalid params: {CLIENT_CAPABILITIES_META_KEY} must be an object")
    client_info = meta.get(CLIENT_INFO_META_KEY)
    if client_info is not None and not isinstance(client_info, dict):
        raise InvalidParams(f"Invalid params: {CLIENT_INFO_META_KEY} must be an object")
    level = meta.get(LOG_LEVEL_META_KEY)
    if level is not None:
        level = parse_level(level, where=LOG_LEVEL_META_KEY)
    return Envelope(
        protocol_version=version,
        client_capabilities=capabilities,
        client_info=client_info,
        log_level=level,
    )


def check_notification_version(header_version: str | None) -> None:
    """A modern notification POST only needs a served version (the spec defines no header
    rules for notifications, and none is acted on); anything else is -32022."""
    if header_version is not None and header_version not in MODERN_VERSIONS:
        raise unsupported_version(header_version, MODERN_VERSIONS)


def stamp_server_info(result: JsonObject, server_info: JsonObject | None) -> JsonObject:
    """Add the ``serverInfo`` ``_meta`` stamp unless the result already carries one."""
    if server_info is None:
        return result
    meta = result.get("_meta")
    if meta is None:
        result["_meta"] = {SERVER_INFO_META_KEY: dict(server_info)}
    elif isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None:
        result["_meta"] = {**meta, SERVER_INFO_META_KEY: dict(server_info)}
    return result


def finalize_result(method: str, result: JsonObject, server_info: JsonObject | None) -> JsonObject:
    """Make a result valid on the 2026-07-28 wire without changing what it says.

    Modules may be built against older revisions: ``resultType`` is required (``complete`` is what
    an older result means), cacheable results need ``ttlMs``/``cacheScope`` (0 and ``private``:
    never cached, never shared across credentials), and every result should name the server.
    """
    shaped = dict(result)
    shaped.setdefault("resultType", "complete")
    if method in CACHEABLE_METHODS:
        shaped.setdefault("ttlMs", 0)
        shaped.setdefault("cacheScope", "private")
    return stamp_server_info(shaped, server_info)


def discover_result(
    server_info: JsonObject,
    capabilities: JsonObject,
    instructions: str | None,
) -> JsonObject:
    """The ``server/discover`` result the box answers for a tenant.

    ``supportedVersions`` lists only the versions usable with the per-request envelope (as the
    reference SDK does); handshake versions are reached through ``initialize`` instead.
    """
    result: JsonObject = {
        "supportedVersions": list(MODERN_VERSIONS),
        "capabilities": with_logging_capability(capabilities),
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
    }
    if instructions is not None:
        result["instructions"] = instructions
    return stamp_server_info(result, server_info)


def with_logging_capability(capabilities: JsonObject) -> JsonObject:
    """The module's capabilities plus ``logging``, which the box provides by filtering."""
    merged = dict(capabilities)
    if not isinstance(merged.get("logging"), dict):
        merged["logging"] = {}
    return merged
