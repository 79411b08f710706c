"""Expired legacy sessions answer 404 through the transport, on the injected clock: past the
idle lifetime, past the absolute one although in use, and after the cleaner deleted them."""

from __future__ import annotations

import httpx

from smcp_box.config import SessionSettings
from tests.web.conftest import BoxUnderTest
from tests.web.rawhttp import initialize, rpc, session_headers
from tests.web.test_bad_input import assert_error

LIFETIMES = SessionSettings()


async def ping(http: httpx.AsyncClient, box: BoxUnderTest, session_id: str) -> httpx.Response:
    return await http.post(box.url(), headers=session_headers(session_id), json=rpc("ping"))


async def test_idle_session_answers_404_before_and_after_the_cleaner(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    kept, dropped = await initialize(http, box), await initialize(http, box)
    box.now[0] += LIFETIMES.idle_timeout_s - 1
    assert (await ping(http, box, kept)).status_code == 200
    box.now[0] += 2
    # ``dropped`` is idle past the limit; its row is still in the store (no cleaner ran).
    assert len(await box.sessions.store.list_sessions("alpha")) == 2
    assert_error(await ping(http, box, dropped), 404, -32600, 1)
    assert (await ping(http, box, kept)).status_code == 200
    deleted = await box.sessions.store.expire_sessions(
        box.now[0] - LIFETIMES.idle_timeout_s, box.now[0] - LIFETIMES.max_age_s
    )
    assert deleted == 1
    assert_error(await ping(http, box, dropped), 404, -32600, 1)


async def test_a_session_in_use_answers_404_past_its_absolute_age(
    box: BoxUnderTest, http: httpx.AsyncClient
) -> None:
    session_id = await initialize(http, box)
    step = LIFETIMES.idle_timeout_s / 2
    used_for = 0.0
    while used_for + step <= LIFETIMES.max_age_s:
        box.now[0] += step
        used_for += step
        assert (await ping(http, box, session_id)).status_code == 200
    box.now[0] += step
    assert_error(await ping(http, box, session_id), 404, -32600, 1)
