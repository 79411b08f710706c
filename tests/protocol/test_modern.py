from __future__ import annotations

import base64
from typing import Any

import pytest

from smcp_box.errors import HeaderMismatch, InvalidParams, UnsupportedProtocolVersion
from smcp_box.protocol.jsonrpc import Request
from smcp_box.protocol.modern import (
    Envelope,
    check_notification_version,
    check_request,
    decode_header_value,
    discover_result,
    finalize_result,
    find_duplicate_routing_header,
)

V = "io.modelcontextprotocol/protocolVersion"
CAPS = "io.modelcontextprotocol/clientCapabilities"
INFO = "io.modelcontextprotocol/clientInfo"
LEVEL = "io.modelcontextprotocol/logLevel"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"


def request(method: str = "tools/list", meta: Any = None, **params: Any) -> Request:
    body_params = dict(params)
    if meta is not ...:
        body_params["_meta"] = {V: "2026-07-28", CAPS: {}} if meta is None else meta
    raw = {"jsonrpc": "2.0", "id": 1, "method": method, "params": body_params}
    return Request(id=1, method=method, params=body_params, raw=raw)


def headers(
    method: str = "tools/list", version: str = "2026-07-28", **extra: str
) -> dict[str, str]:
    return {"mcp-protocol-version": version, "mcp-method": method, **extra}


def test_a_good_request() -> None:
    meta = {V: "2026-07-28", CAPS: {"sampling": {}}, INFO: {"name": "c"}, LEVEL: "info"}
    envelope = check_request(request(meta=meta), headers())
    assert envelope == Envelope(
        protocol_version="2026-07-28",
        client_capabilities={"sampling": {}},
        client_info={"name": "c"},
        log_level="info",
    )


def test_client_info_and_log_level_are_optional() -> None:
    envelope = check_request(request(), headers())
    assert envelope.client_info is None
    assert envelope.log_level is None


@pytest.mark.parametrize(
    "meta",
    [..., "x", [], {}, {V: "2026-07-28"}, {CAPS: {}}],
    ids=["absent", "string", "list", "empty", "no-capabilities", "no-version"],
)
def test_meta_must_carry_the_required_pair(meta: Any) -> None:
    with pytest.raises(InvalidParams) as caught:
        check_request(request(meta=meta), headers())
    assert caught.value.jsonrpc_code == -32602
    assert caught.value.http_status == 400


def test_params_absent_entirely() -> None:
    bare = Request(id=1, method="tools/list", params=None, raw={})
    with pytest.raises(InvalidParams):
        check_request(bare, headers())


@pytest.mark.parametrize(
    ("meta", "where"),
    [
        ({V: "2026-07-28", CAPS: "all"}, CAPS),
        ({V: "2026-07-28", CAPS: {}, INFO: "me"}, INFO),
        ({V: "2026-07-28", CAPS: {}, LEVEL: "verbose"}, LEVEL),
        ({V: "2026-07-28", CAPS: {}, LEVEL: 3}, LEVEL),
    ],
)
def test_meta_member_shapes(meta: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidParams, match=where):
        check_request(request(meta=meta), headers())


@pytest.mark.parametrize(
    "hdrs",
    [
        {"mcp-method": "tools/list"},
        headers(version="2025-11-25"),
        {"mcp-protocol-version": "2026-07-28"},
        headers(method="tools/call"),
        headers(method="TOOLS/LIST"),
    ],
    ids=["no-version", "other-version", "no-method", "other-method", "method-case"],
)
def test_header_mismatches(hdrs: dict[str, str]) -> None:
    with pytest.raises(HeaderMismatch) as caught:
        check_request(request(), hdrs)
    assert caught.value.jsonrpc_code == -32020
    assert caught.value.http_status == 400


def test_header_checks_come_before_the_version_check() -> None:
    # A client that disagrees with itself is told so, not that its version is unsupported.
    req = request(meta={V: "2099-01-01", CAPS: {}})
    with pytest.raises(HeaderMismatch):
        check_request(req, headers())
    with pytest.raises(UnsupportedProtocolVersion) as caught:
        check_request(req, headers(version="2099-01-01"))
    assert caught.value.data == {"supported": ["2026-07-28"], "requested": "2099-01-01"}


def test_a_handshake_version_in_the_envelope_is_unsupported_here() -> None:
    with pytest.raises(UnsupportedProtocolVersion):
        check_request(request(meta={V: "2025-11-25", CAPS: {}}), headers(version="2025-11-25"))


@pytest.mark.parametrize(
    ("method", "key"),
    [
        ("tools/call", "name"),
        ("prompts/get", "name"),
        ("resources/read", "uri"),
        ("tasks/get", "taskId"),
        ("tasks/update", "taskId"),
        ("tasks/cancel", "taskId"),
    ],
)
def test_mcp_name(method: str, key: str) -> None:
    req = request(method, **{key: "target"})
    check_request(req, headers(method, **{"mcp-name": "target"}))
    with pytest.raises(HeaderMismatch, match="requires the Mcp-Name"):
        check_request(req, headers(method))
    with pytest.raises(HeaderMismatch, match="does not match"):
        check_request(req, headers(method, **{"mcp-name": "other"}))


def test_mcp_name_not_required_without_a_target() -> None:
    check_request(request("tools/call"), headers("tools/call"))
    check_request(request("tools/list"), headers("tools/list", **{"mcp-name": "ignored"}))


def test_mcp_name_base64_sentinel() -> None:
    name = "météo\n"
    encoded = "=?base64?" + base64.b64encode(name.encode()).decode() + "?="
    check_request(request("tools/call", name=name), headers("tools/call", **{"mcp-name": encoded}))


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("plain", "plain"),
        ("with space", "with space"),
        ("=?base64?aGk=?=", "hi"),
        ("=?base64?aGk?=", None),  # missing padding: not canonical
        ("=?base64?aGl=?=", None),  # non-zero trailing bits: not canonical
        ("=?base64?!!?=", None),
        ("=?base64?/w==?=", None),  # not UTF-8
        ("caf\xe9", None),  # not visible ASCII
        ("line\x00", None),
        (None, None),
    ],
)
def test_decode_header_value(raw: str | None, decoded: str | None) -> None:
    assert decode_header_value(raw) == decoded


def test_duplicate_routing_headers() -> None:
    check = find_duplicate_routing_header
    assert check([("Mcp-Method", "a"), ("mcp-name", "b"), ("Accept", "x"), ("accept", "y")]) is None
    assert check([("Mcp-Method", "a"), ("MCP-METHOD", "a")]) == "mcp-method"
    with pytest.raises(HeaderMismatch, match="more than once"):
        check_request(
            request(), headers(), [("MCP-Protocol-Version", "x"), ("mcp-protocol-version", "x")]
        )


def test_notification_version() -> None:
    check_notification_version(None)
    check_notification_version("2026-07-28")
    with pytest.raises(UnsupportedProtocolVersion):
        check_notification_version("2025-11-25")


def test_finalize_result() -> None:
    info = {"name": "s", "version": "1"}
    assert finalize_result("tools/call", {"content": []}, info) == {
        "content": [],
        "resultType": "complete",
        "_meta": {SERVER_INFO: info},
    }
    shaped = finalize_result("tools/list", {"tools": [], "ttlMs": 60_000, "_meta": {"k": 1}}, info)
    assert shaped == {
        "tools": [],
        "ttlMs": 60_000,
        "cacheScope": "private",
        "resultType": "complete",
        "_meta": {"k": 1, SERVER_INFO: info},
    }
    # What the module said wins.
    own = {"resultType": "input_required", "_meta": {SERVER_INFO: {"name": "own"}}}
    assert finalize_result("tools/call", own, info) == own
    assert finalize_result("tools/call", {}, None) == {"resultType": "complete"}


def test_finalized_results_validate_against_the_reference_schema() -> None:
    methods = pytest.importorskip("mcp_types.methods")
    info = {"name": "s", "version": "1"}
    methods.validate_server_result(
        "tools/list", "2026-07-28", finalize_result("tools/list", {"tools": []}, info)
    )
    methods.validate_server_result(
        "tools/call", "2026-07-28", finalize_result("tools/call", {"content": []}, info)
    )
    methods.validate_server_result(
        "resources/read", "2026-07-28", finalize_result("resources/read", {"contents": []}, info)
    )
    methods.validate_server_result(
        "server/discover", "2026-07-28", discover_result(info, {"tools": {}}, None)
    )


def test_discover_result() -> None:
    result = discover_result({"name": "s", "version": "1"}, {"tools": {}, "logging": None}, "hi")
    assert result == {
        "supportedVersions": ["2026-07-28"],
        "capabilities": {"tools": {}, "logging": {}},
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
        "instructions": "hi",
        "_meta": {SERVER_INFO: {"name": "s", "version": "1"}},
    }
    assert "instructions" not in discover_result({"name": "s", "version": "1"}, {}, None)
