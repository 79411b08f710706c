"""The access log (``[server] access_log``) from the real app, the counters a reload keeps, and
the serve log's shutdown lines (tests/ops/test_signals.py checks those on a real subprocess)."""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smcp_box.cli import _uptime
from smcp_box.logs import KeyValueFormatter
from smcp_box.ops.reload import reload_box
from smcp_box.web.app import REQUEST_ID_HEADER, create_app
from tests.e2e.clients import modern_call_tool, modern_headers, modern_request
from tests.ops.support import add_ops_tenant, box_settings, serving, started


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """Every line the box logs while the test runs, formatted as the box formats them."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(KeyValueFormatter(journald=False))
    root = logging.getLogger()
    access = logging.getLogger("smcp_box.access")
    level = access.level
    access.setLevel(logging.INFO)
    root.addHandler(handler)
    yield text
    root.removeHandler(handler)
    access.setLevel(level)


def access_lines(text: io.StringIO) -> list[str]:
    return [line for line in text.getvalue().splitlines() if "logger=smcp_box.access" in line]


async def test_one_line_per_request_without_secrets_and_off_by_setting(
    tmp_path: Path, ops_module: Path, module_cache: Path, access_log: io.StringIO
) -> None:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    settings = box_settings(tmp_path, tenants, module_cache)
    assert settings.server.access_log is True
    async with started(settings) as box:
        _, key = await box.store.create_api_key("ops", "r")
        app = create_app(box.settings, box.app_services())
        async with serving(box, app) as base, httpx.AsyncClient(timeout=30) as http:
            probes = len(access_lines(access_log))  # serving()'s own /healthz probes
            body = modern_request(1, "tools/call", {"name": "hello", "arguments": {}})
            reply = await http.post(
                f"{base}/t/ops/mcp?access_token=query-secret-1234",
                json=body,
                headers={**modern_headers(key, "tools/call", "hello"), REQUEST_ID_HEADER: "r-4"},
            )
            assert reply.status_code == 200, reply.text
            bearer = {"Authorization": f"Bearer {key}"}
            missing = await http.get(f"{base}/nowhere", headers=bearer)
            assert missing.status_code == 404

            lines = access_lines(access_log)[probes:]
            assert len(lines) == 2, lines
            call, nowhere = lines
            assert "request_id=r-4" in call
            assert 'msg="POST /t/ops/mcp 200 ' in call
            assert "client=127.0.0.1 tenant=ops" in call
            assert 'msg="GET /nowhere 404 ' in nowhere
            assert "tenant=-" in nowhere
            everything = access_log.getvalue()
            assert key not in everything
            assert "query-secret-1234" not in everything
            assert "access_token" not in everything

            # Off by setting, applied live by a reload.
            quiet = dataclasses.replace(
                settings, server=dataclasses.replace(settings.server, access_log=False)
            )
            result = await reload_box(box, lambda: quiet, app=app)
            assert "server.access_log" in result.applied
            assert (await http.get(f"{base}/healthz")).status_code == 200
            assert len(access_lines(access_log)) == probes + 2


async def test_counters_survive_a_reload_with_the_same_or_a_new_module(
    tmp_path: Path, ops_module: Path, module_cache: Path
) -> None:
    tenants = tmp_path / "tenants"
    add_ops_tenant(tenants, ops_module)
    settings = box_settings(tmp_path, tenants, module_cache)
    async with started(settings) as box:
        _, key = await box.store.create_api_key("ops", "r")
        async with serving(box) as base, httpx.AsyncClient(timeout=30) as http:
            url = f"{base}/t/ops/mcp"
            assert "result" in await modern_call_tool(http, url, key, "hello", {})
            assert "error" in await modern_call_tool(http, url, key, "trap", {})
            before = dataclasses.replace(box.tenants.require("ops").stats)
            assert before.calls == 2
            assert before.errors >= 1
            assert before.fuel_used > 0

            # Same module (SIGHUP's reload).
            await reload_box(box, lambda: settings)
            assert box.tenants.require("ops").stats == before

            # A new module for the same tenant: an extra custom section changes its hash.
            other = tmp_path / "other.wasm"
            shutil.copy(ops_module, other)
            with other.open("ab") as module:
                module.write(b"\x00\x05\x04test")
            add_ops_tenant(tenants, other)
            old_sha = box.tenants.require("ops").module.sha256
            await reload_box(box, lambda: settings)
            tenant = box.tenants.require("ops")
            assert tenant.module.sha256 != old_sha
            assert tenant.stats == before
            assert "result" in await modern_call_tool(http, url, key, "hello", {})
            assert box.tenants.require("ops").stats.calls == before.calls + 1


def test_uptime_is_short_and_readable() -> None:
    assert _uptime(5.4) == "0m05s"
    assert _uptime(3725) == "1h02m05s"
    assert _uptime(-1) == "0m00s"
