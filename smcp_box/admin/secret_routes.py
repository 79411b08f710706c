"""Admin routes for vetting: tenant secrets (list names, set, delete) and the catalog.

Secret values go in, never out.

A value is only ever in a request body (never a URL, which access logs keep) and in the
store's sealed column; responses, audit rows and errors name the tenant and secret only.
"""

from __future__ import annotations

from quart import Blueprint, Response

from smcp_box.admin.context import AdminContext, body_object, json_response, query_str
from smcp_box.admin.urls import mcp_url
from smcp_box.errors import BadRequest, NotFound
from smcp_box.store.changes import ADMIN_SECRETS, TOPIC_ADMIN
from smcp_box.tenancy.catalog import catalog_entry
from smcp_box.tenancy.manifest import SECRET_NAME_PATTERN, TENANT_NAME_PATTERN

#: Largest secret value: a token or a key, not a file.
MAX_SECRET_BYTES = 64 * 1024


def secret_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_secrets", __name__, url_prefix="/v1/secrets")
    box = ctx.box
    store = box.store
    registry = box.tenants

    def check(tenant: str, name: str) -> None:
        if not TENANT_NAME_PATTERN.fullmatch(tenant):
            raise BadRequest(f"{tenant!r} is not a valid tenant name (a-z, 0-9 and '-')")
        if not SECRET_NAME_PATTERN.fullmatch(name):
            raise BadRequest(
                f"{name!r} is not a secret name: 1-128 characters of letters, digits, '_', "
                "'.' and '-', starting with a letter or '_'"
            )

    @bp.get("")
    async def list_secrets() -> Response:
        tenant = query_str("tenant")
        rows = await store.secret_names(tenant)
        missing = {
            runtime.name: runtime.missing_secrets()
            for runtime in registry.all()
            if (tenant is None or runtime.name == tenant) and runtime.missing_secrets()
        }
        return json_response(
            {
                "secrets": [{"tenant": t, "name": n, "updated_at": u} for t, n, u in rows],
                "missing": missing,
            }
        )

    @bp.put("/<tenant>/<name>")
    async def set_secret(tenant: str, name: str) -> Response:
        check(tenant, name)
        ctx.begin("admin.secret.set", tenant, name=name)
        body = await body_object()
        value = body.get("value")
        if not isinstance(value, str) or not value:
            raise BadRequest("send {'value': <the secret, a non-empty string>}")
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise BadRequest(f"a secret may be at most {MAX_SECRET_BYTES} bytes")
        await store.set_secret(tenant, name, value)
        registry.secrets.set(tenant, name, value)
        await ctx.announce(TOPIC_ADMIN, ADMIN_SECRETS)
        await ctx.audit()
        response = {"tenant": tenant, "name": name, "set": True}
        if registry.get(tenant) is None:
            response["note"] = f"no tenant named {tenant!r} is loaded; it will read it once it is"
        return json_response(response)

    @bp.delete("/<tenant>/<name>")
    async def delete_secret(tenant: str, name: str) -> Response:
        check(tenant, name)
        ctx.begin("admin.secret.delete", tenant, name=name)
        if not await store.delete_secret(tenant, name):
            raise NotFound(
                f"tenant {tenant!r} has no secret {name!r} (list them: smcp-box secret list)"
            )
        registry.secrets.delete(tenant, name)
        await ctx.announce(TOPIC_ADMIN, ADMIN_SECRETS)
        await ctx.audit()
        return json_response({"tenant": tenant, "name": name, "deleted": True})

    return bp


def catalog_routes(ctx: AdminContext) -> Blueprint:
    """``GET /v1/catalog``: every tenant served, disabled ones included, as ``/catalog`` shows
    them to a credential holder, plus what only an admin needs (enabled, missing secrets)."""
    bp = Blueprint("admin_catalog", __name__, url_prefix="/v1/catalog")
    box = ctx.box

    @bp.get("")
    async def catalog() -> Response:
        entries = []
        for tenant in box.tenants.all():
            entry = await catalog_entry(tenant, mcp_url(box.settings, tenant.name))
            entry["enabled"] = tenant.enabled
            entry["missing_secrets"] = tenant.missing_secrets()
            entries.append(entry)
        return json_response({"tenants": entries})

    return bp
