"""Admin routes for tenants: list, show, add, enable/disable, limits, reload, remove."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from quart import Blueprint, Response

from smcp_box.admin import tenant_admin
from smcp_box.admin.approval_routes import baselines_json, definitions_json
from smcp_box.admin.blob_routes import blob_quotas_json
from smcp_box.admin.context import AdminContext, body_object, json_response
from smcp_box.admin.urls import host_urls, mcp_url
from smcp_box.auth.apikeys import apikey_change
from smcp_box.config import LIMITS, check_limit
from smcp_box.errors import BadRequest, ConfigError
from smcp_box.sandbox import Limits
from smcp_box.seams import JsonObject
from smcp_box.store.changes import TOPIC_CREDENTIAL, TOPIC_TENANT
from smcp_box.tenancy.manifest import TENANT_NAME_PATTERN, resolve_limits
from smcp_box.tenancy.runtime import WasmTenant

#: Limit names an admin may override: the tenant.toml ``[limits]`` keys.
LIMIT_KEYS = tuple(LIMITS)


def limits_json(limits: Limits) -> JsonObject:
    return {name: getattr(limits, name) for name in LIMIT_KEYS}


def tenant_json(ctx: AdminContext, tenant: WasmTenant) -> JsonObject:
    manifest = tenant.manifest
    folder = manifest.manifest_path.parent if manifest.manifest_path else None
    overrides = ctx.box.tenants.state_of(tenant.name)
    effective = resolve_limits(ctx.box.settings.sandbox, manifest.limit_overrides)
    return {
        "name": tenant.name,
        "description": manifest.description,
        "enabled": tenant.enabled,
        "auth": manifest.auth,
        "url": mcp_url(ctx.box.settings, tenant.name),
        # The same endpoint at each of the tenant's own host names (tenant.toml ``hosts``).
        "hosts": list(manifest.hosts),
        "host_urls": host_urls(ctx.box.settings, manifest.hosts),
        "folder": str(folder) if folder is not None else None,
        # "folder": from the tenants folder; "admin": added through the admin API.
        "origin": overrides.origin if overrides is not None else "folder",
        "module": {"file": manifest.module_path.name, "sha256": manifest.sha256},
        "limits": limits_json(effective),
        "admin_limit_overrides": dict(overrides.limits) if overrides else {},
        # Names only: config values may be secrets.
        "config_keys": sorted(manifest.config),
        # tenant.toml ``secrets``, and those without a value on this box (smcp-box secret set).
        "secrets": list(manifest.secrets),
        "missing_secrets": tenant.missing_secrets(),
        "publisher": tenant.signature.publisher if tenant.signature is not None else None,
        "calls": tenant.stats.calls,
        "errors": tenant.stats.errors,
        "fuel_used": tenant.stats.fuel_used,
        # Its module's tool definitions changed: the approved ones are served until approval.
        "definitions_pending": tenant.definitions_pending is not None,
        "blocked_tools": [t for n, t in ctx.box.tenants.baselines.blocked() if n == tenant.name],
    }


def tenant_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_tenants", __name__, url_prefix="/v1/tenants")
    box = ctx.box
    registry = box.tenants

    def check_name(name: str) -> None:
        if not TENANT_NAME_PATTERN.fullmatch(name):
            raise BadRequest(f"{name!r} is not a valid tenant name (a-z, 0-9 and '-')")

    @bp.get("")
    async def list_tenants() -> Response:
        failed = [
            {"folder": folder, "name": Path(folder).name, "reason": reason}
            for folder, reason in sorted(registry.last_report.failed.items())
        ]
        tenants = [tenant_json(ctx, tenant) for tenant in registry.all()]
        # Folder tenants an admin removed: their files are still there; reload serves them.
        removed = registry.removed_names()
        # Every tenant with changed definitions awaiting approval, served or refused for them.
        pending = sorted(registry.approvals.pending_all())
        return json_response(
            {
                "tenants": tenants,
                "failed": failed,
                "removed": removed,
                "definitions_pending": pending,
            }
        )

    @bp.get("/<name>")
    async def show_tenant(name: str) -> Response:
        tenant = registry.require(name)
        body = tenant_json(ctx, tenant)
        keys = await box.store.list_api_keys(name)
        kv_keys, kv_bytes = await box.store.kv_usage(name)
        blob_usage = await box.store.blobs.usage(name)
        body.update(
            open_sessions=await box.store.count_open_sessions(name),
            active_keys=sum(1 for key in keys if not key.revoked),
            kv_keys=kv_keys,
            kv_bytes=kv_bytes,
            blobs=blob_usage.blobs,
            blob_bytes=blob_usage.bytes,
            blob_quotas=blob_quotas_json(box, name),
            pool=_pool_json(ctx, name),
            definitions=definitions_json(ctx, name),
            baselines=baselines_json(ctx, name)["tools"],
        )
        return json_response(body)

    @bp.post("")
    async def add_tenant() -> Response:
        body = await body_object()
        manifest_text = body.get("manifest")
        module_b64 = body.get("module")
        if not isinstance(manifest_text, str) or not isinstance(module_b64, str):
            raise BadRequest("send {'manifest': <tenant.toml text>, 'module': <base64 wasm>}")
        try:
            module = base64.b64decode(module_b64, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("'module' is not valid base64") from None
        source = body.get("source")
        if source is not None and not isinstance(source, str):
            raise BadRequest("'source' is the tenant's folder as the admin named it: a string")
        ctx.begin("admin.tenant.add", None, module_bytes=len(module))
        added = await tenant_admin.add(box, manifest_text, module, source=source)
        tenant = added.tenant
        await ctx.announce(TOPIC_TENANT, tenant.name)
        await ctx.audit(tenant=tenant.name, sha256=tenant.manifest.sha256, origin=added.origin)
        return json_response(tenant_json(ctx, tenant), 201)

    @bp.post("/rescan")
    async def rescan() -> Response:
        ctx.begin("admin.tenant.rescan", None)
        report = await tenant_admin.rescan(box)
        await ctx.audit(loaded=report.loaded, failed=sorted(report.failed))
        failed = [
            {"folder": folder, "name": Path(folder).name, "reason": reason}
            for folder, reason in sorted(report.failed.items())
        ]
        return json_response(
            {
                "loaded": report.loaded,
                "failed": failed,
                "tenants_dir": str(box.settings.tenants_path()),
                "serving": registry.names(),
            }
        )

    async def set_enabled(name: str, enabled: bool) -> Response:
        ctx.begin("admin.tenant.enable" if enabled else "admin.tenant.disable", name)
        tenant = await tenant_admin.set_enabled(box, name, enabled)
        await ctx.announce(TOPIC_TENANT, name)
        await ctx.audit()
        return json_response(tenant_json(ctx, tenant))

    @bp.post("/<name>/enable")
    async def enable(name: str) -> Response:
        return await set_enabled(name, True)

    @bp.post("/<name>/disable")
    async def disable(name: str) -> Response:
        return await set_enabled(name, False)

    @bp.patch("/<name>/limits")
    async def set_limits(name: str) -> Response:
        changes = _limit_changes(await body_object())
        ctx.begin("admin.tenant.limits", name, changes=changes)
        registry.require(name)
        tenant = await tenant_admin.set_limits(box, name, changes)
        await ctx.announce(TOPIC_TENANT, name)
        await ctx.audit()
        return json_response(tenant_json(ctx, tenant))

    @bp.post("/<name>/reload")
    async def reload(name: str) -> Response:
        ctx.begin("admin.tenant.reload", name)
        check_name(name)
        reloaded = await tenant_admin.reload(box, name)
        tenant = reloaded.tenant
        await ctx.announce(TOPIC_TENANT, name)
        if reloaded.restored:
            await ctx.audit(sha256=tenant.manifest.sha256, restored=True)
        else:
            await ctx.audit(sha256=tenant.manifest.sha256)
        return json_response(tenant_json(ctx, tenant))

    @bp.delete("/<name>")
    async def remove(name: str) -> Response:
        ctx.begin("admin.tenant.remove", name)
        check_name(name)
        removed = await tenant_admin.remove(box, name)
        box.metrics.forget(name)
        summary = await _purge_data(ctx, name)
        await ctx.announce(TOPIC_TENANT, name)
        where: dict[str, Any] = {
            "origin": removed.origin,
            "folder": str(removed.folder),
            "files_deleted": removed.files_deleted,
        }
        await ctx.audit(**where, **summary)
        return json_response({"removed": name, **where, **summary})

    return bp


def _pool_json(ctx: AdminContext, name: str) -> JsonObject | None:
    try:
        pool = ctx.box.sandbox.stats(name)
    except KeyError:
        return None
    return {
        "warm_instances": pool.warm_instances,
        "live_instances": pool.live_instances,
        "busy_calls": pool.busy_calls,
        "memory_bytes": pool.memory_bytes,
        "errors_by_kind": dict(pool.errors_by_kind),
        "rejected_busy": pool.rejected_busy,
    }


def _limit_changes(body: JsonObject) -> dict[str, int | None]:
    if not body:
        raise BadRequest(f"name at least one limit to change ({', '.join(LIMIT_KEYS)})")
    changes: dict[str, int | None] = {}
    for key, value in body.items():
        if value is None:
            if key not in LIMIT_KEYS:
                raise BadRequest(f"unknown limit {key!r} (known: {', '.join(LIMIT_KEYS)})")
            changes[key] = None
            continue
        try:
            changes[key] = check_limit(key, value)
        except ConfigError as exc:
            # The same text as tenant.toml and the box defaults give, naming where it came from.
            raise BadRequest(f"admin change: {exc.message}") from None
    return changes


async def _purge_data(ctx: AdminContext, name: str) -> dict[str, Any]:
    store = ctx.box.store
    kv_deleted = await store.kv_clear(name)
    revoked = 0
    for key in await store.list_api_keys(name):
        if not key.revoked and await store.revoke_api_key(key.key_id):
            await ctx.box.changes.publish(TOPIC_CREDENTIAL, apikey_change(key.key_id))
            revoked += 1
    ended = 0
    for session in await store.list_sessions(name):
        if not session.ended and await store.end_session(name, session.session_id):
            ended += 1
    # A tenant of the same name added later must not inherit the old one's users.
    grants = await store.remove_tenant_grants(name)
    # A tenant added again later under the same name must not inherit the old one's secrets.
    secrets_deleted = await store.delete_tenant_secrets(name)
    blobs_deleted = await store.blobs.clear(name)
    ctx.box.tenants.secrets.drop_tenant(name)
    # Nor its approved tool definitions or behaviour baselines (the audit log keeps the history).
    approvals_deleted = await store.delete_tenant_approvals(name)
    await store.delete_baselines(name)
    ctx.box.tenants.baselines.drop_tenant(name)
    ctx.box.tenants.approvals.drop_tenant(name)
    # Its tasks, results included: a tenant added again must not serve the old one's.
    runner = ctx.box.task_runner
    tasks_deleted = 0 if runner is None else await runner.drop_tenant(name)
    return {
        "kv_keys_deleted": kv_deleted,
        "keys_revoked": revoked,
        "sessions_ended": ended,
        "grants_removed": grants,
        "secrets_deleted": secrets_deleted,
        "approvals_deleted": approvals_deleted,
        "blobs_deleted": blobs_deleted,
        "tasks_deleted": tasks_deleted,
    }
