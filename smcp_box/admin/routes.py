"""Admin routes for API keys, sessions and the audit log."""

from __future__ import annotations

import asyncio
import time

from quart import Blueprint, Response

from smcp_box.admin.client_config import Connection, client_config_json
from smcp_box.admin.context import (
    AdminContext,
    body_object,
    json_response,
    query_float,
    query_int,
    query_str,
)
from smcp_box.admin.urls import host_urls, mcp_url
from smcp_box.auth.apikeys import apikey_change
from smcp_box.errors import BadRequest, Conflict, NotFound
from smcp_box.seams import JsonObject, SessionRecord
from smcp_box.store import ApiKeyRecord, AuditRecord
from smcp_box.store.apikeys import key_id_from
from smcp_box.store.changes import TOPIC_CREDENTIAL
from smcp_box.store.tasks import TaskRecord

#: Longest a follow request is held open; clients simply ask again.
MAX_FOLLOW_WAIT_S = 60.0
FOLLOW_POLL_S = 0.25
#: When filtering by actor or outcome (which the store cannot), read at most this many pages.
MAX_FILTER_PAGES = 20
MAX_LABEL_CHARS = 200


def key_json(key: ApiKeyRecord) -> JsonObject:
    return {
        "key_id": key.key_id,
        "tenant": key.tenant,
        "label": key.label,
        "created_at": key.created_at,
        "last_used": key.last_used,
        "revoked": key.revoked,
    }


def session_json(session: SessionRecord) -> JsonObject:
    client = session.client_info if isinstance(session.client_info, dict) else {}
    return {
        "tenant": session.tenant,
        "session_id": session.session_id,
        "protocol_version": session.protocol_version,
        "client": {"name": client.get("name"), "version": client.get("version")},
        "created_at": session.created_at,
        "last_seen": session.last_seen,
        "ended": session.ended,
        # The box that owns it now (docs/scale-out.md, "Sessions that move").
        "owner_box": session.owner_box,
    }


#: How many characters of a task id the admin views show: enough to tell tasks apart, not
#: enough to use one (a task id is its owner's handle on the result).
TASK_ID_PREFIX = 8


def task_json(task: TaskRecord, now: float) -> JsonObject:
    """A task as admins see it: no params, inputs, results or errors, and only an id prefix."""
    return {
        "tenant": task.tenant,
        "task": task.task_id[:TASK_ID_PREFIX] + "…",
        "tool": task.tool,
        "status": task.status,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "age_s": max(0.0, round(now - task.created_at, 3)),
    }


def audit_json(row: AuditRecord) -> JsonObject:
    return {
        "id": row.id,
        "ts": row.ts,
        "event": row.event,
        "tenant": row.tenant,
        "actor": row.actor,
        "source_ip": row.source_ip,
        "outcome": row.outcome,
        "detail": row.detail,
        "kind": row.kind,
        # The box whose audit chain holds the row, and its place there (docs/scale-out.md).
        "box": row.box,
        "seq": row.seq,
    }


def keys_sessions_audit_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_keys_sessions_audit", __name__, url_prefix="/v1")
    box = ctx.box
    store = box.store

    # --- keys ----------------------------------------------------------------------------

    @bp.get("/keys")
    async def list_keys() -> Response:
        keys = await store.list_api_keys(query_str("tenant"))
        return json_response({"keys": [key_json(key) for key in keys]})

    @bp.post("/keys")
    async def create_key() -> Response:
        body = await body_object()
        tenant = body.get("tenant")
        label = body.get("label", "")
        if not isinstance(tenant, str) or not tenant:
            raise BadRequest("send {'tenant': <name>, 'label': <optional note>}")
        if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS:
            raise BadRequest(f"'label' must be a string of at most {MAX_LABEL_CHARS} characters")
        runtime = box.tenants.require(tenant)
        ctx.begin("admin.key.create", tenant, label=label)
        key_id, secret = await store.create_api_key(tenant, label)
        # The audit row names the key by its id; the secret is returned once and never stored.
        await ctx.audit(key_id=key_id)
        url = mcp_url(box.settings, tenant)
        header = f"Authorization: Bearer {secret}"
        client_config = client_config_json(
            Connection(name=tenant, url=url, auth=runtime.auth_mode, key=secret)
        )
        response: JsonObject = {
            "key": secret,
            "key_id": key_id,
            "tenant": tenant,
            "label": label,
            "url": url,
            "host_urls": host_urls(box.settings, runtime.manifest.hosts),
            "header": header,
            "client_config": client_config,
        }
        if runtime.auth_mode == "none":
            response["note"] = f"tenant {tenant!r} is public (auth = 'none'); it ignores keys"
        elif runtime.auth_mode == "oauth":
            response["note"] = (
                f"tenant {tenant!r} takes OAuth access tokens only (auth = 'oauth'); it refuses "
                "API keys until its tenant.toml says auth = 'both'"
            )
        return json_response(response, 201)

    @bp.delete("/keys/<key_id>")
    async def revoke_key(key_id: str) -> Response:
        if key_id_from(key_id) != key_id:
            # Not echoed nor audited as given: a mistyped secret must not land in the log.
            ctx.begin("admin.key.revoke", None)
            raise BadRequest("not a key id: key ids are 16 hex digits (smcp-box key list)")
        ctx.begin("admin.key.revoke", None, key_id=key_id)
        known = {key.key_id: key for key in await store.list_api_keys()}
        key = known.get(key_id)
        if key is None:
            raise NotFound(f"no API key with id {key_id!r} (list them: smcp-box key list)")
        if key.revoked:
            raise Conflict(f"API key {key_id} is already revoked")
        await store.revoke_api_key(key_id)
        # Every box's authenticator caches verified keys: each drops this one when it hears
        # this (this box before the call returns), so the key stops working everywhere now.
        await box.changes.publish(TOPIC_CREDENTIAL, apikey_change(key_id))
        await ctx.audit(tenant=key.tenant)
        return json_response({"revoked": key_id, "tenant": key.tenant})

    # --- sessions ------------------------------------------------------------------------

    @bp.get("/sessions")
    async def list_sessions() -> Response:
        tenant = query_str("tenant")
        if tenant is not None and box.tenants.get(tenant) is None:
            raise NotFound(f"no tenant named {tenant!r} is loaded")
        include_ended = query_str("ended") in ("1", "true")
        sessions = await store.list_sessions(tenant)
        rows = [session_json(s) for s in sessions if include_ended or not s.ended]
        return json_response({"sessions": rows})

    @bp.delete("/sessions/<tenant>/<session_id>")
    async def end_session(tenant: str, session_id: str) -> Response:
        ctx.begin("admin.session.end", tenant, session=session_id[:8] + "…")
        if not await store.end_session(tenant, session_id):
            raise NotFound(f"no open session {session_id[:8]}… of tenant {tenant!r}")
        await ctx.audit()
        return json_response({"ended": session_id, "tenant": tenant})

    # --- tasks (docs/tasks.md) -------------------------------------------------------------

    @bp.get("/tasks")
    async def list_tasks() -> Response:
        tenant = query_str("tenant")
        if tenant is not None and box.tenants.get(tenant) is None:
            raise NotFound(f"no tenant named {tenant!r} is loaded")
        limit = query_int("limit", 200, low=1, high=1000) or 200
        try:
            page = await store.tasks.list(tenant, None, cursor=query_str("cursor"), limit=limit)
        except ValueError:
            raise BadRequest("cursor is not one a previous page returned") from None
        now = box.clock()
        body: JsonObject = {"tasks": [task_json(t, now) for t in page.tasks]}
        if page.next_cursor is not None:
            body["next_cursor"] = page.next_cursor
        return json_response(body)

    # --- audit ---------------------------------------------------------------------------

    @bp.get("/audit")
    async def audit_page() -> Response:
        after_id = query_int("after_id", None, low=0, high=2**62)
        before_id = query_int("before_id", None, low=1, high=2**62)
        limit = query_int("limit", 100, low=1, high=1000) or 100
        rows = await _filtered_page(ctx, after_id=after_id, before_id=before_id, limit=limit)
        body: JsonObject = {"entries": [audit_json(row) for row in rows]}
        if after_id is None and rows and len(rows) == limit:
            # Newest first: page back by passing the smallest id as before_id.
            body["next_before_id"] = rows[-1].id
        return json_response(body)

    @bp.get("/audit/follow")
    async def audit_follow() -> Response:
        after_id = query_int("after_id", 0, low=0, high=2**62) or 0
        wait = query_float("wait", 25.0, low=0.0, high=MAX_FOLLOW_WAIT_S)
        deadline = time.monotonic() + wait
        while True:
            rows = await _filtered_page(ctx, after_id=after_id, before_id=None, limit=200)
            if rows or time.monotonic() >= deadline:
                return json_response({"entries": [audit_json(row) for row in rows]})
            await asyncio.sleep(FOLLOW_POLL_S)

    return bp


async def _filtered_page(
    ctx: AdminContext, *, after_id: int | None, before_id: int | None, limit: int
) -> list[AuditRecord]:
    """One page, filtered by tenant and event in SQL and by actor and outcome here."""
    tenant, event = query_str("tenant"), query_str("event")
    actor, outcome = query_str("actor"), query_str("outcome")
    found: list[AuditRecord] = []
    cursor_after, cursor_before = after_id, before_id
    for _ in range(MAX_FILTER_PAGES):
        rows = await ctx.box.store.audit_page(
            tenant=tenant, event=event, since_id=cursor_after, before_id=cursor_before, limit=limit
        )
        found.extend(row for row in rows if _matches(row, actor, outcome))
        if len(rows) < limit or len(found) >= limit or (actor is None and outcome is None):
            break
        if cursor_after is not None:
            cursor_after = rows[-1].id
        else:
            cursor_before = rows[-1].id
    return found[:limit]


def _matches(row: AuditRecord, actor: str | None, outcome: str | None) -> bool:
    if outcome is not None and row.outcome != outcome:
        return False
    return actor is None or actor in row.actor
