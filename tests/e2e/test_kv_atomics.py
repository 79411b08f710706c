"""kv_cas, kv_incr and random_bytes (docs/abi.md 2.3) against a real box: a C tenant built from
source (tests/e2e/atomics) calls each through the SDK, and many calls run in parallel.

The box here is this module's own (not the session box of conftest.py): it serves the atomics
tenant with a concurrency cap high enough that the parallel calls are run, not refused busy.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.boxproc import REPO, BoxProcess, copy_tenants
from tests.e2e.clients import modern_call_tool

pytest.importorskip("ziglang")

ATOMICS_SOURCE = Path(__file__).parent / "atomics" / "atomics.c"
#: Parallel calls: twice the default per-tenant cap, so instances really run side by side.
PARALLEL = 16
LIMITS = f"max_concurrent_calls = {PARALLEL}\nqueue_timeout_ms = 20000\n"


def build_module(source: Path, out: Path) -> str:
    """Build a C tenant with the SDK; returns its sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["sh", str(REPO / "sdk" / "c" / "cc.sh"), str(out), str(source)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


def add_tenant(tenants: Path, name: str, module: Path, limits: str) -> None:
    folder = tenants / name
    folder.mkdir(parents=True)
    (folder / module.name).write_bytes(module.read_bytes())
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    (folder / "tenant.toml").write_text(
        f'name = "{name}"\nmodule = "{module.name}"\nsha256 = "{digest}"\n'
        f'auth = "api_key"\n[limits]\n{limits}'
    )


@pytest.fixture(scope="module")
def atomics_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxProcess]:
    workdir = tmp_path_factory.mktemp("atomics-box")
    # utils imports none of the additions: it shows that such modules still load.
    tenants = copy_tenants(workdir / "tenants", ["utils", "notes"])
    notes = tenants / "notes" / "tenant.toml"
    notes.write_text(notes.read_text().replace("[limits]\n", f"[limits]\n{LIMITS}"))
    module = workdir / "build" / "atomics.wasm"
    build_module(ATOMICS_SOURCE, module)
    add_tenant(tenants, "atomics", module, LIMITS)
    proc = BoxProcess(workdir=workdir, tenants_dir=tenants)
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"smcp-box exited with {code}:\n{proc.log()}"


@pytest.fixture(scope="module")
def key(atomics_box: BoxProcess) -> str:
    return atomics_box.create_key("atomics")


class Atomics:
    def __init__(self, http: httpx.AsyncClient, url: str, key: str) -> None:
        self.http, self.url, self.key = http, url, key

    async def raw(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return await modern_call_tool(self.http, self.url, self.key, tool, arguments)

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        reply = await self.raw(tool, **arguments)
        assert "result" in reply, reply
        result: dict[str, Any] = reply["result"]
        assert not result.get("isError"), result
        return result

    async def structured(self, tool: str, **arguments: Any) -> dict[str, Any]:
        content: dict[str, Any] = (await self.call(tool, **arguments))["structuredContent"]
        return content

    async def get(self, key: str) -> str | None:
        reply = await self.raw("get", key=key)
        result = reply["result"]
        text = "".join(c["text"] for c in result["content"])
        return None if result.get("isError") else text


@pytest.fixture
async def atomics(atomics_box: BoxProcess, key: str) -> Any:
    async with httpx.AsyncClient(timeout=60) as http:
        yield Atomics(http, atomics_box.url("atomics"), key)


async def test_a_counter_under_contention_ends_exact(atomics: Atomics) -> None:
    calls, gate = 200, asyncio.Semaphore(PARALLEL)

    async def one() -> int:
        async with gate:
            answer = await atomics.structured("incr", key="counter", delta=1)
        assert answer["rc"] == 0, answer
        return int(answer["value"])

    values = await asyncio.gather(*(one() for _ in range(calls)))
    # Each call saw its own increment: every value from 1 to 200 exactly once, none lost.
    assert sorted(values) == list(range(1, calls + 1))
    assert await atomics.get("counter") == str(calls)


async def test_incr_counts_from_absent_takes_negative_deltas_and_refuses_non_integers(
    atomics: Atomics,
) -> None:
    assert await atomics.structured("incr", key="n", delta=5) == {"rc": 0, "value": 5}
    assert await atomics.structured("incr", key="n", delta=-7) == {"rc": 0, "value": -2}
    assert await atomics.get("n") == "-2"
    assert await atomics.structured("set", key="word", value="twelve") == {"rc": 0}
    assert await atomics.structured("incr", key="word", delta=1) == {"rc": -3}
    assert await atomics.get("word") == "twelve"  # nothing written
    i64_max = (1 << 63) - 1
    assert await atomics.structured("set", key="big", value=str(i64_max)) == {"rc": 0}
    assert await atomics.structured("incr", key="big", delta=1) == {"rc": -3}
    assert await atomics.get("big") == str(i64_max)


async def test_cas_writes_only_over_the_expected_value_or_absence(atomics: Atomics) -> None:
    # Absent expected: only if absent.
    assert await atomics.structured("cas", key="c", value="one") == {"rc": 1}
    assert await atomics.structured("cas", key="c", value="two") == {"rc": 0}
    assert await atomics.get("c") == "one"
    # Matching expected value: written.
    assert await atomics.structured("cas", key="c", expected="one", value="two") == {"rc": 1}
    assert await atomics.get("c") == "two"
    # Mismatch: not written.
    assert await atomics.structured("cas", key="c", expected="one", value="three") == {"rc": 0}
    assert await atomics.get("c") == "two"
    # An expected value never matches an absent key; the empty string is a value, not absence.
    assert await atomics.structured("cas", key="gone", expected="", value="x") == {"rc": 0}
    assert await atomics.get("gone") is None
    assert await atomics.structured("cas", key="c", expected="two", value="") == {"rc": 1}
    assert await atomics.structured("cas", key="c", expected="", value="four") == {"rc": 1}
    assert await atomics.get("c") == "four"


async def test_cas_under_contention_lets_exactly_one_writer_claim_a_key(atomics: Atomics) -> None:
    answers = await asyncio.gather(
        *(atomics.structured("cas", key="claim", value=f"writer-{i}") for i in range(PARALLEL))
    )
    winners = [i for i, answer in enumerate(answers) if answer["rc"] == 1]
    assert len(winners) == 1, answers
    assert await atomics.get("claim") == f"writer-{winners[0]}"


async def test_random_bytes_differ_between_calls(atomics: Atomics) -> None:
    first = "".join(c["text"] for c in (await atomics.call("random", len=32))["content"])
    second = "".join(c["text"] for c in (await atomics.call("random", len=32))["content"])
    assert len(first) == len(second) == 64
    assert first != second
    full = "".join(c["text"] for c in (await atomics.call("random", len=65536))["content"])
    assert len(full) == 2 * 65536
    # 64 KiB of CSPRNG output uses every byte value; a zero-filled buffer would not.
    assert len(set(bytes.fromhex(full))) == 256


async def test_random_bytes_refuses_more_than_64_kib(atomics: Atomics) -> None:
    reply = await atomics.raw("random", len=65537)
    assert reply["error"]["code"] == -32054, reply
    assert "65536" in reply["error"]["message"]
    # The tenant keeps serving.
    assert len((await atomics.call("random", len=1))["content"][0]["text"]) == 2


async def test_a_module_without_the_new_imports_still_loads(
    atomics_box: BoxProcess, atomics: Atomics
) -> None:
    utils_key = atomics_box.create_key("utils")
    reply = await modern_call_tool(
        atomics.http, atomics_box.url("utils"), utils_key, "echo", {"text": "still loads"}
    )
    assert "result" in reply, reply
    assert not reply["result"].get("isError"), reply


# --- the notes tenant under concurrent calls (issue 13: ids handed out twice lost 316 notes) ----


async def test_concurrent_note_creates_get_distinct_ids_and_all_notes_stay(
    atomics_box: BoxProcess, atomics: Atomics
) -> None:
    key, url = atomics_box.create_key("notes"), atomics_box.url("notes")
    calls, gate = 64, asyncio.Semaphore(PARALLEL)

    async def create(i: int) -> int:
        async with gate:
            reply = await modern_call_tool(
                atomics.http, url, key, "note_create", {"title": f"race {i}", "body": f"b{i}"}
            )
        assert not reply["result"].get("isError"), reply
        return int(reply["result"]["structuredContent"]["id"])

    ids = await asyncio.gather(*(create(i) for i in range(calls)))
    assert len(set(ids)) == calls, sorted(ids)
    listing = await modern_call_tool(atomics.http, url, key, "note_list", {})
    titles = {note["id"]: note["title"] for note in listing["result"]["structuredContent"]["notes"]}
    assert {titles[note_id] for note_id in ids} == {f"race {i}" for i in range(calls)}


async def test_concurrent_note_updates_lose_no_field(
    atomics_box: BoxProcess, atomics: Atomics
) -> None:
    key, url = atomics_box.create_key("notes"), atomics_box.url("notes")
    created = await modern_call_tool(
        atomics.http, url, key, "note_create", {"title": "original", "body": "original"}
    )
    note_id = created["result"]["structuredContent"]["id"]

    async def update(i: int) -> None:
        field = "title" if i % 2 else "body"
        reply = await modern_call_tool(
            atomics.http, url, key, "note_update", {"id": note_id, field: f"{field} {i}"}
        )
        assert not reply["result"].get("isError"), reply

    await asyncio.gather(*(update(i) for i in range(PARALLEL)))
    got = await modern_call_tool(atomics.http, url, key, "note_get", {"id": note_id})
    note = got["result"]["structuredContent"]
    # Every update wrote over the latest note, so the last title and the last body both stay;
    # a blind read-modify-write lets a title update put back the body it read (or vice versa).
    assert note["title"] != "original", note
    assert note["body"] != "original", note
