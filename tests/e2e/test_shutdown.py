"""SIGTERM with an idle handshake-era GET stream open: the box ends the stream and exits at
once, instead of holding the drain for the whole grace period (a regression seen in review).

The grace period is far longer than the test's deadlines: a box that held the drain for it
would fail the test by its deadline, so no duration is measured."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import legacy_headers, legacy_session
from tests.e2e.conftest import make_tenants

GRACE_S = 600.0
#: How long the test waits for the stream's end and for the exit (a test timeout).
DEADLINE_S = 30.0


async def test_idle_get_stream_does_not_hold_shutdown(tmp_path: Path) -> None:
    proc = BoxProcess(
        workdir=tmp_path,
        tenants_dir=make_tenants(tmp_path),
        extra_env={"SMCP_BOX_SERVER_SHUTDOWN_GRACE_S": str(GRACE_S)},
    )
    proc.start()
    try:
        key = proc.create_key("utils")
        url = proc.url("utils")
        async with httpx.AsyncClient(timeout=30) as http:
            session = await legacy_session(http, url, key)
            headers = {**legacy_headers(key, session), "Accept": "text/event-stream"}
            async with http.stream("GET", url, headers=headers) as stream:
                assert stream.status_code == 200
                assert proc.proc is not None
                proc.proc.send_signal(signal.SIGTERM)
                # The box ends the stream itself; reading it to the end must not hang.
                await asyncio.wait_for(stream.aread(), DEADLINE_S)
            code = await asyncio.to_thread(proc.proc.wait, DEADLINE_S)
        assert code == 0, proc.log()
    finally:
        proc.stop()
