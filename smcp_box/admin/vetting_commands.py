"""The vetting subcommands: ``publisher keygen``, ``sign`` (offline, on files) and the admin-API
clients ``secret`` and ``catalog``.

``register(commands)`` adds them to ``smcp-box``'s subparsers; ``dispatch(args)`` runs an offline
one and returns its exit status, or None (the admin-API ones go through
:func:`smcp_box.admin.cli_commands.dispatch`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any, TextIO

from smcp_box.admin.cli_commands import add_admin_command, emit
from smcp_box.admin.client import AdminClient
from smcp_box.errors import BoxError
from smcp_box.seams import JsonObject
from smcp_box.tenancy.signing import sign_tenant
from smcp_box.vetting.signatures import PRIVATE_KEY_NAME, generate_keypair


def register(commands: Any) -> None:
    publisher = commands.add_parser("publisher", help="publisher signing keys")
    actions = publisher.add_subparsers(dest="publisher_command", required=True, metavar="ACTION")
    keygen = actions.add_parser(
        "keygen",
        help="make an Ed25519 publisher key pair; prints the public key for trusted_publishers",
        description=f"Writes OUT_DIR/{PRIVATE_KEY_NAME} (mode 0600; keep it offline) and "
        "OUT_DIR/publisher.pub, and prints the public key as ed25519:<base64>.",
    )
    keygen.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    keygen.set_defaults(vetting_command="keygen")

    sign = commands.add_parser(
        "sign",
        help="sign a tenant's module and tenant.toml with a publisher key",
        description="Writes <module>.sig beside the module: an Ed25519 signature over the "
        "module's sha256 and the tenant.toml's name, kind, tools_sha256, [limits] and auth.",
    )
    sign.add_argument("tenant_dir", type=Path, metavar="TENANT_DIR")
    sign.add_argument("--key", type=Path, required=True, metavar="PRIVATE_KEY")
    sign.set_defaults(vetting_command="sign")

    secret = commands.add_parser("secret", help="manage tenants' encrypted secrets")
    actions = secret.add_subparsers(dest="secret_command", required=True, metavar="ACTION")
    set_ = add_admin_command(
        actions,
        "set",
        _secret_set,
        "set a secret the tenant's module reads with config_get; the value is read from stdin "
        "(typed without echo at a terminal) and never printed",
    )
    set_.add_argument("tenant")
    set_.add_argument("name")
    add_admin_command(
        actions, "list", _secret_list, "secret names (never values) and tenants missing some"
    ).add_argument("tenant", nargs="?", default=None)
    delete = add_admin_command(actions, "delete", _secret_delete, "delete a secret")
    delete.add_argument("tenant")
    delete.add_argument("name")
    register_catalog(commands)


def catalog_text(body: JsonObject) -> str:
    """One block per tenant: what it is, who signed it, how it was vetted, its tools."""
    blocks = []
    for t in body["tenants"]:
        vetting = t["vetting"]
        state = "" if t.get("enabled", True) else " (DISABLED)"
        lines = [
            f"{t['name']}{state}: {t['description'] or '(no description)'}",
            f"  endpoint:  {t['url']}  auth: {', '.join(t['auth'])}  kind: {t['kind']}",
            f"  publisher: {t['publisher'] or 'none (unsigned)'}",
            f"  module:    sha256 {t['module_sha256']}",
            f"  vetting:   tools {vetting['status']}"
            + (f" ({vetting['tools_sha256']})" if vetting["tools_sha256"] else "")
            + f", {len(vetting['findings'])} finding(s)",
        ]
        lines += [
            f"    {f['severity'].upper()} {f['tool']} {f['field']} [{f['rule']}]: {f['excerpt']}"
            for f in vetting["findings"]
        ]
        if t.get("missing_secrets"):
            lines.append(f"  MISSING SECRETS: {', '.join(t['missing_secrets'])}")
        tools = t["tools"]
        if tools is None:
            lines.append("  tools: (the module could not list them now)")
        for tool in tools or ():
            hints = ", ".join(
                key for key, value in (tool.get("annotations") or {}).items() if value is True
            )
            title = f" ({tool['title']})" if tool.get("title") else ""
            lines.append(f"  - {tool['name']}{title}" + (f" [{hints}]" if hints else ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "no tenants are served"


async def _catalog(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.catalog()
    return emit(args, body, catalog_text(body))


def read_secret_value(stream: TextIO, *, prompt: str) -> str:
    """The secret: typed without echo at a terminal, else all of stdin less one final newline
    (``echo "$TOKEN" | smcp-box secret set …`` must not store the newline)."""
    if stream.isatty():
        return getpass.getpass(prompt)
    value = stream.read()
    return value[:-1] if value.endswith("\n") else value


async def _secret_set(client: AdminClient, args: argparse.Namespace) -> int:
    value = await asyncio.to_thread(
        read_secret_value, sys.stdin, prompt=f"value of {args.name} for {args.tenant}: "
    )
    if not value:
        raise BoxError("no value on stdin; nothing was set")
    body = await client.set_secret(args.tenant, args.name, value)
    note = f" ({body['note']})" if "note" in body else ""
    return emit(args, body, f"set secret {args.name} of {args.tenant}{note}")


async def _secret_list(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.secrets(args.tenant)
    lines = [f"{row['tenant']:<20} {row['name']}" for row in body["secrets"]]
    if not lines:
        lines.append("no secrets")
    for tenant, names in sorted(body["missing"].items()):
        lines.append(
            f"MISSING for {tenant}: {', '.join(names)} (smcp-box secret set {tenant} NAME)"
        )
    return emit(args, body, "\n".join(lines))


async def _secret_delete(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.delete_secret(args.tenant, args.name)
    return emit(args, body, f"deleted secret {args.name} of {args.tenant}")


def register_catalog(commands: Any) -> None:
    add_admin_command(
        commands,
        "catalog",
        _catalog,
        "every tenant the box serves: description, kind, publisher, module hash, vetting, tools "
        "with their annotations, endpoint and auth",
    )


def dispatch(args: argparse.Namespace) -> int | None:
    """Run an offline vetting command; None when ``args`` is not one."""
    command = getattr(args, "vetting_command", None)
    if command is None:
        return None
    try:
        if command == "keygen":
            public = generate_keypair(args.out_dir)
            print(
                f"wrote {args.out_dir / PRIVATE_KEY_NAME} (keep it secret and offline) and "
                f"{args.out_dir / 'publisher.pub'}; trust it on a box with\n"
                f'  [vetting] trusted_publishers = ["{public}"]',
                file=sys.stderr,
            )
            print(public)
            return 0
        if command == "sign":
            path, public = sign_tenant(args.tenant_dir, args.key)
            print(f"signed: {path} (publisher {public})")
            return 0
    except BoxError as exc:
        print(f"smcp-box: error: {exc.message}", file=sys.stderr)
        return 1
    raise AssertionError(command)  # pragma: no cover - argparse enforces the choices


__all__ = ["dispatch", "register"]
