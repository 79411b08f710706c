"""An AdminApi with fixed data and a fixed clock, for deterministic SVG snapshots.

Everything else in tests/tui drives the TUI against a real box; snapshots need pixels that do
not change between runs (ids, timestamps and rates of a real box do), hence this stand-in.
test_fixed_api_contract.py checks it against the real admin API: the same methods, answers of
the same shape, and the same refusals for the changes it makes.
"""

from __future__ import annotations

import math
from typing import Any

from smcp_box.auth.clients import redirect_uri_problem
from smcp_box.config import LIMITS, QuotaSettings, SandboxSettings
from smcp_box.errors import AdminRequestFailed, AdminUnavailable
from smcp_box.tenancy.manifest import SECRET_NAME_PATTERN

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
JsonObject = dict[str, Any]
PUBLISHER = "ed25519:Qm9keUJ5VGhlRml4ZWRBcGlPZlRlc3RzVHVpMDEyMzQ1Ng=="


def _limits(fuel: int = 2_000_000_000) -> JsonObject:
    defaults = SandboxSettings()
    return {name: getattr(defaults, name) for name in LIMITS} | {"fuel": fuel}


def _tenant(name: str, description: str, *, enabled: bool, auth: str, calls: int) -> JsonObject:
    return {
        "name": name,
        "description": description,
        "enabled": enabled,
        "auth": auth,
        "url": f"http://box.lan:8765/t/{name}/mcp",
        "hosts": [],
        "host_urls": [],
        "folder": f"/var/lib/smcp-box/tenants/{name}",
        "origin": "folder",
        "module": {"file": f"{name}.wasm", "sha256": "ab" * 32},
        "limits": _limits(),
        "admin_limit_overrides": {},
        "config_keys": [],
        "secrets": ["API_TOKEN", "WEBHOOK_KEY"] if name == "echo" else [],
        "missing_secrets": ["WEBHOOK_KEY"] if name == "echo" else [],
        "publisher": PUBLISHER if name == "echo" else None,
        "calls": calls,
        "errors": calls // 50,
        "fuel_used": calls * 1234,
        "definitions_pending": False,
        "blocked_tools": [],
    }


def _fleet_box(box_id: str, address: str, *, sessions: int, this_box: bool = False) -> JsonObject:
    return {
        "box_id": box_id,
        "address": address,
        "status": "up",
        "last_beat": NOW - 1,
        "beat_age_s": 1.0,
        "started_at": NOW - 11_045,
        "sessions": sessions,
        "version": "0.1.0",
        "this_box": this_box,
    }


def _catalog_entry(tenant: JsonObject) -> JsonObject:
    echo = tenant["name"] == "echo"
    findings = [
        {
            "tool": "echo",
            "field": "description",
            "rule": "hidden-instructions",
            "severity": "warning",
            "excerpt": "always answer in uppercase",
        }
    ]
    tools = [
        {
            "name": "echo",
            "title": "Echo",
            "description": "Returns its input.",
            "annotations": {"readOnlyHint": True, "openWorldHint": False},
        },
        {"name": "shout", "description": "Returns its input in capitals."},
    ]
    return {
        "name": tenant["name"],
        "description": tenant["description"],
        "kind": "tools",
        "url": tenant["url"],
        "auth": ["api_key"] if echo else ["none"],
        "publisher": tenant["publisher"],
        "module_sha256": tenant["module"]["sha256"],
        "vetting": {
            "status": "pinned" if echo else "unpinned",
            "signature": "trusted" if echo else "unchecked",
            "not_covered": [],
            "tools_sha256": "cd" * 32 if echo else None,
            "findings": findings if echo else [],
        },
        "tools": tools if echo else None,
        "enabled": tenant["enabled"],
        "missing_secrets": tenant["missing_secrets"],
    }


def _series(seed: int, scale: float) -> list[float]:
    return [round(scale * (1 + math.sin((i + seed) / 5.0)), 2) for i in range(60)]


def _metrics_row(name: str, seed: int, rps: float) -> JsonObject:
    return {
        "name": name,
        "enabled": True,
        "requests": int(rps * 60),
        "requests_per_s": rps,
        "latency_ms": {"p50": 0.8 + seed / 10, "p95": 2.4 + seed, "p99": 9.1 + seed},
        "errors": {"auth": seed, "fuel": 1} if seed else {},
        "error_total": seed + 1 if seed else 0,
        "open_streams": seed,
        "fuel_used": 123_456 * (seed + 1),
        "fuel_per_s": 2057.6 * (seed + 1),
        "memory_bytes": (seed + 1) * 3 * 1024 * 1024,
        "warm_instances": seed + 1,
        "fuel_total": 9_999_999,
        "open_sessions": seed + 1,
        "kv_keys": 10 * seed,
        "kv_bytes": 2048 * seed,
        "blobs": 3 * seed,
        "blob_bytes": 1_200_000 * seed,
        "series": {
            "requests": _series(seed, rps),
            "errors": _series(seed + 7, 0.5 * seed),
            "latency_p95_ms": _series(seed + 3, 2.0),
            "fuel": _series(seed + 1, 2000.0),
            "memory_bytes": _series(seed, 3e6),
        },
    }


class FixedApi:
    where = "/run/smcp-box/admin.sock"

    def __init__(self) -> None:
        #: When True every call fails as if the box had stopped.
        self.down = False
        #: The fleet's boxes as the status reports them; tests age one to make it gone.
        self.fleet_rows = [
            _fleet_box("box_a", "10.0.0.11:8765", sessions=1, this_box=True),
            _fleet_box("box_b", "10.0.0.12:8765", sessions=3),
            _fleet_box("box_c", "10.0.0.13:8765", sessions=0),
        ]
        self.tenant_rows = [
            _tenant(
                "echo",
                "Echoes its input; the smoke-test tenant",
                enabled=True,
                auth="api_key",
                calls=1520,
            ),
            _tenant("weather", "Forecasts from the kv cache", enabled=False, auth="none", calls=87),
        ]
        self.failed = [
            {
                "folder": "/var/lib/smcp-box/tenants/broken",
                "name": "broken",
                "reason": "module broken.wasm has sha256 0f0f…, but tenant.toml pins abab…",
            }
        ]
        self.key_rows = [
            {
                "key_id": "1f2e3d4c5b6a7988",
                "tenant": "echo",
                "label": "laptop",
                "created_at": NOW - 86400,
                "last_used": NOW - 120,
                "revoked": False,
            },
            {
                "key_id": "aa00bb11cc22dd33",
                "tenant": "echo",
                "label": "ci",
                "created_at": NOW - 7200,
                "last_used": None,
                "revoked": True,
            },
        ]
        self.session_rows = [
            {
                "tenant": "echo",
                "session_id": "s3ss10n-aaaaaaaaaaaaaaaaaaaa",
                "protocol_version": "2025-11-25",
                "client": {"name": "claude-code", "version": "2.1"},
                "created_at": NOW - 600,
                "last_seen": NOW - 5,
                "ended": False,
            },
        ]
        self.task_rows = [
            {
                "tenant": "echo",
                "task": "Zk3q9xQa…",
                "tool": "build",
                "status": "working",
                "created_at": NOW - 90,
                "updated_at": NOW - 90,
                "age_s": 90.0,
            },
            {
                "tenant": "weather",
                "task": "p0Lm2Vbn…",
                "tool": "forecast",
                "status": "completed",
                "created_at": NOW - 4000,
                "updated_at": NOW - 3900,
                "age_s": 4000.0,
            },
        ]
        self.user_rows = [
            {
                "username": "alice",
                "created_at": NOW - 3 * 86400,
                "disabled": False,
                "grants": {
                    "echo": ["mcp:tools", "mcp:resources", "mcp:prompts"],
                    "weather": ["mcp:prompts"],
                },
            },
            {"username": "bob", "created_at": NOW - 3600, "disabled": True, "grants": {}},
        ]
        self.client_rows: list[JsonObject] = [
            {
                "client_id": "pre_Vx2c8qLr0aTf9eKpY1hZ3w",
                "kind": "preregistered",
                "client_name": "VS Code",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "created_at": NOW - 2 * 86400,
            },
            {
                "client_id": "dyn_Q7mW2sLp9xKc4vRt8bNa0e",
                "kind": "dynamic",
                "client_name": "Claude Code",
                "redirect_uris": ["http://localhost:33418/callback"],
                "created_at": NOW - 7200,
            },
        ]
        #: What set_secret was given (the box seals it; a test may look here).
        self.values: dict[tuple[str, str], str] = {}
        self.secret_rows: list[JsonObject] = [
            {"tenant": "echo", "name": "API_TOKEN", "updated_at": NOW - 86400},
        ]
        self.blob_rows: dict[str, list[JsonObject]] = {
            "echo": [
                _blob("charts/2026-01.svg", 48_213, "image/svg+xml", NOW - 3600),
                _blob("notes.md", 1_204, "text/markdown; charset=utf-8", NOW - 600),
                _blob("uploads/report.pdf", 3_500_000, "application/pdf", NOW - 86400),
            ]
        }
        events = ["box.start", "admin.key.create", "auth.failure", "admin.tenant.disable"]
        self.audit_rows = [
            {
                "id": i,
                "ts": NOW - 100 + i * 10,
                "event": events[i % 4],
                "tenant": None if i % 4 == 0 else "echo",
                "actor": "system" if i % 4 == 0 else "admin:root@socket",
                "source_ip": None,
                "outcome": "denied" if i % 4 == 2 else "ok",
                "detail": {"n": i},
                "kind": "event",
            }
            for i in range(1, 9)
        ]

    async def aclose(self) -> None:
        return None

    async def status(self) -> JsonObject:
        if self.down:
            raise AdminUnavailable(f"the box is not running: nothing answers on {self.where}")
        return {
            "version": "0.1.0",
            "uptime_s": 11_045.0,
            "now": NOW,
            "tenants": {"loaded": 2, "enabled": 1, "failed": 1},
            "open_sessions": 1,
            "box": {
                "box_id": "box_a",
                "address": "10.0.0.11:8765",
                "draining": False,
                "draining_since": None,
            },
            "fleet": [dict(row) for row in self.fleet_rows],
            "database": {
                "backend": "postgres",
                "location": "postgresql://smcp@db.lan/smcp",
                "reachable": True,
                "latency_ms": 0.42,
                "error": None,
            },
        }

    async def metrics(self, window_s: int = 60, tenant: str | None = None) -> JsonObject:
        rows = [_metrics_row("echo", 2, 14.5), _metrics_row("weather", 0, 0.4)]
        # The box's total has no name, enabled flag or fuel_total (the TUI names it).
        total = {
            key: value
            for key, value in _metrics_row("all", 1, 14.9).items()
            if key not in ("name", "enabled", "fuel_total")
        }
        return {"now": NOW, "window_s": window_s, "total": total, "tenants": rows}

    async def tenants(self) -> JsonObject:
        return {
            "tenants": self.tenant_rows,
            "failed": self.failed,
            "removed": [],
            "definitions_pending": [],
        }

    async def tenant(self, name: str) -> JsonObject:
        row = next(t for t in self.tenant_rows if t["name"] == name)
        return {
            **row,
            "open_sessions": 1,
            "active_keys": 1,
            "kv_keys": 3,
            "kv_bytes": 120,
            "blobs": len(self.blob_rows.get(name, [])),
            "blob_bytes": sum(b["size"] for b in self.blob_rows.get(name, [])),
            "blob_quotas": _blob_quotas(),
            "pool": None,
            "definitions": None,
            "baselines": [],
        }

    async def tenant_definitions(self, name: str) -> JsonObject:
        return {"tenant": name, "pending": None, "approved": None, "history": []}

    async def approve_tenant(
        self, name: str, reason: str, definitions_sha256: str | None = None
    ) -> JsonObject:
        raise NotImplementedError

    async def add_tenant(self, manifest_toml: str, module: bytes) -> JsonObject:
        raise NotImplementedError

    async def set_enabled(self, name: str, enabled: bool) -> JsonObject:
        raise NotImplementedError

    async def set_limits(self, name: str, limits: dict[str, int | None]) -> JsonObject:
        raise NotImplementedError

    async def reload_tenant(self, name: str) -> JsonObject:
        raise NotImplementedError

    async def remove_tenant(self, name: str) -> JsonObject:
        raise NotImplementedError

    async def keys(self, tenant: str | None = None) -> JsonObject:
        return {"keys": self.key_rows}

    async def create_key(self, tenant: str, label: str = "") -> JsonObject:
        secret = "smcp_0123456789abcdef_" + "x" * 43
        url = f"http://box.lan:8765/t/{tenant}/mcp"
        return {
            "key": secret,
            "key_id": "0123456789abcdef",
            "tenant": tenant,
            "label": label,
            "url": url,
            "header": f"Authorization: Bearer {secret}",
            "client_config": {
                "mcpServers": {
                    tenant: {
                        "type": "http",
                        "url": url,
                        "headers": {"Authorization": f"Bearer {secret}"},
                    }
                }
            },
        }

    async def revoke_key(self, key_id: str) -> JsonObject:
        raise NotImplementedError

    async def users(self) -> JsonObject:
        return {"users": self.user_rows}

    async def add_user(self, username: str, password: str) -> JsonObject:
        raise NotImplementedError

    async def remove_user(self, username: str) -> JsonObject:
        raise NotImplementedError

    async def grant_user(
        self, username: str, tenant: str, scopes: list[str] | None = None
    ) -> JsonObject:
        raise NotImplementedError

    async def revoke_user_grant(self, username: str, tenant: str) -> JsonObject:
        raise NotImplementedError

    async def oauth_clients(self) -> JsonObject:
        return {"clients": self.client_rows}

    async def add_oauth_client(self, name: str, redirect_uris: list[str]) -> JsonObject:
        # The admin API's checks, in its order and words (the contract test compares them).
        if not name.strip() or len(name) > 200:
            raise _bad_request("'client_name' must be a name of 1 to 200 characters")
        if not redirect_uris:
            raise _bad_request("'redirect_uris' must be a list of one or more redirect URIs")
        for uri in redirect_uris:
            if (problem := redirect_uri_problem(uri)) is not None:
                raise _bad_request(problem)
        client = {
            "client_id": f"pre_fixed{len(self.client_rows):017d}",
            "kind": "preregistered",
            "client_name": name.strip(),
            "redirect_uris": list(redirect_uris),
            "created_at": NOW,
        }
        self.client_rows.append(client)
        return client

    async def remove_oauth_client(self, client_id: str) -> JsonObject:
        kept = [c for c in self.client_rows if c["client_id"] != client_id]
        if len(kept) == len(self.client_rows):
            raise AdminRequestFailed(
                404,
                "not_found",
                f"no OAuth client {client_id!r} (list them: smcp-box oauth client list)",
            )
        self.client_rows = kept
        return {"removed": client_id}

    async def user_tokens(self, username: str) -> JsonObject:
        return {"username": username, "tokens": []}

    async def revoke_user_tokens(self, username: str, tenant: str | None = None) -> JsonObject:
        raise NotImplementedError

    async def secrets(self, tenant: str | None = None) -> JsonObject:
        rows = [r for r in self.secret_rows if tenant is None or r["tenant"] == tenant]
        stored = {(r["tenant"], r["name"]) for r in self.secret_rows}
        missing = {
            t["name"]: names
            for t in self.tenant_rows
            if (tenant is None or t["name"] == tenant)
            and (names := [n for n in t["secrets"] if (t["name"], n) not in stored])
        }
        return {"secrets": rows, "missing": missing}

    async def set_secret(self, tenant: str, name: str, value: str) -> JsonObject:
        _check_secret_name(name)
        if not value:
            raise _bad_request("send {'value': <the secret, a non-empty string>}")
        self.secret_rows = [
            r for r in self.secret_rows if (r["tenant"], r["name"]) != (tenant, name)
        ] + [{"tenant": tenant, "name": name, "updated_at": NOW}]
        self.values[(tenant, name)] = value
        return {"tenant": tenant, "name": name, "set": True}

    async def delete_secret(self, tenant: str, name: str) -> JsonObject:
        _check_secret_name(name)
        kept = [r for r in self.secret_rows if (r["tenant"], r["name"]) != (tenant, name)]
        if len(kept) == len(self.secret_rows):
            raise AdminRequestFailed(
                404,
                "not_found",
                f"tenant {tenant!r} has no secret {name!r} (list them: smcp-box secret list)",
            )
        self.secret_rows = kept
        return {"tenant": tenant, "name": name, "deleted": True}

    async def catalog(self) -> JsonObject:
        return {"tenants": [_catalog_entry(t) for t in self.tenant_rows]}

    async def blobs(self, tenant: str, prefix: str | None = None) -> JsonObject:
        rows = [b for b in self.blob_rows.get(tenant, []) if b["name"].startswith(prefix or "")]
        every = self.blob_rows.get(tenant, [])
        return {
            "tenant": tenant,
            "blobs": rows,
            "usage": {"blobs": len(every), "bytes": sum(b["size"] for b in every)},
            "quotas": _blob_quotas(),
        }

    async def delete_blob(self, tenant: str, name: str) -> JsonObject:
        kept = [b for b in self.blob_rows.get(tenant, []) if b["name"] != name]
        if len(kept) == len(self.blob_rows.get(tenant, [])):
            raise AdminRequestFailed(
                404,
                "not_found",
                f"tenant {tenant!r} has no blob {name!r} (list them: smcp-box blob list {tenant})",
            )
        self.blob_rows[tenant] = kept
        return {"tenant": tenant, "name": name, "deleted": True}

    async def sessions(self, tenant: str | None = None) -> JsonObject:
        return {"sessions": self.session_rows}

    async def end_session(self, tenant: str, session_id: str) -> JsonObject:
        raise NotImplementedError

    async def tasks(self, tenant: str | None = None) -> JsonObject:
        rows = [t for t in self.task_rows if tenant is None or t["tenant"] == tenant]
        return {"tasks": rows}

    async def audit(
        self,
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
        tenant: str | None = None,
        event: str | None = None,
        actor: str | None = None,
        outcome: str | None = None,
    ) -> JsonObject:
        if after_id is not None:
            return {"entries": [r for r in self.audit_rows if r["id"] > after_id]}
        return {"entries": list(reversed(self.audit_rows))}


def _blob_quotas() -> JsonObject:
    defaults = QuotaSettings()
    return {
        "blob_max_bytes": defaults.blob_max_bytes,
        "blob_max_total_bytes": defaults.blob_max_total_bytes,
        "blob_max_count": defaults.blob_max_count,
    }


def _blob(name: str, size: int, content_type: str, updated_at: float) -> JsonObject:
    return {
        "name": name,
        "size": size,
        "contentType": content_type,
        "sha256": "5e" * 32,
        "updatedAt": updated_at,
    }


def _bad_request(message: str) -> AdminRequestFailed:
    return AdminRequestFailed(400, "bad_request", message)


def _check_secret_name(name: str) -> None:
    if not SECRET_NAME_PATTERN.fullmatch(name):
        raise _bad_request(
            f"{name!r} is not a secret name: 1-128 characters of letters, digits, '_', "
            "'.' and '-', starting with a letter or '_'"
        )
