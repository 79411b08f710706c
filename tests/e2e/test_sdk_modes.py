"""The official MCP SDK client against a real box and real wasm tenants, in all three modes."""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

import pytest
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import MODES, connect


def text_of(result: Any) -> str:
    return str(result.content[0].text)


@pytest.mark.parametrize("mode", MODES)
async def test_notes_tools_resources_and_prompts(
    box: BoxProcess, keys: dict[str, str], mode: str
) -> None:
    async with connect(box.url("notes"), keys["notes"], mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {
            "note_create",
            "note_get",
            "note_list",
            "note_search",
            "note_update",
            "note_delete",
        }
        created = await client.call_tool(
            "note_create", {"title": f"Groceries {mode}", "body": "milk, *eggs*", "tags": ["x"]}
        )
        assert not created.is_error
        note = created.structured_content
        assert note is not None
        uri = note["uri"]
        assert uri == f"note://{note['id']}"

        fetched = await client.call_tool("note_get", {"id": note["id"]})
        assert "milk, *eggs*" in text_of(fetched)
        found = await client.call_tool("note_search", {"query": f"groceries {mode}"})
        assert f"Groceries {mode}" in text_of(found)

        resources = await client.list_resources()
        assert uri in {str(r.uri) for r in resources.resources}
        read = await client.read_resource(uri)
        assert "milk, *eggs*" in read.contents[0].text  # type: ignore[union-attr]
        templates = await client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["note://{id}"]

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == {"summarize_note", "daily_review"}
        prompt = await client.get_prompt("summarize_note", {"id": str(note["id"])})
        assert "milk, *eggs*" in json.dumps(prompt.model_dump())

        missing = await client.call_tool("note_get", {"id": 999999})
        assert missing.is_error
        with pytest.raises(MCPError):
            await client.get_prompt("no_such_prompt", {})
        deleted = await client.call_tool("note_delete", {"id": note["id"]})
        assert not deleted.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_utils_tools_progress_and_logs(
    box: BoxProcess, keys: dict[str, str], mode: str
) -> None:
    progress: list[tuple[float, float | None]] = []
    levels: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    async def on_log(params: Any) -> None:
        levels.append(params.level)

    extra: dict[str, Any] = {"logging_callback": on_log}
    if mode != "legacy":
        extra["log_level"] = "debug"  # 2026-07-28 delivers logs only on opt-in
    async with connect(box.url("utils"), keys["utils"], mode, **extra) as client:
        digest = await client.call_tool("hash", {"text": "hello"})
        assert hashlib.sha256(b"hello").hexdigest() in text_of(digest)
        converted = await client.call_tool("convert_units", {"value": 1, "from": "mi", "to": "km"})
        assert "1.609344" in text_of(converted)
        bad_unit = await client.call_tool("convert_units", {"value": 1, "from": "mi", "to": "kg"})
        assert bad_unit.is_error
        primes = await client.call_tool(
            "count_primes", {"n": 1_000_000}, progress_callback=on_progress
        )
        assert primes.structured_content == {"n": 1_000_000, "count": 78498}
        assert len(progress) == 10
        assert progress[-1][0] == progress[-1][1]
        assert [p for p, _ in progress] == sorted(p for p, _ in progress)

        await client.call_tool("log_demo", {"message": "hi"})
        assert levels == ["debug", "info", "notice", "warning", "error", "info"]
        if mode == "legacy":
            levels.clear()
            with warnings.catch_warnings():
                # The SDK flags setLevel and ping as removed in 2026-07-28; legacy still has them.
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.set_logging_level("warning")
                assert (await client.send_ping()) is not None
            await client.call_tool("log_demo", {"message": "hi"})
            assert levels == ["warning", "error"]
