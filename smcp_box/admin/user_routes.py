"""Admin routes for local user accounts (the people who log in to the OAuth pages) and their
per-tenant grants.

Passwords arrive here in clear over the admin socket (which is itself the admin credential),
are hashed with argon2id in a worker thread (it is deliberately slow) and never leave this
module: not in answers, errors or audit rows. Answers never carry password hashes either.

Revoking a grant, or removing a user, also revokes the user's refresh tokens and consents on
that tenant (on every tenant for a removal): otherwise granting again later would revive
tokens issued before, without a new sign-in. Answers and audit rows say how many went.
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Blueprint, Response

from smcp_box.admin.context import AdminContext, body_object, json_response
from smcp_box.auth.passwords import hash_password
from smcp_box.auth.scopes import ALL_SCOPES, parse_scopes
from smcp_box.errors import BadRequest, NotFound
from smcp_box.seams import JsonObject
from smcp_box.store import UserRecord
from smcp_box.store.changes import ADMIN_USERS, TOPIC_ADMIN, TOPIC_CREDENTIAL, USER_PREFIX
from smcp_box.store.oauth import RevokedAccess
from smcp_box.store.users import username_problem

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024


def scopes_json(scopes: frozenset[str]) -> list[str]:
    """Scopes in the vocabulary's order (tools, resources, prompts), the order people read."""
    return [scope for scope in ALL_SCOPES if scope in scopes]


def user_json(user: UserRecord, grants: dict[str, frozenset[str]]) -> JsonObject:
    return {
        "username": user.username,
        "created_at": user.created_at,
        "disabled": user.disabled,
        "grants": {tenant: scopes_json(scopes) for tenant, scopes in grants.items()},
    }


def user_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_users", __name__, url_prefix="/v1/users")
    box = ctx.box
    store = box.store

    async def require_user(username: str) -> UserRecord:
        user = await store.get_user(username)
        if user is None:
            raise NotFound(f"no user named {username!r} (list them: smcp-box user list)")
        return user

    @bp.get("")
    async def list_users() -> Response:
        users = await store.list_users()
        return json_response(
            {"users": [user_json(u, await store.user_grants(u.username)) for u in users]}
        )

    @bp.post("")
    async def add_user() -> Response:
        body = await body_object()
        username = body.get("username")
        if not isinstance(username, str):
            raise BadRequest("send {'username': <name>, 'password': <password>}")
        ctx.begin("admin.user.add", None, username=username)
        if (problem := username_problem(username)) is not None:
            raise BadRequest(problem)
        password_hash = await _hashed(body.get("password"))
        user = await store.create_user(username, password_hash)
        await ctx.announce(TOPIC_ADMIN, ADMIN_USERS)
        await ctx.audit()
        return json_response(user_json(user, {}), 201)

    @bp.put("/<username>/password")
    async def set_password(username: str) -> Response:
        body = await body_object()
        ctx.begin("admin.user.passwd", None, username=username)
        await require_user(username)
        await store.set_password(username, await _hashed(body.get("password")))
        await ctx.announce(TOPIC_CREDENTIAL, USER_PREFIX + username)
        await ctx.audit()
        return json_response({"username": username, "password": "changed"})

    @bp.delete("/<username>")
    async def remove_user(username: str) -> Response:
        ctx.begin("admin.user.remove", None, username=username)
        await require_user(username)
        grants = await store.user_grants(username)
        await store.delete_user(username)
        revoked = await store.oauth.revoke_user_access(username)
        await ctx.announce(TOPIC_CREDENTIAL, USER_PREFIX + username)
        await ctx.announce(TOPIC_ADMIN, ADMIN_USERS)
        counts = _revoked_counts(revoked)
        await ctx.audit(grants_removed=sorted(grants), **counts)
        return json_response({"removed": username, "grants_removed": sorted(grants), **counts})

    @bp.put("/<username>/grants/<tenant>")
    async def grant(username: str, tenant: str) -> Response:
        ctx.begin("admin.user.grant", tenant, username=username)
        body = await body_object()
        scopes = _scopes(body.get("scopes"))
        await require_user(username)
        runtime = box.tenants.require(tenant)
        await store.set_user_grant(username, tenant, scopes)
        await ctx.announce(TOPIC_ADMIN, ADMIN_USERS)
        await ctx.audit(scopes=scopes_json(scopes))
        answer: JsonObject = {
            "username": username,
            "tenant": tenant,
            "scopes": scopes_json(scopes),
        }
        if runtime.auth_mode not in ("oauth", "both"):
            answer["note"] = (
                f"tenant {tenant!r} uses auth {runtime.auth_mode!r}: the grant takes effect when "
                "its tenant.toml says auth = 'oauth' or 'both'"
            )
        return json_response(answer)

    @bp.delete("/<username>/grants/<tenant>")
    async def revoke(username: str, tenant: str) -> Response:
        ctx.begin("admin.user.revoke", tenant, username=username)
        await require_user(username)
        if not await store.remove_user_grant(username, tenant):
            raise NotFound(f"user {username!r} has no grant on tenant {tenant!r}")
        counts = _revoked_counts(await store.oauth.revoke_user_access(username, tenant))
        await ctx.announce(TOPIC_CREDENTIAL, USER_PREFIX + username)
        await ctx.announce(TOPIC_ADMIN, ADMIN_USERS)
        await ctx.audit(**counts)
        return json_response({"username": username, "revoked": tenant, **counts})

    return bp


def _revoked_counts(revoked: RevokedAccess) -> JsonObject:
    return {"refresh_families_revoked": revoked.families, "consents_revoked": revoked.consents}


async def _hashed(password: Any) -> str:
    if not isinstance(password, str) or not (
        MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS
    ):
        raise BadRequest(
            f"'password' must be a string of {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} "
            "characters"
        )
    # argon2id takes tens of milliseconds of CPU by design: off the event loop.
    return await asyncio.to_thread(hash_password, password)


def _scopes(value: Any) -> frozenset[str]:
    """Absent or null: every scope. Otherwise a list (or space/comma-separated string) of
    known scope names, at least one."""
    if value is None:
        return frozenset(ALL_SCOPES)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(value)
    if not isinstance(value, str):
        raise BadRequest("'scopes' must be a list of scope names")
    try:
        scopes = parse_scopes(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if not scopes:
        raise BadRequest(f"give at least one scope ({', '.join(ALL_SCOPES)}), or none for all")
    return scopes
