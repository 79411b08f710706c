"""The one error mapping: every row of the spec's error table, for both eras, through
:func:`smcp_box.protocol.error_replies.error_reply`.

The rows follow docs/protocol.md §1-§3 (MCP Streamable HTTP, 2025-11-25 and 2026-07-28).
"""

from __future__ import annotations

import logging

import pytest

from smcp_box.errors import (
    AddressLockedOut,
    AddressNotAllowed,
    AuthError,
    BadModuleReply,
    BodyTimeout,
    BoxDraining,
    BoxError,
    CallTimeout,
    ConfigError,
    Forbidden,
    FuelExhausted,
    HeaderMismatch,
    InputRoundFailed,
    InsufficientScope,
    InvalidHost,
    InvalidParams,
    InvalidRequest,
    KvQuotaExceeded,
    MethodNotAllowed,
    MethodNotFound,
    ModuleTrapped,
    NotAcceptable,
    OriginNotAllowed,
    ParseError,
    PayloadTooLarge,
    RateLimited,
    SessionNotFound,
    SessionQuotaExceeded,
    SessionRequired,
    StorageFull,
    StoreError,
    StreamConflict,
    TenantBusy,
    TenantDisabled,
    TenantNotFound,
    TransportError,
    UnsupportedMediaType,
    UnsupportedProtocolVersion,
)
from smcp_box.logs import request_id_var
from smcp_box.protocol.error_replies import (
    MODERN_ERROR_STATUS,
    ErrorReply,
    Stage,
    error_reply,
    reply_status,
)
from smcp_box.protocol.versions import Era

ERAS = (None, Era.LEGACY, Era.MODERN)

#: §1 "every request", both eras: (error, HTTP status, JSON-RPC code). Raised before the
#: message is dispatched, each keeps the status the table gives it whatever the era.
EXCHANGE_ROWS: list[tuple[BoxError, int, int]] = [
    (OriginNotAllowed("Forbidden: origin"), 403, -32600),
    (InvalidHost("Bad request: host"), 400, -32600),
    (AddressNotAllowed("Forbidden: address"), 403, -32600),
    (TenantNotFound("Not found: tenant"), 404, -32600),
    (TenantDisabled("Service unavailable: disabled"), 503, -32055),
    (AuthError("Unauthorized: no credential"), 401, -32600),
    (Forbidden("Forbidden: suspended key"), 403, -32600),
    (InsufficientScope("Forbidden: scope", scope="mcp:tools"), 403, -32600),
    (MethodNotAllowed("Method not allowed: GET in 2026-07-28"), 405, -32600),
    (NotAcceptable("Not acceptable: Accept"), 406, -32600),
    (UnsupportedMediaType("Unsupported media type"), 415, -32600),
    (PayloadTooLarge("Payload too large"), 413, -32600),
    (BodyTimeout("Request timeout: body"), 408, -32600),
    (ParseError("Parse error"), 400, -32700),
    (InvalidRequest("Invalid request: batch"), 400, -32600),
    (UnsupportedProtocolVersion("Unsupported protocol version"), 400, -32022),
    (HeaderMismatch("Header mismatch: Mcp-Method"), 400, -32020),
    (InvalidParams("Invalid params: _meta"), 400, -32602),
    (SessionRequired("Bad request: Mcp-Session-Id missing"), 400, -32600),
    (SessionNotFound("Not found: session"), 404, -32600),
    (StreamConflict("Conflict: GET stream open"), 409, -32600),
    (RateLimited("Too many requests", quota="requests_per_second", retry_after=0.2), 429, -32063),
    (SessionQuotaExceeded("Too many sessions", quota="sessions"), 429, -32063),
    (AddressLockedOut("Locked out", quota="auth_failures", retry_after=30.0), 429, -32063),
    (ConfigError("tenant.toml: bad limit"), 400, -32603),
]


@pytest.mark.parametrize("era", ERAS, ids=["era-unknown", "legacy", "modern"])
@pytest.mark.parametrize(
    ("error", "status", "code"), EXCHANGE_ROWS, ids=[type(row[0]).__name__ for row in EXCHANGE_ROWS]
)
def test_exchange_stage_rows(error: BoxError, status: int, code: int, era: Era | None) -> None:
    reply = error_reply(error, stage=Stage.EXCHANGE, era=era, request_id=7)
    assert reply.status == status
    assert reply.body == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": error.to_jsonrpc_error(),
    }
    assert reply.body["error"]["code"] == code
    assert reply.kind == error.kind


#: §2 and §3, a dispatched request: (error, JSON-RPC code, status in 2026-07-28, status in the
#: handshake era). 2026-07-28 maps a few codes whoever produced them; legacy answers 200.
DISPATCH_ROWS: list[tuple[BoxError, int, int, int]] = [
    (ParseError("Parse error"), -32700, 400, 200),
    (InvalidRequest("Invalid request"), -32600, 400, 200),
    (MethodNotFound("Method not found: ping"), -32601, 404, 200),
    (InvalidParams("Invalid params: level"), -32602, 400, 200),
    (HeaderMismatch("Header mismatch"), -32020, 400, 200),
    (UnsupportedProtocolVersion("Unsupported version"), -32022, 400, 200),
    (BoxError("Internal error: bad session id source"), -32603, 200, 200),
    (InputRoundFailed("The client refused elicitation/create"), -32603, 200, 200),
    (ModuleTrapped("The module trapped"), -32050, 200, 200),
    (FuelExhausted("Out of fuel"), -32051, 200, 200),
    (CallTimeout("The call timed out"), -32052, 200, 200),
    (BadModuleReply("Bad reply"), -32054, 200, 200),
    (TenantBusy("Busy"), -32056, 200, 200),
    (StoreError("The store failed"), -32061, 200, 200),
    (StorageFull("Disk full"), -32060, 200, 200),
    (KvQuotaExceeded("kv quota"), -32062, 200, 200),
]


@pytest.mark.parametrize(
    ("error", "code", "modern", "legacy"),
    DISPATCH_ROWS,
    ids=[type(row[0]).__name__ for row in DISPATCH_ROWS],
)
def test_dispatch_stage_rows(error: BoxError, code: int, modern: int, legacy: int) -> None:
    for era, status in ((Era.MODERN, modern), (Era.LEGACY, legacy)):
        reply = error_reply(error, stage=Stage.DISPATCH, era=era, request_id="r-1")
        assert reply.status == status, era
        assert reply.body["id"] == "r-1"
        assert reply.body["error"]["code"] == code
        assert reply.body["error"]["message"] == error.message
        assert reply.kind == error.kind


@pytest.mark.parametrize(
    "error",
    [
        SessionNotFound("Not found: session"),
        AuthError("Unauthorized"),
        RateLimited("Too many", quota="requests_per_second"),
        NotAcceptable("Not acceptable"),
    ],
    ids=["session-gone", "auth", "quota", "transport"],
)
@pytest.mark.parametrize("era", [Era.LEGACY, Era.MODERN], ids=["legacy", "modern"])
def test_errors_about_the_exchange_keep_their_status_after_dispatch(
    error: BoxError, era: Era
) -> None:
    # A legacy client reads 404 as "initialize again": a session that ended while its request
    # was being answered must still say so, not a 200 JSON-RPC error.
    assert error.about_exchange
    reply = error_reply(error, stage=Stage.DISPATCH, era=era, request_id=1)
    assert reply.status == error.http_status


def test_every_exchange_error_class_is_about_the_exchange() -> None:
    for cls in (TransportError, AuthError, SessionNotFound, RateLimited):
        assert cls.about_exchange, cls
    for other in (StoreError, ModuleTrapped, ParseError, ConfigError):
        assert not other.about_exchange, other


@pytest.mark.parametrize(
    ("code", "modern", "legacy"),
    [
        (-32700, 400, 200),
        (-32600, 400, 200),
        (-32601, 404, 200),
        (-32602, 400, 200),
        (-32603, 200, 200),
        (-32020, 400, 200),
        (-32021, 400, 200),
        (-32022, 400, 200),
        (-32051, 200, 200),
        (42, 200, 200),
    ],
)
def test_reply_status_of_a_module_error_reply(code: int, modern: int, legacy: int) -> None:
    assert reply_status(Era.MODERN, code) == modern
    assert reply_status(Era.LEGACY, code) == legacy


def test_the_modern_table_is_the_specs() -> None:
    assert MODERN_ERROR_STATUS == {
        -32700: 400,
        -32600: 400,
        -32602: 400,
        -32020: 400,
        -32021: 400,
        -32022: 400,
        -32601: 404,
    }


def test_extra_headers() -> None:
    allow = error_reply(MethodNotAllowed("no GET"), stage=Stage.EXCHANGE)
    assert allow.headers == {"Allow": "POST"}
    limited = error_reply(
        RateLimited("slow down", quota="requests_per_second", retry_after=0.2),
        stage=Stage.EXCHANGE,
    )
    assert limited.headers == {"Retry-After": "1"}
    assert limited.body["error"]["data"] == {
        "quota": "requests_per_second",
        "retryAfterSeconds": 0.2,
    }
    assert (
        error_reply(SessionQuotaExceeded("x", quota="sessions"), stage=Stage.EXCHANGE).headers == {}
    )


@pytest.mark.parametrize("era", [Era.LEGACY, Era.MODERN], ids=["legacy", "modern"])
def test_a_draining_box_answers_503_with_retry_after_at_every_stage(era: Era) -> None:
    draining = BoxDraining("Service unavailable: draining", retry_after=2.5)
    for stage in (Stage.EXCHANGE, Stage.DISPATCH):
        reply = error_reply(draining, stage=stage, era=era, request_id=1)
        assert (reply.status, reply.kind) == (503, "draining")
        assert reply.headers == {"Retry-After": "3"}
        assert reply.body["error"]["code"] == -32058
        assert reply.body["error"]["data"] == {"retryAfterSeconds": 2.5}


def _bug() -> ErrorReply:
    try:
        {}["missing"]
    except KeyError as err:
        return error_reply(err, stage=Stage.EXCHANGE, request_id=3)
    raise AssertionError("unreachable")


def test_an_unexpected_exception_is_a_logged_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = request_id_var.set("req-abc123")
    try:
        with caplog.at_level(logging.ERROR, logger="smcp_box.web.mcp"):
            reply = _bug()
    finally:
        request_id_var.reset(token)
    assert reply.status == 500
    assert reply.kind == "internal"
    assert reply.body["id"] == 3
    error = reply.body["error"]
    assert error["code"] == -32603
    assert error["data"] == {"requestId": "req-abc123"}
    assert "req-abc123" in error["message"]
    # The wire says nothing of the bug; the log has it, traceback included.
    assert "KeyError" not in error["message"]
    (record,) = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


@pytest.mark.parametrize("era", [Era.LEGACY, Era.MODERN], ids=["legacy", "modern"])
def test_an_unexpected_exception_in_a_dispatched_request_is_a_jsonrpc_internal_error(
    era: Era, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="smcp_box.web.mcp"):
        reply = error_reply(RuntimeError("bug"), stage=Stage.DISPATCH, era=era, request_id=9)
    # The request was dispatched: a JSON-RPC error for its id, with the era's status (-32603
    # is 200 in both tables), logged all the same.
    assert reply.status == 200
    assert reply.body["id"] == 9
    assert reply.body["error"]["code"] == -32603
    assert "data" not in reply.body["error"]  # no request id outside a request
    assert len(caplog.records) == 1


def test_deliberate_errors_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="smcp_box.web.mcp"):
        for error, _, _ in EXCHANGE_ROWS:
            error_reply(error, stage=Stage.EXCHANGE)
    assert caplog.records == []
