"""The one mapping from an error to what the MCP endpoint sends: an HTTP status and a JSON-RPC
error body, for an era and a dispatch stage.

Every site on the MCP path that turns an exception into a reply calls :func:`error_reply`; the
spec's status table lives here and nowhere else.

Two stages:

* :attr:`Stage.EXCHANGE`: the HTTP exchange failed before its message was dispatched (a bad
  header, body, credential, tenant or session). The error's own ``http_status`` applies, in
  both eras; the body carries the request id when it is known, else null.
* :attr:`Stage.DISPATCH`: a dispatched request failed. The reply is a JSON-RPC error for its id,
  and its status is the era's: 2026-07-28 maps -32700/-32600/-32602/-32020/-32021/-32022 to 400
  and -32601 to 404, anything else to 200, whoever produced the error; the handshake era always
  answers 200 (a 404 means "session gone" to a legacy client). Errors about the exchange itself
  (``about_exchange``: transport, credential, admission, a session that is gone) keep their own
  status even here.

Anything that is not a :class:`~smcp_box.errors.BoxError` is a bug in the box: it is logged with
its traceback and the request id, and answered -32603 with that id in ``data`` (HTTP 500 at the
exchange stage), so that a user's report can be found in the log. Bad input never takes this
path: every parser raises a ``BoxError`` for it.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from typing import Final

from smcp_box.errors import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_CLIENT_CAPABILITY,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    BoxDraining,
    BoxError,
    MethodNotAllowed,
    QuotaExceeded,
)
from smcp_box.logs import request_id_var
from smcp_box.protocol.jsonrpc import JSONRPC_VERSION, RequestId
from smcp_box.protocol.versions import Era
from smcp_box.seams import JsonObject

log = logging.getLogger("smcp_box.web.mcp")

#: 2026-07-28: the HTTP status of a JSON-RPC error, by code; any other code travels with 200.
MODERN_ERROR_STATUS: Final = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}

#: The metrics/audit kind of an unexpected exception.
INTERNAL_KIND: Final = "internal"


class Stage(enum.Enum):
    """How far the exchange got when the error happened (see the module docstring)."""

    EXCHANGE = "exchange"
    DISPATCH = "dispatch"


@dataclass(frozen=True)
class ErrorReply:
    """What to send for one error: status, JSON-RPC error body, extra headers, and the kind
    for metrics and audit."""

    status: int
    body: JsonObject
    kind: str
    headers: dict[str, str]


def reply_status(era: Era, code: int) -> int:
    """The HTTP status of a JSON reply carrying a JSON-RPC error with ``code`` for a dispatched
    request (a module's own error reply included)."""
    if era is Era.MODERN:
        return MODERN_ERROR_STATUS.get(code, 200)
    return 200


def error_reply(
    error: BaseException,
    *,
    stage: Stage,
    era: Era | None = None,
    request_id: RequestId | None = None,
) -> ErrorReply:
    """The status and body for ``error``. ``era`` is None when it is not known yet (bad headers
    or body); the exchange stage's rule applies then."""
    if not isinstance(error, BoxError):
        return _internal(error, stage, era, request_id)
    body: JsonObject = {
        "jsonrpc": JSONRPC_VERSION,
        "id": request_id,
        "error": error.to_jsonrpc_error(),
    }
    if stage is Stage.EXCHANGE or era is None or error.about_exchange:
        status = error.http_status
    else:
        status = reply_status(era, error.jsonrpc_code)
    return ErrorReply(status, body, error.kind, _headers(error))


def _internal(
    error: BaseException, stage: Stage, era: Era | None, request_id: RequestId | None
) -> ErrorReply:
    incident = request_id_var.get()
    # The traceback goes to the log only; the wire gets the id to find it by.
    log.error("internal error on the MCP endpoint", exc_info=error)
    message = "Internal error: the box failed; the server log has the details"
    data: JsonObject = {}
    if incident:
        message += f" (request id {incident})"
        data["requestId"] = incident
    payload: JsonObject = {"code": INTERNAL_ERROR, "message": message}
    if data:
        payload["data"] = data
    body: JsonObject = {"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": payload}
    status = 500 if stage is Stage.EXCHANGE or era is None else reply_status(era, INTERNAL_ERROR)
    return ErrorReply(status, body, INTERNAL_KIND, {})


def _headers(error: BoxError) -> dict[str, str]:
    if isinstance(error, MethodNotAllowed):
        # Only the MCP endpoint's 405 takes this path; it serves POST in every era.
        return {"Allow": "POST"}
    if isinstance(error, BoxDraining):
        return {"Retry-After": str(math.ceil(error.retry_after))}
    if isinstance(error, QuotaExceeded) and error.retry_after is not None:
        return {"Retry-After": str(math.ceil(error.retry_after))}
    return {}
