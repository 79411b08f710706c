"""The maintenance subcommands: ``backup``, ``restore``, ``doctor``, ``audit export|verify``,
``store migrate``.

``register(commands)`` adds them to ``smcp-box``'s subparsers; ``dispatch(args, settings)`` runs
one and returns its exit status, or None when ``args`` is not one of them. They work on the
box's files directly, beside a running box or with it stopped, never through the admin API.

``audit`` may already exist (the admin API's ``audit list|follow``): then ``export`` and
``verify`` join it. Register these after the admin commands and dispatch them first, because
the admin dispatcher claims every ``audit`` command line.

Exit status: 0 done / all OK; 1 a check failed or the command refused (the message says why);
2 (from ``main``) a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from smcp_box.config import Settings
from smcp_box.errors import BoxError

EXIT_OK = 0
EXIT_FAILED = 1


def _common(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default: $SMCP_BOX_CONFIG or $CONFIGURATION_DIRECTORY/config.toml)",
    )
    parser.add_argument("--tenants-dir", default=None, help="folder of tenant folders")
    parser.set_defaults(ops_command=name)
    return parser


def _audit_actions(commands: Any) -> Any:
    """The ``audit`` command's subparsers, made if no other package made ``audit`` first."""
    existing = commands.choices.get("audit")
    if existing is None:
        audit = commands.add_parser("audit", help="the audit log")
        return audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    # argparse offers no public way to extend another module's subcommand.
    for action in existing._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError("the existing 'audit' command has no actions")  # pragma: no cover


def register(commands: Any) -> None:
    """Add the maintenance commands to ``smcp-box``'s ``add_subparsers()`` object."""
    backup = _common(
        commands.add_parser(
            "backup",
            help="write a consistent copy of the database (safe while the box runs)",
            description="Copy the database with SQLite's online backup and check the copy. "
            "The copy is encrypted like the database: keep the data key too, elsewhere.",
        ),
        "backup",
    )
    backup.add_argument("path", type=Path, help="backup file, or a folder for a dated file")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    backup.add_argument("--json", action="store_true")

    restore = _common(
        commands.add_parser(
            "restore",
            help="replace the database with a backup (the box must be stopped)",
            description="Check the backup (sound, this data key, audit chain), keep the current "
            "database as <name>.<time>.bak, and put the backup in its place.",
        ),
        "restore",
    )
    restore.add_argument("path", type=Path, help="a file written by smcp-box backup")
    restore.add_argument(
        "--force", action="store_true", help="restore even if the backup's audit chain is broken"
    )
    restore.add_argument("--json", action="store_true")

    doctor = _common(
        commands.add_parser(
            "doctor",
            help="check config, permissions, key, database, audit chain, cache and tenants",
        ),
        "doctor",
    )
    doctor.add_argument("--json", action="store_true")

    store = commands.add_parser("store", help="the box's database")
    store_actions = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    migrate = _common(
        store_actions.add_parser(
            "migrate",
            help="copy this box's SQLite database into an empty PostgreSQL database "
            "(the box must be stopped)",
            description="Copy every table (sealed values as they are, the audit chains "
            "whole) into the empty PostgreSQL database DSN, then check the row counts, the "
            "data key and every audit chain there. The password, if any, is the credentials "
            "folder's store-password. The SQLite file is left unchanged.",
        ),
        "store-migrate",
    )
    migrate.add_argument(
        "--to", required=True, metavar="DSN", help="postgresql://user@host/database"
    )

    actions = _audit_actions(commands)
    export = _common(
        actions.add_parser(
            "export",
            help="write the audit log as JSON lines: every box's chain, merged oldest first",
        ),
        "audit-export",
    )
    export.add_argument(
        "--output", "-o", type=Path, default=None, help="file to write (default: stdout)"
    )
    export.add_argument("--since-id", type=int, default=0, help="only rows after this id")
    export.add_argument("--tenant", default=None)
    export.add_argument("--event", default=None, help="exact event name, e.g. tool.call")
    verify = _common(
        actions.add_parser(
            "verify",
            help="check every box's hash chain; list every edited, inserted or deleted row",
        ),
        "audit-verify",
    )
    verify.add_argument("--json", action="store_true")


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    command = getattr(args, "ops_command", None)
    if command is None:
        return None
    try:
        return asyncio.run(_run(command, args, settings))
    except BoxError as exc:
        print(f"smcp-box: error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED


async def _run(command: str, args: argparse.Namespace, settings: Settings) -> int:
    if command == "backup":
        return await _backup(args, settings)
    if command == "restore":
        return await _restore(args, settings)
    if command == "store-migrate":
        from smcp_box.ops.store_migrate import run_store_migrate

        result = await run_store_migrate(
            settings, args.to, lambda line: print(line, file=sys.stderr, flush=True)
        )
        print("\n".join(result.summary()))
        return EXIT_OK if result.ok else EXIT_FAILED
    if command == "doctor":
        return await _doctor(args, settings)
    if command == "audit-export":
        from smcp_box.ops.audit_cli import run_export

        count = await run_export(
            settings, args.output, since_id=args.since_id, tenant=args.tenant, event=args.event
        )
        if args.output is not None and str(args.output) != "-":
            print(f"wrote {count} audit row(s) to {args.output}", file=sys.stderr)
        return EXIT_OK
    if command == "audit-verify":
        from smcp_box.ops.audit_cli import run_verify

        report = await run_verify(settings)
        print(json.dumps(report.as_json(), indent=2) if args.json else report.text())
        return EXIT_OK if report.ok else EXIT_FAILED
    raise AssertionError(command)  # pragma: no cover - register() sets the names


async def _backup(args: argparse.Namespace, settings: Settings) -> int:
    from smcp_box.ops.backup import run_backup

    info = await run_backup(settings, args.path, force=args.force)
    body = {
        "path": str(info.path),
        "bytes": info.size_bytes,
        "schema_version": info.schema_version,
        "audit_ok": info.audit.ok,
        "audit_rows": info.audit.rows_checked,
    }
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(
            f"backup written to {info.path} ({info.size_bytes} bytes, audit chain "
            f"{'intact' if info.audit.ok else 'BROKEN: ' + info.audit.message})."
        )
        print(
            "It is encrypted with the box's data key: keep a copy of the key apart from it "
            "(without the key the backup cannot be read).",
            file=sys.stderr,
        )
    return EXIT_OK if info.audit.ok else EXIT_FAILED


async def _restore(args: argparse.Namespace, settings: Settings) -> int:
    from smcp_box.ops.backup import run_restore

    result = await run_restore(settings, args.path, force=args.force)
    body = {
        "restored": str(result.info.path),
        "database": str(result.database),
        "previous": str(result.previous) if result.previous else None,
        "audit_ok": result.info.audit.ok,
    }
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(f"restored {result.info.path} to {result.database}.")
        if result.previous is not None:
            print(f"the database it replaced is kept as {result.previous}.")
    return EXIT_OK


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from smcp_box.ops.doctor import run_doctor

    report = await run_doctor(settings, _config_source(args))
    if args.json:
        checks = [vars(check) for check in report.checks]
        print(json.dumps({"ok": not report.failed, "checks": checks}, indent=2))
    else:
        print(report.text())
    return EXIT_FAILED if report.failed else EXIT_OK


def _config_source(args: argparse.Namespace) -> str:
    # The same order as the CLI's own settings lookup.
    if args.config is not None:
        return str(args.config)
    if os.environ.get("SMCP_BOX_CONFIG"):
        return os.environ["SMCP_BOX_CONFIG"]
    folder = os.environ.get("CONFIGURATION_DIRECTORY", "").split(":")[0]
    if folder and (Path(folder) / "config.toml").exists():
        return str(Path(folder) / "config.toml")
    return "built-in defaults and SMCP_BOX_* environment"
