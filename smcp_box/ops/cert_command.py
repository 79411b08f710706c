"""``smcp-box cert``: make the local CA once, then a server certificate for the box's names.

Wired into the CLI with :func:`add_cert_parser` and :func:`run_cert`. The command never talks
to a running box: it writes files, and the admin restarts (or, when the key was kept, reloads)
the box.

Two layouts. For the systemd service (``--system``, or by default when root runs it on a
machine with the documented ``/etc/smcp-box/config.toml``) the CA and certificate go under
/etc/smcp-box and the key also becomes a systemd credential. Otherwise it is the quick start:
everything goes under the box's state folder, nothing outside it is touched, and the printed
settings are ones that work there.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
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
from smcp_box.tenancy.manifest import discover_manifests, load_manifest

#: Where systemd hands the tls-key credential to smcp-box.service.
SERVICE_TLS_KEY_PATH = "/run/credentials/smcp-box.service/tls-key"
#: The service's configuration, as the README's systemd install lays it out.
SYSTEM_CONFIG = Path("/etc/smcp-box/config.toml")
#: Tenants added through the admin API live in this folder under the state folder.
ADDED_TENANTS = "tenants"
SYSTEM_DIRS = (Path("/etc/smcp-box/ca"), Path("/etc/smcp-box/tls"))


def _system_mode(args: argparse.Namespace, system_config: Path) -> bool:
    if args.system:
        return True
    # Only an installed service makes /etc the default: a quick start run by root (a fresh VM,
    # a container) must not write into /etc and /etc/credstore without being asked.
    return os.geteuid() == 0 and system_config.is_file()


def add_cert_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``cert`` subcommand to ``parser.add_subparsers()``'s result."""
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
    cert.add_argument("names", nargs="*", metavar="NAME", help="e.g. box.lan 192.168.1.10")
    cert.add_argument(
        "--tenant-hosts",
        action="store_true",
        help=(
            "also certify every host name the tenants list in their tenant.toml `hosts` (the "
            "tenants folder's, and those added through the admin API)"
        ),
    )
    cert.add_argument(
        "--system",
        action="store_true",
        help=(
            f"set up the systemd service: CA and certificate under /etc/smcp-box, key also as "
            f"a credential (the default when root runs it and {SYSTEM_CONFIG} exists)"
        ),
    )
    cert.add_argument(
        "--ca-dir",
        type=Path,
        default=None,
        help="CA folder (default: <state folder>/ca, or /etc/smcp-box/ca for the service)",
    )
    cert.add_argument(
        "--out",
        type=Path,
        default=None,
        help="server.crt/server.key folder (default: <state folder>/tls, or /etc/smcp-box/tls)",
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
            f"(default: {CREDSTORE} for the service, else none)"
        ),
    )
    return cert


def run_cert(
    args: argparse.Namespace,
    *,
    state_dir: Path,
    out: TextIO | None = None,
    system_config: Path = SYSTEM_CONFIG,
    tenants_dir: Path | None = None,
) -> int:
    """``state_dir`` is the box's resolved state folder, the quick start's home for the files;
    ``tenants_dir`` the tenants folder ``--tenant-hosts`` reads."""
    stream = out if out is not None else sys.stdout
    names = list(args.names)
    notes: list[str] = []
    if getattr(args, "tenant_hosts", False):
        folders = [folder for folder in (tenants_dir, state_dir / ADDED_TENANTS) if folder]
        found, notes = tenant_hosts(folders)
        names += [host for host in found if host not in names]
        if not found:
            notes.append(f"no tenant lists hosts in {', '.join(map(str, folders))}")
    if not names:
        raise ConfigError(
            "name the box: smcp-box cert NAME... (host names or IP addresses clients use), "
            "or --tenant-hosts for the tenants' host names"
        )
    system = _system_mode(args, system_config)
    default_ca, default_out = SYSTEM_DIRS if system else (state_dir / "ca", state_dir / "tls")
    credstore = _credstore(args.credstore, system)
    ca = load_or_create_ca(args.ca_dir or default_ca)
    issued = issue_server_certificate(
        ca, args.out or default_out, names, days=args.days, reuse_key=args.keep_key
    )
    installed = install_credential(issued.key_path, credstore=credstore) if credstore else None

    certified = [*issued.dns_names, *(str(ip) for ip in issued.ip_addresses)]
    lines = [
        *notes,
        f"{'Created' if ca.created else 'Reused'} CA {ca.cert_path}",
        f"Server certificate {issued.cert_path} for {', '.join(certified)}",
        f"  valid until {issued.not_after:%Y-%m-%d}; key {issued.key_path}",
    ]
    if installed is not None:
        lines.append(f"  key installed as systemd credential {installed}")
    cert_path = issued.cert_path.resolve()
    key_setting = SERVICE_TLS_KEY_PATH if installed else str(issued.key_path.resolve())
    if system:
        lines += ["", f"In {system_config}:", "  [server]"]
        lines += [f'  tls_cert = "{cert_path}"', f'  tls_key = "{key_setting}"', ""]
        if args.keep_key:
            lines.append(
                "Then: systemctl reload smcp-box   (same key: new handshakes get the new cert)"
            )
        else:
            lines.append("Then: systemctl restart smcp-box  (a new key is read at service start)")
    else:
        lines += [
            "",
            "Serve HTTPS with it (stop a running box first; the names must resolve to it):",
            f"  SMCP_BOX_SERVER_TLS_CERT={cert_path} \\",
            f"  SMCP_BOX_SERVER_TLS_KEY={key_setting} smcp-box serve",
            "or put in your config.toml (smcp-box serve --config config.toml):",
            "  [server]",
            f'  tls_cert = "{cert_path}"',
            f'  tls_key = "{key_setting}"',
        ]
    if ca.created:
        lines += ["", "New CA: make each client trust it once.", ""]
        lines.append(trust_instructions(ca, host_hint=issued.dns_names[0]))
    else:
        lines.append(f"Clients that trust the CA ({ca.fingerprint_sha256}) need no change.")
    print("\n".join(lines).rstrip(), file=stream)
    return 0


def tenant_hosts(folders: Sequence[Path]) -> tuple[list[str], list[str]]:
    """Every tenant.toml ``hosts`` entry below ``folders``, in order and once each, and a note
    for each tenant.toml that could not be read (its names are then left out)."""
    hosts: list[str] = []
    notes: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in discover_manifests(folder):
            try:
                manifest = load_manifest(path)
            except ConfigError as exc:
                notes.append(f"Skipped (its hosts are not in the certificate): {exc.message}")
                continue
            hosts += [host for host in manifest.hosts if host not in hosts]
    return hosts, notes


def _credstore(value: str, system: bool) -> Path | None:
    if value == "none":
        return None
    if value == "auto":
        return CREDSTORE if system else None
    path = Path(value)
    if not path.is_absolute():
        raise ConfigError(f"--credstore {value!r}: give an absolute folder, 'auto' or 'none'")
    return path
