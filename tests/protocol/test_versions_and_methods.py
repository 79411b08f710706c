from __future__ import annotations

from typing import Any

import pytest

from smcp_box.errors import MethodNotFound, UnsupportedProtocolVersion
from smcp_box.protocol.methods import Route, route_request
from smcp_box.protocol.versions import (
    HANDSHAKE_VERSIONS,
    KNOWN_VERSIONS,
    SUPPORTED_VERSIONS,
    Era,
    has_modern_envelope,
    is_at_least,
    negotiate_handshake,
    select_era,
    supports_priming,
    unsupported_version,
)

MODERN_BODY = {"params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}


def test_version_sets_match_the_reference_sdk() -> None:
    mcp_types_version = pytest.importorskip("mcp_types.version")
    assert KNOWN_VERSIONS == mcp_types_version.KNOWN_PROTOCOL_VERSIONS
    assert HANDSHAKE_VERSIONS == mcp_types_version.HANDSHAKE_PROTOCOL_VERSIONS
    assert SUPPORTED_VERSIONS[0] == mcp_types_version.LATEST_PROTOCOL_VERSION


@pytest.mark.parametrize(
    ("requested", "negotiated"),
    [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
        ("garbage", "2025-11-25"),
    ],
)
def test_handshake_negotiation(requested: str, negotiated: str) -> None:
    assert negotiate_handshake(requested) == negotiated


def test_version_order() -> None:
    assert is_at_least("2025-11-25", "2025-06-18")
    assert not is_at_least("2025-03-26", "2025-06-18")
    assert not is_at_least("zzz", "2024-11-05")  # unknown versions never compare newer
    assert [supports_priming(v) for v in KNOWN_VERSIONS] == [False, False, False, True, True]


@pytest.mark.parametrize(
    ("header", "body", "era"),
    [
        (None, None, Era.LEGACY),
        (None, {"params": {"_meta": {"progressToken": 1}}}, Era.LEGACY),
        ("2025-03-26", None, Era.LEGACY),
        ("2025-11-25", {"method": "tools/list"}, Era.LEGACY),
        ("2026-07-28", None, Era.MODERN),
        ("2026-07-28", {"method": "initialize"}, Era.MODERN),
        # The body's envelope selects the modern era even against the header, whose
        # disagreement the modern checks then report as -32020.
        (None, MODERN_BODY, Era.MODERN),
        ("2025-11-25", MODERN_BODY, Era.MODERN),
        ("1900-01-01", MODERN_BODY, Era.MODERN),
    ],
)
def test_select_era(header: str | None, body: Any, era: Era) -> None:
    assert select_era(header, body) is era


@pytest.mark.parametrize("header", ["1900-01-01", "", "2025-11-25 ", "latest"])
def test_select_era_rejects_unknown_versions(header: str) -> None:
    with pytest.raises(UnsupportedProtocolVersion) as caught:
        select_era(header, {"method": "ping"})
    assert caught.value.http_status == 400
    assert caught.value.jsonrpc_code == -32022
    assert caught.value.data == {"supported": list(SUPPORTED_VERSIONS), "requested": header}


def test_unsupported_version_lists() -> None:
    data = unsupported_version("x").data
    assert data is not None
    assert data["supported"][0] == "2026-07-28"
    assert set(data["supported"]) == set(KNOWN_VERSIONS)
    assert unsupported_version("x", ("2026-07-28",)).data == {
        "supported": ["2026-07-28"],
        "requested": "x",
    }


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"params": None},
        {"params": {"_meta": None}},
        {"params": {"_meta": {}}},
        {"params": []},
    ],
)
def test_no_modern_envelope(body: Any) -> None:
    assert not has_modern_envelope(body)


@pytest.mark.parametrize(
    ("era", "method", "route"),
    [
        (Era.LEGACY, "initialize", Route.BOX),
        (Era.LEGACY, "ping", Route.BOX),
        (Era.LEGACY, "logging/setLevel", Route.BOX),
        (Era.LEGACY, "tools/call", Route.MODULE),
        (Era.LEGACY, "made/up", Route.MODULE),
        (Era.MODERN, "server/discover", Route.BOX),
        (Era.MODERN, "subscriptions/listen", Route.BOX),
        (Era.MODERN, "tools/list", Route.MODULE),
        (Era.MODERN, "resources/read", Route.MODULE),
    ],
)
def test_routes(era: Era, method: str, route: Route) -> None:
    assert route_request(era, method) is route


@pytest.mark.parametrize(
    ("era", "method"),
    [
        (Era.LEGACY, "server/discover"),
        (Era.LEGACY, "subscriptions/listen"),
        (Era.MODERN, "initialize"),
        (Era.MODERN, "ping"),
        (Era.MODERN, "logging/setLevel"),
        (Era.MODERN, "resources/subscribe"),
        (Era.MODERN, "resources/unsubscribe"),
    ],
)
def test_refused_methods(era: Era, method: str) -> None:
    with pytest.raises(MethodNotFound) as caught:
        route_request(era, method)
    assert caught.value.jsonrpc_code == -32601
    assert method in caught.value.message
