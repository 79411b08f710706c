"""MCP and JSON-RPC 2.0 for both protocol eras, free of I/O.

Everything here is a pure function of its arguments: message decoding and classification,
version negotiation and era selection, the 2026-07-28 header and ``_meta`` checks, the handshake
era's ``initialize`` and session rules, log filtering, and the HTTP-level rules (media types,
Origin, statuses) of the Streamable HTTP transport. ``smcp_box.web`` adapts it to Quart.
"""

from smcp_box.protocol.jsonrpc import (
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    check_module_reply,
    decode_json,
    error_response,
    parse_message,
    result_response,
)
from smcp_box.protocol.versions import (
    HANDSHAKE_VERSIONS,
    KNOWN_VERSIONS,
    MODERN_VERSIONS,
    SUPPORTED_VERSIONS,
    Era,
    negotiate_handshake,
    select_era,
)

__all__ = [
    "HANDSHAKE_VERSIONS",
    "KNOWN_VERSIONS",
    "MODERN_VERSIONS",
    "SUPPORTED_VERSIONS",
    "Era",
    "Message",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "check_module_reply",
    "decode_json",
    "error_response",
    "negotiate_handshake",
    "parse_message",
    "result_response",
    "select_era",
]
