"""``smcp-box oauth client add|list|remove``, ``smcp-box oauth tokens`` and
``smcp-box oauth revoke-tokens``, through the admin API (see admin/oauth_routes.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from smcp_box.admin import cli_format as fmt
from smcp_box.admin.client import AdminClient

Leaf = Callable[..., argparse.ArgumentParser]
Emit = Callable[[argparse.Namespace, Any, str], int]


def register(commands: Any, leaf: Leaf, emit: Emit) -> None:
    """Add ``oauth`` and its actions; ``leaf`` and ``emit`` are cli_commands' own helpers."""

    async def add(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.add_oauth_client(args.name, args.redirect_uri)
        return emit(
            args,
            body,
            f"client id: {body['client_id']}\n"
            f"give it to {body['client_name']} with the box's URL; it signs in with PKCE and "
            "no secret",
        )

    async def listing(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.oauth_clients()
        return emit(args, body, fmt.oauth_clients_text(body))

    async def remove(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.remove_oauth_client(args.client_id)
        return emit(args, body, f"removed client {args.client_id} and revoked its tokens")

    async def tokens(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.user_tokens(args.username)
        return emit(args, body, fmt.oauth_tokens_text(body))

    async def revoke_tokens(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.revoke_user_tokens(args.username, args.tenant)
        where = f" on {args.tenant}" if args.tenant else ""
        return emit(
            args, body, f"revoked {body['revoked']} refresh token(s) of {args.username}{where}"
        )

    oauth = commands.add_parser("oauth", help="the OAuth authorization server: clients, tokens")
    actions = oauth.add_subparsers(dest="oauth_command", required=True, metavar="ACTION")
    clients = actions.add_parser("client", help="pre-registered (and self-registered) clients")
    client_actions = clients.add_subparsers(dest="client_command", required=True, metavar="ACTION")
    adding = leaf(client_actions, "add", add, "pre-register a client; prints its client id")
    adding.add_argument("name", help="the name the consent page shows")
    adding.add_argument(
        "--redirect-uri",
        action="append",
        required=True,
        help="a redirect URI (repeatable); loopback http URIs match on any port",
    )
    leaf(client_actions, "list", listing, "list the registered clients")
    leaf(client_actions, "remove", remove, "remove a client, revoking its tokens").add_argument(
        "client_id"
    )
    leaf(actions, "tokens", tokens, "list a user's live refresh tokens").add_argument("username")
    revoking = leaf(actions, "revoke-tokens", revoke_tokens, "revoke a user's refresh tokens")
    revoking.add_argument("username")
    revoking.add_argument("--tenant", default=None, help="only this tenant's (default: all)")
