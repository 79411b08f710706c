from __future__ import annotations

from typing import Any

import pytest

from smcp_box.errors import InvalidParams, InvalidRequest
from smcp_box.protocol.http import (
    accepts,
    bearer_challenge,
    is_json_content_type,
    metric_method_label,
    origin_allowed,
)
from smcp_box.protocol.legacy import (
    SessionState,
    cancelled_request_id,
    initialize_result,
    parse_initialize,
    parse_set_level,
    request_version,
)
from smcp_box.protocol.loglevels import LOG_LEVELS, LogFilter

GOOD_INIT = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"roots": {}},
    "clientInfo": {"name": "client", "version": "1"},
}


def test_parse_initialize() -> None:
    params = parse_initialize(GOOD_INIT)
    assert params.requested_version == "2025-06-18"
    assert params.negotiated_version == "2025-06-18"
    assert params.client_info == {"name": "client", "version": "1"}
    assert (
        parse_initialize({**GOOD_INIT, "protocolVersion": "2030-01-01"}).negotiated_version
        == "2025-11-25"
    )


@pytest.mark.parametrize(
    "params",
    [
        None,
        {},
        {**GOOD_INIT, "protocolVersion": 20250618},
        {**GOOD_INIT, "protocolVersion": ""},
        {k: v for k, v in GOOD_INIT.items() if k != "capabilities"},
        {**GOOD_INIT, "capabilities": []},
        {k: v for k, v in GOOD_INIT.items() if k != "clientInfo"},
        {**GOOD_INIT, "clientInfo": {"version": "1"}},
    ],
)
def test_bad_initialize_params(params: Any) -> None:
    with pytest.raises(InvalidParams) as caught:
        parse_initialize(params)
    assert caught.value.jsonrpc_code == -32602


def test_initialize_result_adds_logging() -> None:
    result = initialize_result("2025-11-25", {"name": "s", "version": "1"}, {"tools": {}}, "use me")
    assert result == {
        "protocolVersion": "2025-11-25",
        "capabilities": {"tools": {}, "logging": {}},
        "serverInfo": {"name": "s", "version": "1"},
        "instructions": "use me",
    }
    kept = initialize_result("2025-11-25", {"name": "s"}, {"logging": {"x": 1}}, None)
    assert kept["capabilities"] == {"logging": {"x": 1}}
    assert "instructions" not in kept


def test_version_of_a_session_request() -> None:
    assert request_version(None, "2025-06-18") == "2025-06-18"
    assert request_version("2025-06-18", "2025-06-18") == "2025-06-18"
    # A served handshake version other than the negotiated one governs the request (the
    # conformance suite sends 2025-03-26 on 2025-11-25 sessions).
    assert request_version("2025-03-26", "2025-11-25") == "2025-03-26"
    for bad in ("2026-07-28", "1900-01-01"):
        with pytest.raises(InvalidRequest) as caught:
            request_version(bad, "2025-06-18")
        assert caught.value.http_status == 400


def test_set_level_and_cancelled() -> None:
    assert parse_set_level({"level": "warning"}) == "warning"
    for bad in (None, {}, {"level": "WARNING"}, {"level": 4}):
        with pytest.raises(InvalidParams):
            parse_set_level(bad)
    assert cancelled_request_id({"requestId": 3}) == 3
    assert cancelled_request_id(None) is None


def test_session_state_round_trip() -> None:
    state = SessionState(owner="api_key:alice", initialized=True, log_level="error")
    assert SessionState.from_json(state.to_json()) == state
    assert SessionState.from_json({}) == SessionState(owner="")
    assert SessionState.from_json({"owner": 5, "log_level": 1}).owner == ""


def log(level: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": level}}


def test_log_filters() -> None:
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
    everything = LogFilter.legacy(None)
    assert all(everything.allows(log(level)) for level in LOG_LEVELS)
    assert everything.allows(log("bogus"))
    warning = LogFilter.legacy("warning")
    assert [lv for lv in LOG_LEVELS if warning.allows(log(lv))] == list(LOG_LEVELS[3:])
    assert not warning.allows(log("bogus"))
    silent = LogFilter.modern(None)
    assert not any(silent.allows(log(level)) for level in LOG_LEVELS)
    assert silent.allows(progress)  # only log messages are filtered
    assert [lv for lv in LOG_LEVELS if LogFilter.modern("critical").allows(log(lv))] == list(
        LOG_LEVELS[5:]
    )
    assert (
        LogFilter.modern("debug").allows({"jsonrpc": "2.0", "method": "notifications/message"})
        is True
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (False, False)),
        ("", (False, False)),
        ("application/json, text/event-stream", (True, True)),
        ("text/event-stream;q=0.5,application/json", (True, True)),
        ("APPLICATION/JSON", (True, False)),
        ("*/*", (True, True)),
        ("application/*", (True, False)),
        ("text/*", (False, True)),
        ("application/jsonx", (False, False)),
    ],
)
def test_accepts(header: str | None, expected: tuple[bool, bool]) -> None:
    assert accepts(header) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/json-seq", False),
        ("text/json", False),
        ("", False),
        (None, False),
    ],
)
def test_json_content_type(value: str | None, ok: bool) -> None:
    assert is_json_content_type(value) is ok


@pytest.mark.parametrize(
    ("origin", "allowed", "ok"),
    [
        (None, (), True),
        ("http://localhost", (), True),
        ("http://localhost:5173", (), True),
        ("https://127.0.0.1:8443", (), True),
        ("http://[::1]:3000", (), True),
        ("null", (), False),
        ("file://localhost", (), False),
        ("http://localhost.evil.example", (), False),
        ("http://127.0.0.1.evil.example", (), False),
        ("http://evil.example", (), False),
        ("http://[::1", (), False),
        ("http://localhost:99999", (), False),
        ("https://box.lan:8765", ("https://box.lan:8765",), True),
        ("https://BOX.lan:8765/", ("https://box.lan:8765",), True),
        ("https://box.lan:8766", ("https://box.lan:8765",), False),
        ("https://box.lan:9000", ("https://box.lan:*",), True),
        ("https://box.lan.evil:9000", ("https://box.lan:*",), False),
        ("https://box.lan:9000/../", ("https://box.lan:*",), False),
        ("http://box.lan", ("https://box.lan",), False),
    ],
)
def test_origin_allowed(origin: str | None, allowed: tuple[str, ...], ok: bool) -> None:
    assert origin_allowed(origin, allowed) is ok


def test_bearer_challenge() -> None:
    assert (
        bearer_challenge(realm="smcp-box", error=None, description=None)
        == 'Bearer realm="smcp-box"'
    )
    value = bearer_challenge(
        realm="smcp-box",
        error="invalid_token",
        description='bad "key"\r\nInjected: 1',
        resource_metadata="https://box/.well-known/oauth-protected-resource/t/a/mcp",
    )
    assert value == (
        'Bearer realm="smcp-box", error="invalid_token", '
        'error_description="bad \\"key\\"Injected: 1", '
        'resource_metadata="https://box/.well-known/oauth-protected-resource/t/a/mcp"'
    )


def test_metric_labels_are_bounded() -> None:
    assert metric_method_label("tools/call") == "tools/call"
    assert metric_method_label("x" * 500) == "other"
    assert metric_method_label(None) == "none"
