"""The handshake era's part (of :mod:`smcp_box.web.mcp_legacy`): running a module's
InputRequiredResult rounds with a handshake-era client.

A 2026-07-28 client answers an InputRequiredResult itself; a handshake-era client cannot, so the
box does it on the client's behalf (:mod:`smcp_box.protocol.inputs` has the rules):

1. the request's response is committed to SSE (priming first, for 2025-11-25 clients);
2. each input request goes to the client as a JSON-RPC request on that stream, with an id unique
   in the session; its events are persisted like every legacy frame, so a resumed stream
   replays them;
3. the client POSTs its responses; :meth:`SessionHub.deliver_response` hands each to the future
   registered here;
4. with every answer in, the module is called again with the same request plus
   ``inputResponses`` (and its ``requestState``), for at most ``max_input_rounds`` rounds.

Nothing pins a wasm instance or a worker thread while a human answers: each module call is a
short call, and the wait is an awaited future on the event loop. On timeout, on a refusal, or
when the call is cancelled (``notifications/cancelled``, DELETE, shutdown), the requests still
open are withdrawn with ``notifications/cancelled``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from smcp_box.errors import InputRoundFailed
from smcp_box.protocol.inputs import (
    InputRequest,
    InputRound,
    answer_of,
    box_request_id,
    cancel_notification,
    check_client_can_answer,
    client_request,
    is_input_required,
    next_round_params,
    parse_round,
)
from smcp_box.protocol.jsonrpc import Request
from smcp_box.seams import JsonObject
from smcp_box.web.mcp_calls import CallModule
from smcp_box.web.streams import ResponseStream, SessionHub, SessionKey


@dataclass(frozen=True)
class InputRounds:
    """What one legacy request needs to run InputRequiredResult rounds with its client."""

    hub: SessionHub
    session: SessionKey
    #: What the client declared in ``initialize`` (None: unknown, so nothing is asked).
    capabilities: JsonObject | None
    negotiated_version: str
    #: The request's stream id: makes the box's request ids unique in the session.
    stream_id: str
    timeout_s: float
    max_rounds: int


async def drive_rounds(
    rounds: InputRounds,
    request: Request,
    stream: ResponseStream,
    reply: JsonObject,
    call_module: CallModule,
) -> JsonObject:
    """Answer the module's InputRequiredResult ``reply`` by asking the client, round after round,
    and return the module's first reply that is not one (a result or an error)."""
    for number in range(1, rounds.max_rounds + 1):
        round_ = parse_round(reply["result"])
        check_client_can_answer(round_, rounds.capabilities or {}, rounds.negotiated_version)
        answers = await _ask(rounds, stream, round_, number) if round_.requests else {}
        message = dict(request.raw)
        message["params"] = next_round_params(
            request.raw.get("params"), answers, round_.request_state
        )
        reply = await call_module(message)
        if not is_input_required(reply):
            return reply
    raise InputRoundFailed(
        f"The tool still asked for input after {rounds.max_rounds} rounds with the client; "
        "the box gives up (a handshake-era request gets at most that many)"
    )


async def _ask(
    rounds: InputRounds, stream: ResponseStream, round_: InputRound, number: int
) -> dict[str, JsonObject]:
    """Send one round's requests to the client and collect its answers, keyed as the module
    keyed them."""
    await stream.commit()
    hub, session = rounds.hub, rounds.session
    pending: dict[str, InputRequest] = {}
    futures: dict[asyncio.Future[JsonObject], str] = {}
    answers: dict[str, JsonObject] = {}
    try:
        # Registered before sending: a client may answer before the last request is out.
        for request in round_.requests:
            box_id = box_request_id(rounds.stream_id, number, request.key)
            pending[box_id] = request
            futures[hub.expect_response(session, box_id)] = box_id
        for box_id, request in pending.items():
            await stream.notify(client_request(request, box_id))
        # A deadline, not ``asyncio.timeout``: a timeout is bound to the task that enters it,
        # and this may run in the request's own task before the call has one of its own
        # (``mcp_calls.start_in_place``).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + rounds.timeout_s
        waiting = set(futures)
        while waiting:
            done, waiting = await asyncio.wait(
                waiting, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise TimeoutError
            for future in [future for future in futures if future in done]:  # asked order
                response = future.result()
                box_id = str(response.get("id"))
                request = pending.pop(box_id)
                # A refusal ends the call at once: InputResponses cannot carry an error.
                answers[request.key] = answer_of(request, response)
    except TimeoutError:
        await _withdraw(stream, pending, "timed out")
        methods = ", ".join(sorted({request.method for request in pending.values()}))
        raise InputRoundFailed(
            f"The client did not answer {methods} within {rounds.timeout_s:g} s "
            "([server] server_request_timeout_s)"
        ) from None
    except InputRoundFailed:
        await _withdraw(stream, pending, "another input request was refused")
        raise
    except asyncio.CancelledError:
        # The original request was cancelled (or its session ended): nothing more is sent for
        # it, but the client should stop working on what the box asked.
        await _withdraw(stream, pending, "the request was cancelled")
        raise
    finally:
        for box_id in futures.values():
            hub.forget_response(session, box_id)
    return answers


async def _withdraw(stream: ResponseStream, pending: dict[str, InputRequest], reason: str) -> None:
    for box_id in pending:
        await stream.notify(cancel_notification(box_id, reason))
