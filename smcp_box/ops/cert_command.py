"""``smcp-box cert``: make the local CA once, then a server certificate for the box's names.

Wired into the CLI with :func:`add_cert_parser` and :func:`run_cert`. The command needs no
settings and never talks to a running box: it writes files, and the admin restarts (or, when
the key was kept, reloads) the service.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from smcp_box.errors import ConfigError
from smcp_box.ops.certs import (
    CREDSTORE,
    MAX_SERVER_VALIDITY_DAYS,
    TLS_KEY_CREDENTIAL,
    install_credential,
    issue_server_certificate,
    load_or_create_ca,
    trust_instructions,
)

#: Where systemd hands the tls-key credential to smcp-box.service.
SERVICE_TLS_KEY_PATH = "/run/credentials/smcp-box.service/tls-key"


def _default_dirs() -> tuple[Path, Path]:
    # Root sets up the appliance (beside /etc/smcp-box/config.toml); anyone else is trying the
    # box from a checkout, where the settings' fallbacks live under ./.smcp-box as well.
    if os.geteuid() == 0:
        return Path("/etc/smcp-box/ca"), Path("/etc/smcp-box/tls")
    return Path(".smcp-box/ca"), Path(".smcp-box/tls")


def add_cert_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``cert`` subcommand to ``parser.add_subparsers()``'s result."""
    ca_dir, out_dir = _default_dirs()
    cert = commands.add_parser(
        "cert",
        help="make a local CA (once) and a TLS certificate for the box",
        description=(
            "Create a local certificate authority unless one exists in --ca-dir, then issue a "
            "server certificate for NAMEs (host names and IP addresses that clients use to reach "
            "the box; localhost, 127.0.0.1 and ::1 are always included). Clients trust the CA "
            "once; later certificates need nothing more on the clients."
        ),
    )
    cert.add_argument("names", nargs="+", metavar="NAME", help="e.g. box.lan 192.168.1.10")
    cert.add_argument("--ca-dir", type=Path, default=ca_dir, help=f"CA folder (default {ca_dir})")
    cert.add_argument(
        "--out",
        type=Path,
        default=out_dir,
        help=f"server.crt/server.key folder (default {out_dir})",
    )
    cert.add_argument(
        "--days",
        type=int,
        default=MAX_SERVER_VALIDITY_DAYS,
        help=f"validity of the server certificate (1-{MAX_SERVER_VALIDITY_DAYS}, the default)",
    )
    cert.add_argument(
        "--keep-key",
        action="store_true",
        help="renew with the existing server.key, so `systemctl reload` suffices",
    )
    cert.add_argument(
        "--credstore",
        default="auto",
        metavar="DIR|none",
        help=(
            f"also copy server.key to DIR/{TLS_KEY_CREDENTIAL} for the systemd unit "
            f"(default: {CREDSTORE} when run as root, else none)"
        ),
    )
    return cert


def run_cert(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    credstore = _credstore(args.credstore)
    ca = load_or_create_ca(args.ca_dir)
    issued = issue_server_certificate(
        ca, args.out, args.names, days=args.days, reuse_key=args.keep_key
    )
    installed = install_credential(issued.key_path, credstore=credstore) if credstore else None

    names = [*issued.dns_names, *(str(ip) for ip in issued.ip_addresses)]
    lines = [
        f"{'Created' if ca.created else 'Reused'} CA {ca.cert_path}",
        f"Server certificate {issued.cert_path} for {', '.join(names)}",
        f"  valid until {issued.not_after:%Y-%m-%d}; key {issued.key_path}",
    ]
    if installed is not None:
        lines.append(f"  key installed as systemd credential {installed}")
    lines += ["", "In config.toml (/etc/smcp-box/config.toml under systemd):", "  [server]"]
    lines.append(f'  tls_cert = "{issued.cert_path.resolve()}"')
    key_setting = SERVICE_TLS_KEY_PATH if installed else str(issued.key_path.resolve())
    lines.append(f'  tls_key = "{key_setting}"')
    lines.append("")
    if args.keep_key:
        lines.append(
            "Then: systemctl reload smcp-box   (same key: new handshakes get the new cert)"
        )
    else:
        lines.append("Then: systemctl restart smcp-box  (a new key is read at service start)")
    if ca.created:
        lines += ["", "New CA: make each client trust it once.", ""]
        lines.append(trust_instructions(ca, host_hint=issued.dns_names[0]))
    else:
        lines.append(f"Clients that trust the CA ({ca.fingerprint_sha256}) need no change.")
    print("\n".join(lines).rstrip(), file=stream)
    return 0


def _credstore(value: str) -> Path | None:
    if value == "none":
        return None
    if value == "auto":
        return CREDSTORE if os.geteuid() == 0 else None
    path = Path(value)
    if not path.is_absolute():
        raise ConfigError(f"--credstore {value!r}: give an absolute folder, 'auto' or 'none'")
    return path
