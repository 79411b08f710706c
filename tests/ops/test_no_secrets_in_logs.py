"""No secrets in logs: a real box at debug level, driven with keys, sessions, a failed login and
key management, and then its whole stderr searched for every secret it saw."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.clients import legacy_headers, legacy_session, modern_call_tool
from tests.ops.support import ops_box

pytestmark = pytest.mark.slow


async def test_debug_logs_hold_no_keys_or_session_ids(
    workdir: Path, ops_module: Path, module_cache: Path
) -> None:
    proc = ops_box(
        workdir,
        ops_module,
        module_cache,
        examples=("notes",),
        extra_env={"SMCP_BOX_LOG_LEVEL": "debug"},
    )
    proc.start()
    secrets: list[str] = []
    try:
        keys = {name: proc.create_key(name) for name in ("ops", "notes")}
        secrets += keys.values()
        # A key made through the CLI and then revoked; its use afterwards fails.
        created = json.loads(proc.cli("key", "create", "ops", "--json").stdout)
        revoked = created["key"]
        secrets.append(revoked)
        assert revoked not in proc.cli("key", "list", "--json").stdout
        proc.cli("key", "revoke", created["key_id"])
        # Well-formed but unknown keys, as a guessing client sends.
        forged = "smcp_" + hashlib.sha256(b"guess").hexdigest()
        plain = "plain-bearer-token-that-is-not-a-key"
        secrets += [forged, plain]

        async with httpx.AsyncClient(timeout=30) as http:
            notes = proc.url("notes")
            sessions = [await legacy_session(http, notes, keys["notes"]) for _ in range(2)]
            secrets += sessions
            for i, session in enumerate(sessions):
                reply = await http.post(
                    notes,
                    json={
                        "jsonrpc": "2.0",
                        "id": 10 + i,
                        "method": "tools/call",
                        "params": {
                            "name": "note_create",
                            "arguments": {"title": "pw", "body": f"my password is {plain}"},
                        },
                    },
                    headers=legacy_headers(keys["notes"], session),
                )
                assert reply.status_code == 200, reply.text
            for key in (keys["ops"], revoked, forged, plain):
                await modern_call_tool(http, proc.url("ops"), key, "hello", {})
            wrong_tenant = await modern_call_tool(http, notes, keys["ops"], "note_list", {})
            assert "error" in wrong_tenant
            await modern_call_tool(http, proc.url("ops"), keys["ops"], "trap", {})
            # A session id offered to another tenant, and an ended session.
            await http.post(
                proc.url("ops"),
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers=legacy_headers(keys["ops"], sessions[0]),
            )
            await http.delete(notes, headers=legacy_headers(keys["notes"], sessions[1]))
            await http.post(
                notes,
                json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
                headers=legacy_headers(keys["notes"], sessions[1]),
            )
        assert proc.stop() == 0
    finally:
        proc.stop()
    log = proc.log()
    # The run really logged at debug level, per request, with request ids.
    assert "level=debug" in log
    assert re.search(r"level=debug logger=smcp_box\.web request_id=\w+ msg=\"POST /t/", log)
    for secret in secrets:
        assert secret not in log, f"a secret appears in the log: {secret[:12]}…"
        # Nor any long piece of one (a truncated key is still a lead for a guesser).
        for start in range(0, len(secret) - 16, 8):
            assert secret[start : start + 16] not in log
    # The audit log is not a log file, but it must not hold them either.
    audit = proc.cli("audit", "export").stdout
    assert audit.count("\n") > 10
    for secret in secrets:
        if secret != plain:  # kept by the tenant in its kv (encrypted), never audited
            assert secret not in audit
    assert plain not in audit
