"""JSON-RPC 2.0 as MCP uses it: decoding one message, classifying it, building replies.

MCP narrows JSON-RPC: request ids are strings or integers (never null), ``params`` is an object,
and one HTTP body carries exactly one message (batches were removed in 2025-06-18 and the box
serves every era on one endpoint, so it accepts none).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from smcp_box.errors import BadModuleReply, BoxError, InvalidRequest, ParseError
from smcp_box.seams import JsonObject

RequestId = str | int

JSONRPC_VERSION: Final = "2.0"


@dataclass(frozen=True)
class Request:
    id: RequestId
    method: str
    params: JsonObject | None
    #: The decoded message exactly as the client sent it (forwarded to the module as is).
    raw: JsonObject


@dataclass(frozen=True)
class Notification:
    method: str
    params: JsonObject | None
    raw: JsonObject


@dataclass(frozen=True)
class Response:
    """A client's reply to a server-initiated request (the box never sends one)."""

    id: RequestId | None
    raw: JsonObject


Message = Request | Notification | Response


def is_request_id(value: object) -> bool:
    # bool is an int subclass, and JSON true is not an id.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def decode_json(body: bytes) -> Any:
    """Decode a request body, or raise :class:`ParseError` (-32700).

    Strict JSON (RFC 8259) as I-JSON (RFC 7493) narrows it: ``NaN``/``Infinity`` are not JSON,
    a number beyond the double range (``1e999``, which Python reads as infinity) has no finite
    value, and a ``\\uD800``-style escape of a lone UTF-16 surrogate spells no Unicode character.
    Python's parser accepts both, and either would later fail whatever re-encodes the value
    (a reply, an audit row, a log line), so they are refused here, where the client gets the
    spec's answer for a body it cannot send.
    """
    if _fast_path_safe(body.count(b"[") + body.count(b"{")) and not _LONG_DIGITS.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # refused: the standard library's path below says why, in the box's words
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("Parse error: the body is not valid UTF-8") from None
    return _decode_strictly(text)


def decode_json_text(text: str) -> Any:
    """:func:`decode_json` of text already decoded from UTF-8 (a module's reply, say)."""
    containers = text.count("[") + text.count("{")
    if _fast_path_safe(containers) and not _LONG_DIGITS_TEXT.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return _decode_strictly(text)


#: The fast path is orjson, which refuses what the strict path refuses (invalid UTF-8, NaN and
#: Infinity, numbers beyond a double, lone surrogate escapes) but reads an integer beyond 64
#: bits as a float and accepts any nesting depth. A text with a run of 19 digits may hold such
#: an integer, and one with many brackets may nest too deeply for the rest of the box to
#: re-encode: both take the standard library's path, whose integers are exact and whose
#: recursion limit refuses deep nesting.
_LONG_DIGITS: Final = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT: Final = re.compile(r"[0-9]{19}")
_FAST_PATH_MAX_CONTAINERS: Final = 200


def _fast_path_safe(containers: int) -> bool:
    # Fewer containers than this cannot nest deeper than encode_json's fast path writes.
    return containers < _FAST_PATH_MAX_CONTAINERS


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of a reply or event, always valid UTF-8 and valid JSON.

    orjson first; what it declines (an integer beyond 64 bits, a non-string key, a lone
    surrogate) the standard library writes, with non-ASCII escaped so that a lone surrogate
    becomes a ``\\ud800`` escape rather than bytes no UTF-8 decoder accepts.
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def _decode_strictly(text: str) -> Any:
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ParseError("Parse error: the JSON is nested too deeply") from None
    except ValueError as exc:
        # JSONDecodeError, the bare ValueError of an integer literal too long to convert, and
        # _refuse_constant's.
        raise ParseError(f"Parse error: {exc}") from None
    # Only an escape can make a lone surrogate (the text itself decoded as UTF-8), so bodies
    # without a "\\u" escape of the surrogate range skip the walk.
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise ParseError(
            "Parse error: a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff "
            "without its pair), which is not a Unicode character"
        )
    return value


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range (beyond a 64-bit double)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) in ``value`` holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_message(decoded: Any) -> Message:
    """Classify one decoded JSON value as a request, notification or response.

    Raises :class:`InvalidRequest` (-32600) for anything else, batches included. Key presence
    decides the kind (JSON-RPC 2.0: a notification is a request without an ``id`` member), so a
    request with a malformed id is an error rather than a silently dropped notification.
    """
    if isinstance(decoded, list):
        raise InvalidRequest(
            "Invalid request: JSON-RPC batches are not supported; send one message per POST"
        )
    if not isinstance(decoded, dict):
        raise InvalidRequest("Invalid request: the body must be one JSON-RPC message object")
    if decoded.get("jsonrpc") != JSONRPC_VERSION:
        raise InvalidRequest('Invalid request: "jsonrpc" must be "2.0"')
    if "method" in decoded:
        method = decoded["method"]
        if not isinstance(method, str) or not method:
            raise InvalidRequest('Invalid request: "method" must be a non-empty string')
        params = decoded.get("params")
        if params is not None and not isinstance(params, dict):
            raise InvalidRequest('Invalid request: "params" must be an object')
        if "id" not in decoded:
            return Notification(method=method, params=params, raw=decoded)
        request_id = decoded["id"]
        if not is_request_id(request_id):
            raise InvalidRequest('Invalid request: "id" must be a string or an integer')
        return Request(id=request_id, method=method, params=params, raw=decoded)
    if "result" in decoded or "error" in decoded:
        response_id = decoded.get("id")
        return Response(id=response_id if is_request_id(response_id) else None, raw=decoded)
    raise InvalidRequest('Invalid request: a message needs "method", "result" or "error"')


def request_id_of(decoded: Any) -> RequestId | None:
    """Best-effort id of a body that failed validation, for the error reply's ``id``."""
    if isinstance(decoded, Mapping) and "method" in decoded:
        value = decoded.get("id")
        if is_request_id(value):
            return value
    return None


def result_response(request_id: RequestId, result: JsonObject) -> JsonObject:
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": result}


def error_response(request_id: RequestId | None, error: BoxError) -> JsonObject:
    """A JSON-RPC error reply; ``id`` is present and null when the request id is unknown."""
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": error.to_jsonrpc_error()}


def notification(method: str, params: JsonObject | None = None) -> JsonObject:
    message: JsonObject = {"jsonrpc": JSONRPC_VERSION, "method": method}
    if params is not None:
        message["params"] = params
    return message


def parse_module_notification(text: str) -> JsonObject:
    """Decode and check one notification a module emits (the ``notify`` host import).

    A notification is the only kind of message a module may send on its own (the box forwards
    no server-to-client requests): a JSON object with a non-empty string ``method``, no ``id``
    and object ``params`` if any. Anything else is a module fault (:class:`BadModuleReply`).
    Returned with ``"jsonrpc": "2.0"`` set, so modules need not write it. This is the only
    place a module's notification is checked; everything after it trusts the result.
    """
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise BadModuleReply("the notification is not valid JSON") from None
    if not isinstance(message, dict):
        raise BadModuleReply("the notification is not a JSON object")
    method = message.get("method")
    if not isinstance(method, str) or not method or "id" in message:
        raise BadModuleReply(
            'expected a JSON-RPC notification object (a string "method" and no "id")'
        )
    if message.get("params") is not None and not isinstance(message["params"], dict):
        raise BadModuleReply('the notification\'s "params" is not an object')
    message["jsonrpc"] = JSONRPC_VERSION
    return message


def check_module_reply(reply: object, request_id: RequestId) -> JsonObject:
    """Validate a module's reply to one request and return it with the request's id.

    A module answers exactly the request it was given; a reply that is not a response object,
    or that answers another id, is a module fault (:class:`BadModuleReply`), never forwarded.
    This is the only check of a module's reply: the tenant runtime applies it to every reply
    (and vetting to its own calls); the transport and the box's describe calls trust it.
    """
    if not isinstance(reply, dict):
        raise BadModuleReply("The tenant module returned no reply to a request")
    if reply.get("id") != request_id or isinstance(reply.get("id"), bool):
        raise BadModuleReply("The tenant module answered a different request id")
    if "result" in reply:
        if not isinstance(reply["result"], dict):
            raise BadModuleReply('The tenant module returned a "result" that is not an object')
        return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": reply["result"]}
    error = reply.get("error")
    if (
        isinstance(error, dict)
        and isinstance(error.get("code"), int)
        and not isinstance(error.get("code"), bool)
        and isinstance(error.get("message"), str)
    ):
        return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": error}
    raise BadModuleReply("The tenant module returned a reply with neither a result nor an error")
