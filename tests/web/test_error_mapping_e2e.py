"""End-to-end spot checks of the one error mapping: the same error class answered by a real
endpoint in each era and at each stage, with the status and code
:func:`~smcp_box.protocol.error_replies.error_reply` gives for it."""

from __future__ import annotations

import httpx

from smcp_box.errors import InvalidParams, MethodNotAllowed, MethodNotFound, SessionNotFound
from smcp_box.protocol.error_replies import Stage, error_reply
from smcp_box.protocol.versions import Era
from tests.web.conftest import BoxUnderTest
from tests.web.rawhttp import MODERN, base_headers, initialize, modern, rpc, session_headers


def assert_mapped(response: httpx.Response, status: int, code: int, request_id: object) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["id"] == request_id
    assert body["error"]["code"] == code


async def test_invalid_params_after_dispatch_follows_each_eras_table(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session = await initialize(http, box)
    legacy = await http.post(
        box.url(),
        headers=session_headers(session),
        json=rpc("logging/setLevel", {"level": "loudest"}, request_id=4),
    )
    expected = error_reply(InvalidParams("x"), stage=Stage.DISPATCH, era=Era.LEGACY)
    assert expected.status == 200
    assert_mapped(legacy, expected.status, -32602, 4)

    # The fake tenant answers a call of an unknown tool -32602, as a module does.
    headers, body = modern("tools/call", {"name": "nope"}, request_id=5, name="nope")
    answered = await http.post(box.url(), headers=headers, json=body)
    expected = error_reply(InvalidParams("x"), stage=Stage.DISPATCH, era=Era.MODERN)
    assert expected.status == 400
    assert_mapped(answered, expected.status, -32602, 5)


async def test_method_not_found_in_each_era(box: BoxUnderTest, http: httpx.AsyncClient) -> None:
    headers, body = modern("ping", request_id="p")
    removed = await http.post(box.url(), headers=headers, json=body)
    expected = error_reply(MethodNotFound("x"), stage=Stage.DISPATCH, era=Era.MODERN)
    assert_mapped(removed, expected.status, -32601, "p")
    assert expected.status == 404


async def test_errors_about_the_exchange_keep_their_status(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    gone = await http.post(
        box.url(), headers=session_headers("no-such-session"), json=rpc("tools/list")
    )
    assert_mapped(gone, error_reply(SessionNotFound("x"), stage=Stage.EXCHANGE).status, -32600, 1)
    assert gone.status_code == 404

    get = await http.get(
        box.url(), headers=base_headers(**{"MCP-Protocol-Version": MODERN, "Accept": "*/*"})
    )
    expected = error_reply(MethodNotAllowed("x"), stage=Stage.EXCHANGE)
    assert_mapped(get, expected.status, -32600, None)
    assert get.headers["allow"] == expected.headers["Allow"] == "POST"


async def test_box_made_request_ids_are_distinct_hex(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    ids = set()
    for _ in range(3):
        response = await http.get(box.base_url + "/healthz")
        request_id = response.headers["x-request-id"]
        assert len(request_id) == 16
        int(request_id, 16)
        ids.add(request_id)
    assert len(ids) == 3
    offered = await http.get(box.base_url + "/healthz", headers={"X-Request-Id": "mine-1"})
    assert offered.headers["x-request-id"] == "mine-1"
