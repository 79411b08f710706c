"""`smcp-box client-config`: each client's snippet, and the command against a running box."""

from __future__ import annotations

import json
import shlex

import httpx
import pytest

from smcp_box.admin.client_config import CLIENTS, Connection, client_snippet
from tests.admin.support import MCP_HEADERS, RunningBox, serving_mcp
from tests.admin.test_cli import smcp

URL = "https://box.lan:8765/t/notes/mcp"
KEY = "smcp_0123456789abcdef_" + "A" * 43


def test_vscode_prompts_for_the_key_instead_of_storing_it() -> None:
    config = json.loads(client_snippet("vscode", Connection("notes", URL, "api_key")).text)
    server = config["servers"]["notes"]
    assert server == {
        "type": "http",
        "url": URL,
        "headers": {"Authorization": "Bearer ${input:smcp-box-notes-key}"},
    }
    (prompt,) = config["inputs"]
    assert prompt["id"] == "smcp-box-notes-key"
    assert prompt["password"] is True


def test_vscode_with_a_key_needs_no_prompt() -> None:
    config = json.loads(client_snippet("vscode", Connection("notes", URL, "api_key", KEY)).text)
    assert config["servers"]["notes"]["headers"] == {"Authorization": f"Bearer {KEY}"}
    assert "inputs" not in config


def test_claude_code_is_one_shell_line() -> None:
    with_key = client_snippet("claude-code", Connection("notes", URL, "api_key", KEY)).text
    assert shlex.split(with_key) == [
        "claude", "mcp", "add", "--transport", "http", "notes", URL,
        "--header", f"Authorization: Bearer {KEY}",
    ]  # fmt: skip
    placeholder = client_snippet("claude-code", Connection("notes", URL, "api_key")).text
    assert placeholder.endswith('--header "Authorization: Bearer $SMCP_BOX_KEY"')


def test_cursor_and_json_use_the_common_mcp_servers_shape() -> None:
    for client in ("cursor", "json"):
        config = json.loads(client_snippet(client, Connection("notes", URL, "api_key", KEY)).text)
        assert config == {
            "mcpServers": {
                "notes": {"type": "http", "url": URL, "headers": {"Authorization": f"Bearer {KEY}"}}
            }
        }


def test_placeholders_use_each_clients_own_variable_syntax() -> None:
    cursor = json.loads(client_snippet("cursor", Connection("notes", URL, "api_key")).text)
    assert cursor["mcpServers"]["notes"]["headers"]["Authorization"] == (
        "Bearer ${env:SMCP_BOX_KEY}"
    )
    generic = json.loads(client_snippet("json", Connection("notes", URL, "api_key")).text)
    assert generic["mcpServers"]["notes"]["headers"]["Authorization"] == "Bearer ${SMCP_BOX_KEY}"


def test_claude_desktop_goes_through_mcp_remote_with_the_header_in_env() -> None:
    conn = Connection("notes", "http://box.lan:8765/t/notes/mcp", "api_key", KEY, ca_file="x")
    snippet = client_snippet("claude-desktop", conn)
    server = json.loads(snippet.text)["mcpServers"]["notes"]
    assert server["command"] == "npx"
    assert server["args"][:3] == ["-y", "mcp-remote", conn.url]
    assert "Authorization:${SMCP_BOX_AUTH}" in server["args"]
    assert "--allow-http" in server["args"]
    assert server["env"]["SMCP_BOX_AUTH"] == f"Bearer {KEY}"
    assert "NODE_EXTRA_CA_CERTS" in server["env"]
    assert any("local CA" in note for note in snippet.notes)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_public_tenant_gets_no_credential(client: str) -> None:
    snippet = client_snippet(client, Connection("open", URL, "none"))
    assert "Authorization" not in snippet.text
    assert "key create" not in " ".join(snippet.notes)


@pytest.mark.parametrize("client", CLIENTS)
def test_an_oauth_tenant_gets_no_key_and_a_sign_in_note(client: str) -> None:
    snippet = client_snippet(client, Connection("notes", URL, "oauth"))
    assert "Authorization" not in snippet.text
    assert URL in snippet.text
    notes = " ".join(snippet.notes)
    assert "key create" not in notes
    assert "uses OAuth" in notes
    # A tenant taking both keeps the API-key snippet.
    assert "Authorization" in client_snippet(client, Connection("notes", URL, "both")).text


def test_an_unknown_client_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown client"):
        client_snippet("emacs", Connection("notes", URL, "api_key"))


async def test_the_command_prints_a_snippet_whose_new_key_works(rb: RunningBox) -> None:
    result = await smcp(rb, "client-config", "notes", "--client", "cursor", "--new-key")
    assert result.code == 0, result.err
    assert "shown once" in result.err
    server = json.loads(result.out)["mcpServers"]["notes"]
    assert server["url"].endswith("/t/notes/mcp")
    async with serving_mcp(rb) as base, httpx.AsyncClient() as http:
        answer = await http.post(
            f"{base}/t/notes/mcp",
            headers={**MCP_HEADERS, **server["headers"]},
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"},
                },
            },
        )
    assert answer.status_code == 200, answer.text


async def test_the_command_names_the_key_command_without_new_key(rb: RunningBox) -> None:
    result = await smcp(rb, "client-config", "notes", "--client", "vscode", "--json")
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["where"].startswith(".vscode/mcp.json")
    assert any("smcp-box key create notes" in note for note in body["notes"])
    assert not await rb.box.store.list_api_keys("notes")
    unknown = await smcp(rb, "client-config", "nope")
    assert unknown.code == 1
    assert "nope" in unknown.err
