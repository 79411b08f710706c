"""``smcp-box lb-config``: the command line around ops/lbconfig.py's HAProxy configuration.

Where the boxes come from: ``--box ID=HOST:PORT`` (repeatable), or else the fleet's heartbeat
rows in the shared database (:func:`heartbeat_pairs`: every box that is up or draining, at the
``host:port`` it advertises). Both become (id, address) pairs checked by
:func:`~smcp_box.ops.lbconfig.boxes_from_pairs`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from smcp_box.config import Settings
from smcp_box.errors import ConfigError
from smcp_box.ops.lbconfig import (
    LbOptions,
    RateLimits,
    boxes_from_pairs,
    check_tls_cert,
    load_tenant_map,
    parse_box_flag,
    render,
    split_address,
)
from smcp_box.ops.offline import existing_data_key
from smcp_box.store.store import open_configured


def add_lb_config_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``lb-config`` to ``smcp-box``'s subcommands."""
    parser = commands.add_parser(
        "lb-config",
        help="print an HAProxy configuration for a fleet of boxes",
        description=(
            "Print a complete HAProxy 2.6 configuration for boxes sharing one PostgreSQL: "
            "health checks on /readyz, routing by session-id prefix, retries on another box, "
            "rate limits keyed on a SHA-256 of the credential, TLS termination. Check it with "
            "haproxy -c -f FILE. See docs/scale-out.md."
        ),
    )
    parser.add_argument("--listen", required=True, metavar="ADDR:PORT", help="e.g. 0.0.0.0:443")
    parser.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="ID=HOST:PORT",
        help="a box: its [cluster] box_id and the address it serves on (repeat for each box; "
        "default: every box up in the database's heartbeats)",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        metavar="PEM",
        help="terminate TLS with this PEM (certificate chain, then key); offers h2 and http/1.1",
    )
    parser.add_argument(
        "--rate-per-key",
        type=int,
        default=0,
        metavar="N",
        help="requests per window allowed per credential (Authorization header); 0: no limit",
    )
    parser.add_argument(
        "--rate-per-ip",
        type=int,
        default=0,
        metavar="N",
        help="requests per window allowed per client address; 0: no limit",
    )
    parser.add_argument(
        "--rate-window", type=int, default=1, metavar="SECONDS", help="the rate window (1)"
    )
    parser.add_argument(
        "--tenant-map",
        type=Path,
        default=None,
        metavar="FILE",
        help='TOML of tenant = ["box1", ...]: /t/<tenant>/ goes only to those boxes',
    )
    parser.add_argument(
        "--stats-socket",
        type=Path,
        default=None,
        metavar="PATH",
        help="HAProxy's runtime API socket (show stat, disable server)",
    )
    parser.add_argument(
        "--run-as",
        default=None,
        metavar="USER[:GROUP]",
        help="the user (and group) HAProxy's workers run as, e.g. haproxy:haproxy",
    )
    return parser


def options_from_args(args: argparse.Namespace, box_ids: Sequence[str]) -> LbOptions:
    host, port = split_address(args.listen, "--listen")
    for flag, value in (("--rate-per-key", args.rate_per_key), ("--rate-per-ip", args.rate_per_ip)):
        if value < 0:
            raise ConfigError(f"{flag} must be 0 (no limit) or a number of requests")
    if not 1 <= args.rate_window <= 86_400:
        raise ConfigError("--rate-window must be 1-86400 seconds")
    return LbOptions(
        listen_host=host,
        listen_port=port,
        tls_cert=check_tls_cert(args.tls_cert) if args.tls_cert is not None else None,
        rates=RateLimits(args.rate_per_key, args.rate_per_ip, args.rate_window),
        tenant_map=load_tenant_map(args.tenant_map, box_ids) if args.tenant_map else {},
        stats_socket=args.stats_socket,
        run_as=_run_as(args.run_as) if args.run_as else None,
    )


def _run_as(text: str) -> tuple[str, str]:
    user, _, group = text.partition(":")
    name = r"[a-z_][a-z0-9_-]{0,31}"
    if not re.fullmatch(name, user) or not re.fullmatch(name, group or user):
        raise ConfigError(f"--run-as {text!r}: give USER or USER:GROUP, e.g. haproxy:haproxy")
    return user, group or user


async def heartbeat_pairs(settings: Settings, notes: TextIO) -> list[tuple[str, str]]:
    """(box id, ``host:port``) of every box the shared database's heartbeats show up or
    draining; each box left out (gone) is named on ``notes``."""
    if settings.store.backend != "postgres":
        raise ConfigError(
            "name the boxes: --box ID=HOST:PORT for each; without --box lb-config reads the "
            'fleet\'s heartbeats, which needs [store] backend = "postgres" (the database the '
            "boxes share)"
        )
    store = await open_configured(settings, existing_data_key(settings))
    try:
        # The heartbeat area (store/fleet.py) comes with box identity; a store without it
        # has no heartbeats to read.
        fleet = getattr(store, "fleet", None)
        if fleet is None:
            raise ConfigError("this smcp-box keeps no heartbeats: name the boxes with --box")
        records = await fleet.boxes(dead_after_s=settings.cluster.dead_after_s)
    finally:
        await store.close()
    pairs: list[tuple[str, str]] = []
    for record in records:
        if record.status == "gone":
            print(
                f"lb-config: left out {record.box_id} at {record.address}: gone (last "
                f"heartbeat {record.beat_age_s:.0f} s ago)",
                file=notes,
            )
        else:
            pairs.append((str(record.box_id), str(record.address)))
    if not pairs:
        raise ConfigError(
            "no box is up in the database's heartbeats: start the boxes first, or name them "
            "with --box ID=HOST:PORT"
        )
    return pairs


def run_lb_config(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    """Print the configuration for the ``--box`` boxes, or else those the heartbeats show
    alive; a ConfigError says what to fix."""
    if args.box:
        pairs = [parse_box_flag(flag) for flag in args.box]
    else:
        pairs = asyncio.run(heartbeat_pairs(settings, sys.stderr))
    boxes = boxes_from_pairs(pairs)
    options = options_from_args(args, [box.box_id for box in boxes])
    print(render(boxes, options), end="", file=out if out is not None else sys.stdout)
    return 0
