"""Tenant secrets (issue 15): set through the CLI, read by a real module through config_get,
and found in plaintext nowhere: not the database files, the log output or the audit log."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.admin.support import RunningBox, call_tool, mcp_session, running_box, serving_mcp
from tests.admin.test_cli import smcp


def declare_secret(tenants: Path) -> None:
    """utils' tenant.toml declares the secret its hello tool reads (``greeting``)."""
    manifest = tenants / "utils" / "tenant.toml"
    text = manifest.read_text()
    manifest.write_text(
        text.replace('auth = "api_key"\n', 'auth = "api_key"\nsecrets = ["greeting"]\n')
    )


@pytest.fixture
def all_log_output() -> Iterator[list[str]]:
    """Every log record any logger emits while the test runs, formatted with its arguments."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


async def hello(rb: RunningBox, base: str, http: httpx.AsyncClient, key: str) -> str:
    url = f"{base}/t/utils/mcp"
    headers = await mcp_session(http, url, key)
    response = await call_tool(http, url, headers, "hello", {"name": "box"})
    response.raise_for_status()
    body = response.json() if "json" in response.headers["content-type"] else _sse(response.text)
    text = body["result"]["content"][0]["text"]
    assert isinstance(text, str)
    return text


def _sse(text: str) -> dict[str, object]:
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    parsed = json.loads(data[-1])
    assert isinstance(parsed, dict)
    return parsed


def scan_database_files(database: Path, value: str) -> None:
    files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    assert database in files
    for path in files:
        assert value.encode() not in path.read_bytes(), f"plaintext secret in {path}"


async def test_secret_reaches_the_module_and_is_stored_nowhere_in_plaintext(
    tmp_path: Path, module_cache: Path, all_log_output: list[str]
) -> None:
    value = "s3cr3t-" + secrets.token_hex(16)
    async with running_box(tmp_path, module_cache, declare_secret) as rb:
        status = await rb.client.status()
        assert status["missing_secrets"] == {"utils": ["greeting"]}
        shown = await smcp(rb, "tenant", "show", "utils")
        assert "MISSING: greeting" in shown.out

        done = await smcp(rb, "secret", "set", "utils", "greeting", stdin=(value + "\n").encode())
        assert done.code == 0, done.err
        assert "set secret greeting of utils" in done.out
        listed = await smcp(rb, "secret", "list")
        assert "greeting" in listed.out
        assert (await rb.client.status())["missing_secrets"] == {}

        _, key = await rb.box.store.create_api_key("utils", "test")
        async with serving_mcp(rb) as base, httpx.AsyncClient() as http:
            # The secret overrides tenant.toml's [config] greeting = "Hello".
            assert await hello(rb, base, http, key) == f"{value}, box!"
            deleted = await smcp(rb, "secret", "delete", "utils", "greeting")
            assert deleted.code == 0, deleted.err
            assert await hello(rb, base, http, key) == "Hello, box!"
        assert (await rb.client.status())["missing_secrets"] == {"utils": ["greeting"]}
        await rb.box.store.set_secret("utils", "greeting", value)  # stored again, for the scan

        await rb.box.auditor.flush()
        audit = await rb.box.store.audit_page(limit=1000)
        events = [row.event for row in audit]
        assert "admin.secret.set" in events
        assert "admin.secret.delete" in events
        audit_text = json.dumps([row.__dict__ for row in audit], default=str)
        assert "greeting" in audit_text  # the name is audited...
        assert value not in audit_text  # ...never the value
        cli_output = done.out + done.err + listed.out + listed.err + deleted.out + deleted.err
        assert value not in cli_output
        database = rb.settings.database_path()
        # While the box runs: the database, its write-ahead log and shared memory.
        scan_database_files(database, value)
    scan_database_files(database, value)  # and once it is closed and checkpointed
    assert all_log_output  # the box did log (requests, loads), just never the secret
    assert not [line for line in all_log_output if value in line]


async def test_removing_a_tenant_deletes_its_secrets(rb: RunningBox) -> None:
    await rb.client.set_secret("notes", "TOKEN", "value-of-notes")
    await rb.client.set_secret("utils", "TOKEN", "value-of-utils")
    removed = await rb.client.remove_tenant("notes")
    assert removed["secrets_deleted"] == 1
    assert await rb.box.store.all_secrets() == {"utils": {"TOKEN": "value-of-utils"}}
    assert rb.box.tenants.secrets.names("notes") == frozenset()
