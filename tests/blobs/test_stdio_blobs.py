"""A stdio tenant (a Go MCP server built from source, tests/blobs/stdio) keeps blobs through
the Go helper package sdk/go/blob over the smcp imports a WASI command may use:
blob_open/read/write/close/delete, blob_stat_into and blob_list_into."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.e2e.clients import connect
from tests.e2e.test_stdio_tenants import stdio_tenant
from tests.ops.support import box_settings, serving, started
from tests.support.gowasm import go_module

SOURCE = Path(__file__).parent / "stdio"
LIMITS = "memory_mib = 64\nfuel = 1000000000000\ntimeout_ms = 60000\nmax_host_calls = 100000\n"


async def test_a_stdio_tenant_writes_and_reads_blobs(tmp_path: Path, module_cache: Path) -> None:
    scratch = tmp_path / "build"
    scratch.mkdir()
    tenants = tmp_path / "tenants"
    stdio_tenant(tenants / "sblobs", "sblobs", go_module(SOURCE, scratch), LIMITS)
    async with started(box_settings(tmp_path, tenants, module_cache)) as box, serving(box) as base:
        _, key = await box.store.create_api_key("sblobs", "tests")
        url = f"{base}/t/sblobs/mcp"
        text, repeat = "blob piece " * 100, 3000  # 3.3 MB: many 64 KiB writes
        data = (text * repeat).encode()
        expected = f"{len(data)} {hashlib.sha256(data).hexdigest()}"
        async with connect(url, key, "auto") as client:
            put = await client.call_tool(
                "put", {"name": "go/out.txt", "text": text, "repeat": repeat}
            )
            assert put.content[0].text == expected  # type: ignore[union-attr]
            got = await client.call_tool("get", {"name": "go/out.txt"})
            assert got.content[0].text == expected  # type: ignore[union-attr]
            stated = await client.call_tool("stat", {"name": "go/out.txt"})
            stat = json.loads(stated.content[0].text)  # type: ignore[union-attr]
            assert (stat["size"], stat["contentType"]) == (len(data), "text/plain")
            missing = await client.call_tool("get", {"name": "nothing"})
            assert missing.is_error
            assert missing.content[0].text == "blob open nothing: no such blob (-3)"  # type: ignore[union-attr]
            absent = await client.call_tool("stat", {"name": "nothing"})
            assert absent.content[0].text == "absent"  # type: ignore[union-attr]
        info = await box.store.blobs.require("sblobs", "go/out.txt")
        assert info.sha256 == hashlib.sha256(data).hexdigest()


def texts(result: object) -> str:
    return "".join(c.text for c in result.content)  # type: ignore[attr-defined]


async def test_the_go_helper_lists_deletes_and_names_refusals(
    tmp_path: Path, module_cache: Path
) -> None:
    scratch = tmp_path / "build"
    scratch.mkdir()
    tenants = tmp_path / "tenants"
    quotas = "[quotas]\nblob_max_bytes = 100000\n"
    stdio_tenant(tenants / "sblobs", "sblobs", go_module(SOURCE, scratch), LIMITS + quotas)
    async with started(box_settings(tmp_path, tenants, module_cache)) as box, serving(box) as base:
        _, key = await box.store.create_api_key("sblobs", "tests")
        async with connect(f"{base}/t/sblobs/mcp", key, "auto") as client:
            small = await client.call_tool("small", {"name": "notes/a.md", "text": "# a"})
            assert texts(small) == "# a"  # WriteFile, then ReadFile
            empty = await client.call_tool("small", {"name": "notes/empty.md", "text": ""})
            assert (empty.is_error, texts(empty)) == (False, "")
            await client.call_tool("put", {"name": "other.txt", "text": "x"})
            listed = await client.call_tool("list", {"name": "notes/"})
            assert texts(listed) == "notes/a.md 3\nnotes/empty.md 0"
            stat = json.loads(texts(await client.call_tool("stat", {"name": "notes/a.md"})))
            assert stat["contentType"] == "text/markdown"
            assert stat["sha256"] == hashlib.sha256(b"# a").hexdigest()
            deleted = await client.call_tool("delete", {"name": "notes/a.md"})
            assert texts(deleted) == "true"
            again = await client.call_tool("delete", {"name": "notes/a.md"})
            assert texts(again) == "false"
            bad = await client.call_tool("small", {"name": "../up", "text": "x"})
            assert bad.is_error
            assert texts(bad).startswith("blob create ../up: the name or content type is not")
            # 120,000 bytes past blob_max_bytes: refused at the write that crosses it.
            over = await client.call_tool("put", {"name": "big.txt", "text": "y", "repeat": 120000})
            assert over.is_error
            assert texts(over).startswith("blob write big.txt: a blob quota would be exceeded")
        names = [i.name for i in await box.store.blobs.listing("sblobs")]
        assert names == ["notes/empty.md", "other.txt"]
