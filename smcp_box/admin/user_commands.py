"""``smcp-box user add|list|passwd|remove|grant|revoke``: local user accounts and their grants,
through the admin API.

Passwords are read from the terminal without echo (asked twice), or, with ``--password-stdin``,
as the first line of standard input (for scripts); never from a flag, where they would sit in
the shell history and the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from typing import Any

from smcp_box.admin import cli_format as fmt
from smcp_box.admin.client import AdminClient
from smcp_box.auth.scopes import ALL_SCOPES, parse_scopes
from smcp_box.errors import BoxError

Leaf = Callable[..., argparse.ArgumentParser]
Emit = Callable[[argparse.Namespace, Any, str], int]


def register(commands: Any, leaf: Leaf, emit: Emit) -> None:
    """Add ``user`` and its actions; ``leaf`` and ``emit`` are cli_commands' own helpers."""

    async def add(client: AdminClient, args: argparse.Namespace) -> int:
        password = await _password(args, f"password for {args.username}")
        body = await client.add_user(args.username, password)
        return emit(
            args,
            body,
            f"added user {body['username']}; grant it tenants with: smcp-box user grant "
            f"{body['username']} TENANT",
        )

    async def listing(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.users()
        return emit(args, body, fmt.users_text(body))

    async def passwd(client: AdminClient, args: argparse.Namespace) -> int:
        password = await _password(args, f"new password for {args.username}")
        body = await client.set_user_password(args.username, password)
        return emit(args, body, f"changed the password of {args.username}")

    async def remove(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.remove_user(args.username)
        grants = ", ".join(body["grants_removed"]) or "none"
        return emit(
            args,
            body,
            f"removed user {args.username} (grants removed: {grants}; revoked "
            f"{fmt.revoked_access_text(body)})",
        )

    async def grant(client: AdminClient, args: argparse.Namespace) -> int:
        scopes = None
        if args.scopes is not None:
            try:
                scopes = sorted(parse_scopes(args.scopes))
            except ValueError as exc:
                raise BoxError(str(exc)) from None
        body = await client.grant_user(args.username, args.tenant, scopes)
        text = f"{args.username} may use {args.tenant} with {' '.join(body['scopes'])}"
        if body.get("note"):
            text += f"\nnote: {body['note']}"
        return emit(args, body, text)

    async def revoke(client: AdminClient, args: argparse.Namespace) -> int:
        body = await client.revoke_user_grant(args.username, args.tenant)
        return emit(
            args,
            body,
            f"revoked {args.username}'s grant on {args.tenant} and with it "
            f"{fmt.revoked_access_text(body)}",
        )

    user = commands.add_parser("user", help="manage the people who log in to OAuth tenants")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    for name, handler, what in (
        ("add", add, "add a user; asks for the password"),
        ("passwd", passwd, "change a user's password; asks for the new one"),
    ):
        parser = leaf(actions, name, handler, what)
        parser.add_argument("username")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )
    leaf(actions, "list", listing, "list users and their grants")
    leaf(actions, "remove", remove, "remove a user and its grants").add_argument("username")
    granting = leaf(actions, "grant", grant, "let a user use a tenant (replaces its scopes)")
    granting.add_argument("username")
    granting.add_argument("tenant")
    granting.add_argument(
        "--scopes",
        default=None,
        help=f"comma-separated, default all: {','.join(ALL_SCOPES)}",
    )
    revoking = leaf(actions, "revoke", revoke, "take a tenant away from a user")
    revoking.add_argument("username")
    revoking.add_argument("tenant")


async def _password(args: argparse.Namespace, prompt: str) -> str:
    if args.password_stdin:
        line: str = await asyncio.to_thread(sys.stdin.readline)
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise BoxError("no terminal to ask for the password on: pass --password-stdin")
    first = await asyncio.to_thread(getpass.getpass, f"{prompt}: ")
    second = await asyncio.to_thread(getpass.getpass, "again: ")
    if first != second:
        raise BoxError("the two passwords differ; nothing was changed")
    return first
