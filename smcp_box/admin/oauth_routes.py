"""Admin routes for the authorization server: pre-registered OAuth clients, and listing or
revoking a user's refresh tokens (listings show the client, tenant, scopes and dates of each
live family, never a token or its hash).

Pre-registered clients come first in the MCP specification's order of registration methods: an
admin names the client and its redirect URIs, and the box gives it a client id. Every client is
public (PKCE, no secret). Removing a client revokes the refresh tokens issued to it and its
users' consents. Clients that registered themselves (DCR) are listed and removed the same way.
"""

from __future__ import annotations

import secrets

from quart import Blueprint, Response, request

from smcp_box.admin.context import AdminContext, body_object, json_response
from smcp_box.auth.clients import redirect_uri_problem
from smcp_box.errors import BadRequest, NotFound
from smcp_box.seams import JsonObject
from smcp_box.store.changes import (
    ADMIN_OAUTH_CLIENTS,
    CLIENT_PREFIX,
    TOPIC_ADMIN,
    TOPIC_CREDENTIAL,
    USER_PREFIX,
)
from smcp_box.store.oauth import ClientRecord, LiveFamily

_MAX_NAME = 200


def client_json(client: ClientRecord) -> JsonObject:
    return {
        "client_id": client.client_id,
        "kind": client.kind,
        "client_name": client.client_name,
        "redirect_uris": list(client.redirect_uris),
        "created_at": client.created_at,
    }


def family_json(family: LiveFamily, names: dict[str, str]) -> JsonObject:
    """``names`` maps the box's registered client ids to their names; a client known by its
    metadata document URL (CIMD) is not registered here, and its id is its URL."""
    return {
        "client_id": family.client_id,
        "client_name": names.get(family.client_id),
        "tenant": family.tenant,
        "scopes": family.scope.split(),
        "created_at": family.created_at,
        "expires_at": family.expires_at,
    }


def oauth_routes(ctx: AdminContext) -> Blueprint:
    bp = Blueprint("admin_oauth", __name__, url_prefix="/v1/oauth")
    box = ctx.box
    records = box.store.oauth

    @bp.get("/clients")
    async def list_clients() -> Response:
        return json_response({"clients": [client_json(c) for c in await records.list_clients()]})

    @bp.post("/clients")
    async def add_client() -> Response:
        body = await body_object()
        name, uris = body.get("client_name"), body.get("redirect_uris")
        ctx.begin("admin.oauth.client.add", None, client_name=name)
        if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
            raise BadRequest(f"'client_name' must be a name of 1 to {_MAX_NAME} characters")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            raise BadRequest("'redirect_uris' must be a list of one or more redirect URIs")
        for uri in uris:
            if (problem := redirect_uri_problem(uri)) is not None:
                raise BadRequest(problem)
        client = ClientRecord(
            client_id=f"pre_{secrets.token_urlsafe(16)}",
            kind="preregistered",
            client_name=name.strip(),
            redirect_uris=tuple(uris),
            created_at=box.clock(),
        )
        await records.add_client(client)
        await ctx.announce(TOPIC_ADMIN, ADMIN_OAUTH_CLIENTS)
        await ctx.audit(client_id=client.client_id)
        return json_response(client_json(client), 201)

    @bp.delete("/clients/<path:client_id>")
    async def remove_client(client_id: str) -> Response:
        ctx.begin("admin.oauth.client.remove", None, client_id=client_id)
        if not await records.remove_client(client_id):
            raise NotFound(f"no OAuth client {client_id!r} (list them: smcp-box oauth client list)")
        await ctx.announce(TOPIC_CREDENTIAL, CLIENT_PREFIX + client_id)
        await ctx.announce(TOPIC_ADMIN, ADMIN_OAUTH_CLIENTS)
        await ctx.audit()
        return json_response({"removed": client_id})

    @bp.get("/tokens/<username>")
    async def list_tokens(username: str) -> Response:
        names = {c.client_id: c.client_name for c in await records.list_clients()}
        families = await records.live_families(username)
        return json_response(
            {"username": username, "tokens": [family_json(f, names) for f in families]}
        )

    @bp.delete("/tokens/<username>")
    async def revoke_tokens(username: str) -> Response:
        tenant = request.args.get("tenant") or None
        ctx.begin("admin.oauth.tokens.revoke", tenant, username=username)
        revoked = await records.revoke_user_refresh(username, tenant)
        await ctx.announce(TOPIC_CREDENTIAL, USER_PREFIX + username)
        await ctx.audit(revoked=revoked)
        return json_response({"username": username, "tenant": tenant, "revoked": revoked})

    return bp
