"""The vetting subcommands: ``publisher keygen``, ``sign`` (offline, on files) and the admin-API
clients ``secret`` and ``catalog``.

``register(commands)`` adds them to ``smcp-box``'s subparsers; ``dispatch(args)`` runs an offline
one and returns its exit status, or None (the admin-API ones go through
:func:`smcp_box.admin.cli_commands.dispatch`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from smcp_box.errors import BoxError
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
