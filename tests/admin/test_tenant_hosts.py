"""tenant.toml ``hosts`` on a real box: shown to people (tenant show, key create, the CLI),
served at ``/mcp`` by Host with the real wasm tenant, and a clash refused naming both tenants."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.admin.support import MCP_HEADERS, call_tool, running_box, serving_mcp
from tests.admin.test_cli import smcp


def set_hosts(folder: Path, hosts: list[str]) -> None:
    manifest = folder / "tenant.toml"
    listed = ", ".join(f'"{host}"' for host in hosts)
    text = manifest.read_text()
    name_line = next(line for line in text.splitlines() if line.startswith("name ="))
    manifest.write_text(text.replace(name_line, f"{name_line}\nhosts = [{listed}]", 1))


def with_hosts(tenants: Path) -> None:
    set_hosts(tenants / "utils", ["utils.box.lan", "tools.example.org"])


async def test_host_urls_are_shown_and_the_host_serves_the_tenant(
    tmp_path: Path, module_cache: Path
) -> None:
    async with running_box(tmp_path, module_cache, before_start=with_hosts) as rb:
        utils = await rb.client.tenant("utils")
        assert utils["url"].endswith(":8765/t/utils/mcp")
        assert utils["hosts"] == ["utils.box.lan", "tools.example.org"]
        assert utils["host_urls"] == [
            "http://utils.box.lan:8765/mcp",
            "http://tools.example.org:8765/mcp",
        ]
        notes = await rb.client.tenant("notes")
        assert notes["hosts"] == []
        assert notes["host_urls"] == []
        created = await rb.client.create_key("utils", "hosts test")
        assert created["host_urls"] == utils["host_urls"]
        shown = await smcp(rb, "tenant", "show", "utils")
        assert shown.code == 0, shown.err
        assert "host url: http://utils.box.lan:8765/mcp" in shown.out

        async with serving_mcp(rb) as base, httpx.AsyncClient() as http:
            url = f"{base}/mcp"
            # Without a tenant's Host, /mcp is no tenant's endpoint.
            plain = {**MCP_HEADERS, "authorization": f"Bearer {created['key']}"}
            no_host = await http.post(
                url, headers=plain, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
            )
            assert no_host.status_code == 404
            init = {**plain, "host": "Utils.Box.Lan:8765"}
            session = await http.post(
                url,
                headers=init,
                json={
                    "jsonrpc": "2.0",
                    "id": 0,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "hosts-test", "version": "1"},
                    },
                },
            )
            assert session.status_code == 200, session.text
            assert session.json()["result"]["serverInfo"]["name"]
            session_headers = {
                **init,
                "mcp-session-id": session.headers["mcp-session-id"],
                "mcp-protocol-version": "2025-11-25",
            }
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (
                await http.post(url, headers=session_headers, json=initialized)
            ).status_code == 202
            reply = await call_tool(http, url, session_headers, "echo", {"text": "by host"})
            assert reply.status_code == 200, reply.text
            assert "by host" in reply.text
            # The session is utils's: the path form continues it.
            again = await call_tool(
                http, f"{base}/t/utils/mcp", session_headers, "echo", {"text": "by path"}
            )
            assert "by path" in again.text
            # A notes key is no key for the utils host.
            notes_key = (await rb.client.create_key("notes", "other"))["key"]
            wrong = await http.post(
                url,
                headers={**init, "authorization": f"Bearer {notes_key}"},
                json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
            )
            assert wrong.status_code == 401


def clashing_hosts(tenants: Path) -> None:
    set_hosts(tenants / "notes", ["shared.box.lan"])
    set_hosts(tenants / "utils", ["shared.box.lan"])


async def test_a_shared_host_is_a_load_error_naming_both_tenants(
    tmp_path: Path, module_cache: Path
) -> None:
    async with running_box(tmp_path, module_cache, before_start=clashing_hosts) as rb:
        body = await rb.client.tenants()
        assert [t["name"] for t in body["tenants"]] == ["notes"]
        (failed,) = body["failed"]
        assert "duplicate host 'shared.box.lan'" in failed["reason"]
        assert "tenants 'notes' and 'utils'" in failed["reason"]
        listed = await smcp(rb, "tenant", "list")
        assert "NOT LOADED" in listed.out
        assert "duplicate host 'shared.box.lan'" in listed.out
