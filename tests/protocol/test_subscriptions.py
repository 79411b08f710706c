"""subscriptions/listen filters and tenant notifications (smcp_box.protocol.subscriptions)."""

from __future__ import annotations

from typing import Any

import pytest

from smcp_box.errors import InvalidParams
from smcp_box.protocol.legacy import MAX_SUBSCRIPTIONS, SessionState
from smcp_box.protocol.subscriptions import (
    MAX_RESOURCE_SUBSCRIPTIONS,
    SubscriptionFilter,
    acknowledgement,
    granted_filter,
    is_tenant_event,
    listen_result,
    offers_subscriptions,
    parse_filter,
    tagged,
)

TOOLS_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {}}
PROMPTS_CHANGED = {"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"}


def updated(uri: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}


def test_parse_filter() -> None:
    parsed = parse_filter(
        {"notifications": {"toolsListChanged": True, "promptsListChanged": False}}
    )
    assert parsed == SubscriptionFilter(lists=frozenset({"toolsListChanged"}))
    with_uris = parse_filter({"notifications": {"resourceSubscriptions": ["a://1", "a://2"]}})
    assert with_uris.resources == {"a://1", "a://2"}
    assert parse_filter({"notifications": {}}) == SubscriptionFilter()


@pytest.mark.parametrize(
    "params",
    [
        None,
        {},
        {"notifications": []},
        {"notifications": {"toolsListChanged": "yes"}},
        {"notifications": {"resourceSubscriptions": "a://1"}},
        {"notifications": {"resourceSubscriptions": [1]}},
        {"notifications": {"resourceSubscriptions": ["u"] * (MAX_RESOURCE_SUBSCRIPTIONS + 1)}},
    ],
)
def test_malformed_filters_are_invalid_params(params: Any) -> None:
    with pytest.raises(InvalidParams):
        parse_filter(params)


def test_what_a_tenant_offers() -> None:
    assert not offers_subscriptions({})
    assert not offers_subscriptions({"tools": {"listChanged": False}, "resources": {}})
    assert offers_subscriptions({"prompts": {"listChanged": True}})
    assert offers_subscriptions({"resources": {"subscribe": True}})
    requested = SubscriptionFilter(
        lists=frozenset({"toolsListChanged", "promptsListChanged", "resourcesListChanged"}),
        resources=frozenset({"a://1"}),
    )
    granted = granted_filter(requested, {"tools": {"listChanged": True}, "prompts": {}})
    assert granted == SubscriptionFilter(lists=frozenset({"toolsListChanged"}))
    with_resources = granted_filter(requested, {"resources": {"subscribe": True}})
    assert with_resources == SubscriptionFilter(resources=frozenset({"a://1"}))


def test_matching_and_tagging() -> None:
    only_tools = SubscriptionFilter(lists=frozenset({"toolsListChanged"}))
    assert only_tools.matches(TOOLS_CHANGED)
    assert not only_tools.matches(PROMPTS_CHANGED)
    assert not only_tools.matches(updated("a://1"))
    watching = SubscriptionFilter(resources=frozenset({"a://1"}))
    assert watching.matches(updated("a://1"))
    assert not watching.matches(updated("a://2"))
    assert not watching.matches(updated(None))
    assert is_tenant_event(TOOLS_CHANGED)
    assert is_tenant_event(updated("x"))
    assert not is_tenant_event({"method": "notifications/progress"})

    key = "io.modelcontextprotocol/subscriptionId"
    tag = tagged({"method": "notifications/tools/list_changed"}, 7)
    assert tag == {
        "jsonrpc": "2.0",
        "method": "notifications/tools/list_changed",
        "params": {"_meta": {key: 7}},
    }
    source = updated("a://1") | {"params": {"uri": "a://1", "_meta": {"x": 1}}}
    assert tagged(source, "L")["params"] == {"uri": "a://1", "_meta": {"x": 1, key: "L"}}
    assert source["params"]["_meta"] == {"x": 1}  # the module's message is not changed

    ack = acknowledgement(SubscriptionFilter(lists=frozenset({"toolsListChanged"})), 3)
    assert ack == {
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": {"toolsListChanged": True}, "_meta": {key: 3}},
    }
    assert listen_result(3) == {"resultType": "complete", "_meta": {key: 3}}


def test_session_state_keeps_bounded_subscriptions() -> None:
    state = SessionState(owner="o", client_capabilities={"sampling": {}})
    one = state.subscribed("a://1")
    assert one.subscribed("a://1") is one  # idempotent
    assert one.subscribed("a://2").subscriptions == ("a://1", "a://2")
    assert one.unsubscribed("a://1").subscriptions == ()
    assert SessionState.from_json(one.to_json()) == one
    full = SessionState(owner="o", subscriptions=tuple(f"u{i}" for i in range(MAX_SUBSCRIPTIONS)))
    with pytest.raises(InvalidParams, match="at most"):
        full.subscribed("one-more")
    assert full.subscribed("u0") is full
