"""A tool call leaves no reference cycles behind: its objects are freed when it ends.

Whatever a request creates in a cycle waits for the cyclic garbage collector, whose collections
run more often the more such garbage there is and stall the event loop while they walk it. A
cycle between a call's host calls and its blob handles once left about 35 objects per
``tools/call`` for the collector (three times as many collections, about 5% of the box's CPU
per request under load). The box is driven in process, through its ASGI app, so that only the
box's own objects are counted (a client or a server's connection makes garbage of its own).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.inprocess_bench import post
from smcp_box.web.app import create_app
from tests.admin.support import running_box
from tests.support.cycles import garbage_left
from tests.web.rawhttp import modern

CALLS = 40


async def _call_hash(asgi: Any, headers: dict[str, str], body: bytes) -> None:
    reply = await post(asgi, headers, body, tenant="utils")
    assert reply["status"] == 200, reply
    assert b"ba7816bf" in reply["body"], reply  # sha256("abc"): the module really ran


async def test_a_tool_call_leaves_nothing_for_the_cyclic_collector(tmp_path: Path) -> None:
    async with running_box(tmp_path, tmp_path / "cache") as rb:
        _, key = await rb.box.store.create_api_key("utils", "cycles")
        asgi = create_app(rb.box.settings, rb.box.app_services()).asgi_app
        headers, message = modern(
            "tools/call", {"name": "hash", "arguments": {"text": "abc"}}, name="hash"
        )
        headers["Authorization"] = f"Bearer {key}"
        body = json.dumps(message).encode()
        for _ in range(3):  # warm: caches, the compiled module, the pool's first instance
            await _call_hash(asgi, headers, body)
        await rb.box.auditor.flush()
        with garbage_left() as garbage:
            for _ in range(CALLS):
                await _call_hash(asgi, headers, body)
            await rb.box.auditor.flush()
        # Not one object per call: a cycle made by every call would leave dozens each.
        assert sum(garbage.values()) < CALLS, garbage.most_common(12)
