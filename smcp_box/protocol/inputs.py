"""InputRequiredResult rounds (MRTR) and how the box adapts them to handshake-era clients.

A module never sends requests of its own. When it needs the client (sampling, elicitation,
roots) it *answers* ``tools/call``, ``prompts/get`` or ``resources/read`` with an
InputRequiredResult::

    {"resultType": "input_required",
     "inputRequests": {"<key>": {"method": "sampling/createMessage", "params": {...}}, ...},
     "requestState": "<opaque, optional>"}

and gets the answers when the same request comes again with ``params.inputResponses`` (one
result per key) and ``params.requestState``. A 2026-07-28 client runs those rounds itself. A
handshake-era client does not know the result type, so the box runs them: it sends each input
request to the client as a JSON-RPC request, collects the answers and calls the module again.
These are the I/O-free rules of that adapter; :mod:`smcp_box.web.mcp_legacy_inputs` drives it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from smcp_box.errors import BadModuleReply, InputRoundFailed
from smcp_box.protocol.jsonrpc import JSONRPC_VERSION, RequestId
from smcp_box.protocol.modern import CLIENT_CAPABILITIES_META_KEY
from smcp_box.protocol.versions import is_at_least
from smcp_box.seams import JsonObject

INPUT_REQUIRED: Final = "input_required"
#: The requests a module may ask the client for, and the client capability each needs.
INPUT_METHOD_CAPABILITY: Final[Mapping[str, str]] = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}
#: The only requests that may be answered with an InputRequiredResult (SEP-2322).
INPUT_ROUND_METHODS: Final = frozenset({"tools/call", "prompts/get", "resources/read"})
#: Elicitation entered the protocol with this revision; older clients cannot be asked.
ELICITATION_SINCE: Final = "2025-06-18"
#: Bounds a module's InputRequiredResult, so one reply cannot make the box send thousands of
#: requests or keep thousands of futures.
MAX_INPUT_REQUESTS: Final = 16


@dataclass(frozen=True)
class InputRequest:
    key: str
    method: str
    params: JsonObject | None


@dataclass(frozen=True)
class InputRound:
    requests: tuple[InputRequest, ...]
    #: Returned to the module verbatim on the next round (the module seals it).
    request_state: str | None


def is_input_required(reply: Mapping[str, Any]) -> bool:
    """Whether a checked module reply is an InputRequiredResult."""
    result = reply.get("result")
    return isinstance(result, dict) and result.get("resultType") == INPUT_REQUIRED


def parse_round(result: Mapping[str, Any]) -> InputRound:
    """The input requests of an InputRequiredResult; BadModuleReply when malformed."""
    raw_requests = result.get("inputRequests", {})
    if not isinstance(raw_requests, dict):
        raise BadModuleReply("The tenant module's InputRequiredResult has no inputRequests object")
    if len(raw_requests) > MAX_INPUT_REQUESTS:
        raise BadModuleReply(
            f"The tenant module asked for {len(raw_requests)} inputs at once; at most "
            f"{MAX_INPUT_REQUESTS} are allowed"
        )
    state = result.get("requestState")
    if state is not None and not isinstance(state, str):
        raise BadModuleReply("The tenant module's requestState is not a string")
    if not raw_requests and state is None:
        raise BadModuleReply("The tenant module's InputRequiredResult asks for nothing")
    requests: list[InputRequest] = []
    for key, entry in raw_requests.items():
        method = entry.get("method") if isinstance(entry, dict) else None
        if not isinstance(method, str) or method not in INPUT_METHOD_CAPABILITY:
            raise BadModuleReply(
                f"The tenant module's input request {key!r} is not one of "
                f"{', '.join(INPUT_METHOD_CAPABILITY)}"
            )
        params = entry.get("params")
        if params is not None and not isinstance(params, dict):
            raise BadModuleReply(f"The tenant module's input request {key!r} has bad params")
        requests.append(InputRequest(key=key, method=method, params=params))
    return InputRound(requests=tuple(requests), request_state=state)


def check_client_can_answer(
    round_: InputRound, capabilities: Mapping[str, Any], negotiated_version: str
) -> None:
    """A server must not ask what the client did not declare (or cannot know of)."""
    for request in round_.requests:
        capability = INPUT_METHOD_CAPABILITY[request.method]
        if not isinstance(capabilities.get(capability), dict):
            raise InputRoundFailed(
                f"The tool needs the client's {capability} capability ({request.method}), "
                f"and the client did not declare {capability} in initialize"
            )
        if request.method == "elicitation/create" and not is_at_least(
            negotiated_version, ELICITATION_SINCE
        ):
            raise InputRoundFailed(
                f"The tool needs elicitation, which protocol {negotiated_version} does not "
                f"have; reconnect with {ELICITATION_SINCE} or later"
            )


def client_request(request: InputRequest, box_id: str) -> JsonObject:
    """The JSON-RPC request the box sends the client for one input request."""
    message: JsonObject = {"jsonrpc": JSONRPC_VERSION, "id": box_id, "method": request.method}
    if request.params is not None:
        message["params"] = request.params
    return message


def box_request_id(stream_id: str, round_number: int, key: str) -> str:
    """A request id unique within the session: stream ids are random per request stream."""
    return f"smcp-{stream_id}-{round_number}-{key}"


def answer_of(request: InputRequest, response: Mapping[str, Any]) -> JsonObject:
    """The client's result for one input request; a JSON-RPC error ends the call.

    InputResponses has no slot for an error, so a refusal cannot be passed on to the module.
    """
    result = response.get("result")
    if isinstance(result, dict):
        return result
    error = response.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    raise InputRoundFailed(
        f"The client refused {request.method}: "
        f"{message if isinstance(message, str) else 'no reason given'}"
    )


def next_round_params(
    params: Mapping[str, Any] | None,
    answers: Mapping[str, JsonObject],
    request_state: str | None,
) -> JsonObject:
    """The original request's params with this round's answers (and the module's state)."""
    shaped = copy.deepcopy(dict(params or {}))
    shaped["inputResponses"] = dict(answers)
    if request_state is not None:
        shaped["requestState"] = request_state
    else:
        shaped.pop("requestState", None)
    return shaped


def with_client_capabilities(
    message: Mapping[str, Any], capabilities: Mapping[str, Any] | None
) -> JsonObject:
    """A handshake-era request with the session's client capabilities in ``params._meta``.

    Modules then read capabilities one way in both eras. A value the client put there itself
    wins; ``None`` (a session from before the box recorded capabilities) adds nothing, which a
    module reads as "unknown".
    """
    shaped = dict(message)
    if capabilities is None:
        return shaped
    params = shaped.get("params")
    params = dict(params) if isinstance(params, dict) else {}
    meta = params.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta.setdefault(CLIENT_CAPABILITIES_META_KEY, dict(capabilities))
    params["_meta"] = meta
    shaped["params"] = params
    return shaped


def cancel_notification(request_id: RequestId, reason: str) -> JsonObject:
    return {
        "jsonrpc": JSONRPC_VERSION,
        "method": "notifications/cancelled",
        "params": {"requestId": request_id, "reason": reason},
    }
