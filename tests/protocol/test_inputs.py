"""InputRequiredResult rules for handshake-era clients (smcp_box.protocol.inputs)."""

from __future__ import annotations

from typing import Any

import pytest

from smcp_box.errors import BadModuleReply, InputRoundFailed
from smcp_box.protocol.inputs import (
    MAX_INPUT_REQUESTS,
    InputRequest,
    answer_of,
    box_request_id,
    cancel_notification,
    check_client_can_answer,
    client_request,
    is_input_required,
    next_round_params,
    parse_round,
    with_client_capabilities,
)

SAMPLE = {"method": "sampling/createMessage", "params": {"maxTokens": 5, "messages": []}}
ELICIT = {"method": "elicitation/create", "params": {"message": "Name?"}}


def test_only_input_required_results_start_rounds() -> None:
    assert is_input_required({"result": {"resultType": "input_required"}})
    assert not is_input_required({"result": {"resultType": "complete"}})
    assert not is_input_required({"result": {"content": []}})
    assert not is_input_required({"error": {"code": 1, "message": "x"}})


def test_parse_round_keeps_keys_methods_params_and_state() -> None:
    round_ = parse_round(
        {"inputRequests": {"a": SAMPLE, "b": {"method": "roots/list"}}, "requestState": "s1"}
    )
    assert round_.requests == (
        InputRequest("a", "sampling/createMessage", SAMPLE["params"]),
        InputRequest("b", "roots/list", None),
    )
    assert round_.request_state == "s1"
    # A round may carry only state (the module asks to be called again).
    assert parse_round({"requestState": "x"}).requests == ()


@pytest.mark.parametrize(
    "result",
    [
        {"inputRequests": []},
        {"inputRequests": {"a": {"method": "tools/call"}}},
        {"inputRequests": {"a": "sampling/createMessage"}},
        {"inputRequests": {"a": {"method": "roots/list", "params": [1]}}},
        {"inputRequests": {"a": SAMPLE}, "requestState": 7},
        {},
        {"inputRequests": {f"k{i}": SAMPLE for i in range(MAX_INPUT_REQUESTS + 1)}},
    ],
)
def test_malformed_rounds_are_module_faults(result: dict[str, Any]) -> None:
    with pytest.raises(BadModuleReply):
        parse_round(result)


def test_the_client_must_have_declared_each_capability() -> None:
    round_ = parse_round({"inputRequests": {"a": SAMPLE, "b": ELICIT}})
    check_client_can_answer(round_, {"sampling": {}, "elicitation": {}}, "2025-11-25")
    with pytest.raises(InputRoundFailed, match="elicitation") as caught:
        check_client_can_answer(round_, {"sampling": {}}, "2025-11-25")
    assert caught.value.jsonrpc_code == -32603
    with pytest.raises(InputRoundFailed, match="sampling"):
        check_client_can_answer(round_, {"elicitation": {}}, "2025-11-25")
    # Elicitation does not exist before 2025-06-18, whatever the client claims.
    with pytest.raises(InputRoundFailed, match="2025-03-26"):
        check_client_can_answer(round_, {"sampling": {}, "elicitation": {}}, "2025-03-26")


def test_requests_and_answers() -> None:
    request = InputRequest("a", "sampling/createMessage", {"maxTokens": 5})
    box_id = box_request_id("r0123", 2, "a")
    assert box_id == "smcp-r0123-2-a"
    assert client_request(request, box_id) == {
        "jsonrpc": "2.0",
        "id": box_id,
        "method": "sampling/createMessage",
        "params": {"maxTokens": 5},
    }
    assert "params" not in client_request(InputRequest("r", "roots/list", None), "x")
    assert answer_of(request, {"id": box_id, "result": {"model": "m"}}) == {"model": "m"}
    with pytest.raises(InputRoundFailed, match="refused sampling/createMessage: no thanks"):
        answer_of(request, {"id": box_id, "error": {"code": -1, "message": "no thanks"}})
    assert cancel_notification(box_id, "timed out") == {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": box_id, "reason": "timed out"},
    }


def test_next_round_params_carry_answers_and_the_modules_state() -> None:
    original = {"name": "t", "arguments": {"x": 1}, "requestState": "old", "_meta": {"k": 1}}
    shaped = next_round_params(original, {"a": {"v": 1}}, "new")
    assert shaped == {
        "name": "t",
        "arguments": {"x": 1},
        "requestState": "new",
        "_meta": {"k": 1},
        "inputResponses": {"a": {"v": 1}},
    }
    assert "requestState" not in next_round_params(original, {}, None)
    assert original["requestState"] == "old"  # the request itself is left alone
    assert next_round_params(None, {}, None) == {"inputResponses": {}}


def test_client_capabilities_go_into_meta_unless_present() -> None:
    caps = {"sampling": {}}
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t"}}
    shaped = with_client_capabilities(message, caps)
    assert shaped["params"]["_meta"] == {"io.modelcontextprotocol/clientCapabilities": caps}
    assert "_meta" not in message["params"]
    own = {"params": {"_meta": {"io.modelcontextprotocol/clientCapabilities": {}, "p": 1}}}
    assert with_client_capabilities(own, caps) == own
    bare = with_client_capabilities({"method": "tools/list"}, caps)
    assert bare["params"] == {"_meta": {"io.modelcontextprotocol/clientCapabilities": caps}}
    # Unknown capabilities (an old session) add nothing: the module reads "unknown".
    assert with_client_capabilities(message, None) == message
