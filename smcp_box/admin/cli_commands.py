"""The CLI subcommands that manage a running box through its admin API.

``register(commands)`` adds ``status``, ``drain``, ``tenant``, ``key``, ``session``, ``audit``
and ``tui`` to ``smcp-box``'s subparsers; ``dispatch(args, settings)`` runs one of them and
returns its exit code, or None when the command is not one of these.

Exit codes: 0 done; 1 the box refused (unknown tenant, bad input: the message says why);
2 usage or configuration error; 3 the box is not running (nothing answers on the socket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from smcp_box.admin import blob_commands, oauth_commands, user_commands
from smcp_box.admin import cli_format as fmt
from smcp_box.admin.client import AdminClient
from smcp_box.admin.client_config import add_client_config_parser, run_client_config
from smcp_box.admin.paths import admin_socket_path
from smcp_box.admin.upload import read_tenant_upload
from smcp_box.config import LIMITS, Settings
from smcp_box.errors import AdminRequestFailed, AdminUnavailable, BoxError
from smcp_box.store.apikeys import key_id_from

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_BROKEN_PIPE = 141  # what shells report for SIGPIPE
COMMANDS = (
    "status",
    "drain",
    "tenant",
    "key",
    "session",
    "audit",
    "tui",
    "client-config",
    "user",
    "oauth",
    "blob",
)
#: ``tenant limits`` flags: one per tenant.toml ``[limits]`` key, with its unit and range.
LIMIT_FLAGS = tuple(
    (name, f"{bound.label} ({bound.unit}, {bound.low}..{bound.high})")
    for name, bound in LIMITS.items()
)

Handler = Callable[[AdminClient, argparse.Namespace], Awaitable[int]]


def _common(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument(
        "--socket", type=Path, default=None, help="admin socket (default <runtime_dir>/admin.sock)"
    )
    parser.add_argument("--url", default=None, help="admin API over TCP instead of the socket")
    parser.add_argument(
        "--token-file", type=Path, default=None, help="file holding the admin token (with --url)"
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print the API's JSON answer")


def _leaf(
    parent: Any, name: str, handler: Handler, help: str, *, json_flag: bool = True
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
    _common(parser, json_flag=json_flag)
    parser.set_defaults(admin_handler=handler)
    return parser


def register(commands: Any) -> None:
    """Add the admin commands to ``smcp-box``'s ``add_subparsers()`` object."""
    _leaf(commands, "status", _status, "show the running box's status, its fleet and database")
    drain = _leaf(
        commands,
        "drain",
        _drain,
        "stop taking new sessions (/readyz answers 503) and let open ones finish",
    )
    drain.add_argument("--undo", action="store_true", help="take new sessions again")

    tenant = commands.add_parser("tenant", help="manage tenants of the running box")
    actions = tenant.add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    _leaf(actions, "list", _tenant_list, "list tenants, and those that failed to load")
    _leaf(actions, "show", _tenant_show, "show one tenant").add_argument("name")
    add = _leaf(
        actions,
        "add",
        _tenant_add,
        "add a tenant from its folder (tenant.toml + module): a folder inside the tenants folder "
        "is served from there; any other is copied into the box's state directory",
    )
    add.epilog = (
        "New folders placed in the tenants folder are not served until you run smcp-box tenant "
        "rescan (all new folders), smcp-box tenant add FOLDER or smcp-box tenant reload NAME "
        "(one), or reload the box (SIGHUP); or set tenants_scan_s to have the box look by itself."
    )
    add.add_argument("path", type=Path, help="tenant folder, or its tenant.toml")
    _leaf(
        actions,
        "rescan",
        _tenant_rescan,
        "serve new folders of the tenants folder (and retry those that failed to load); "
        "running tenants are untouched",
    )
    _leaf(actions, "enable", _tenant_enable, "serve a disabled tenant again").add_argument("name")
    _leaf(actions, "disable", _tenant_disable, "stop serving a tenant").add_argument("name")
    limits = _leaf(
        actions, "limits", _tenant_limits, "show a tenant's limits, or override them with flags"
    )
    limits.add_argument("name")
    for flag, what in LIMIT_FLAGS:
        limits.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=int, help=what)
    limits.add_argument(
        "--reset", action="append", default=[], metavar="LIMIT", help="drop an override"
    )
    reload = _leaf(
        actions,
        "reload",
        _tenant_reload,
        "reload a tenant's manifest and module (serves a removed folder tenant again)",
    )
    reload.add_argument("name")
    remove = _leaf(
        actions,
        "remove",
        _tenant_remove,
        "stop serving a tenant and delete its data (files of the tenants folder are kept)",
    )
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    # Imported here: that module builds on this one's command helpers.
    from smcp_box.admin.approval_commands import register_tenant_actions

    register_tenant_actions(actions)

    key = commands.add_parser("key", help="manage API keys")
    actions = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    create = _leaf(actions, "create", _key_create, "create a key; prints the secret once")
    create.add_argument("tenant")
    create.add_argument("--label", default="", help="who or what uses the key")
    _leaf(actions, "list", _key_list, "list keys (never their secrets)").add_argument(
        "tenant", nargs="?", default=None
    )
    _leaf(
        actions, "revoke", _key_revoke, "revoke a key by its id (or the key itself)"
    ).add_argument("key_id", metavar="KEY_ID_OR_KEY")

    add_client_config_parser(
        _leaf(
            commands,
            "client-config",
            run_client_config,
            "print the config snippet an MCP client needs for a tenant",
        )
    )

    user_commands.register(commands, _leaf, _emit)
    oauth_commands.register(commands, _leaf, _emit)
    blob_commands.register(commands, _leaf, _emit)

    session = commands.add_parser("session", help="manage sessions")
    actions = session.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    _leaf(actions, "list", _session_list, "list open sessions").add_argument(
        "tenant", nargs="?", default=None
    )
    end = _leaf(actions, "end", _session_end, "end one session")
    end.add_argument("tenant")
    end.add_argument("session_id")

    audit = commands.add_parser("audit", help="read the audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    for name, handler, what in (
        ("list", _audit_list, "newest audit rows first"),
        ("follow", _audit_follow, "print new audit rows as they are written (ctrl-c stops)"),
    ):
        parser = _leaf(actions, name, handler, what)
        parser.add_argument("--tenant", default=None)
        parser.add_argument("--event", default=None, help="exact event name, e.g. admin.key.create")
        parser.add_argument("--actor", default=None, help="substring of the actor")
        parser.add_argument("--outcome", default=None, help="ok, denied or error")
    listing = actions.choices["list"]
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--before-id", type=int, default=None, help="page back from this id")

    tui = _leaf(commands, "tui", _unused_handler, "the terminal admin UI", json_flag=False)
    tui.add_argument("--read-only", action="store_true", help="look, never change")
    tui.set_defaults(admin_handler=None)


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run an admin-API command; None when ``args`` is not one. ``tui`` is the CLI's own: the
    TUI is a client of this package, so this package never imports it."""
    # Other packages' commands built with add_admin_command are dispatched here too.
    if args.command == "tui" or getattr(args, "admin_handler", None) is None:
        return None
    # Each admin request would otherwise be logged at info level, in the middle of the output.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        socket_path, url, token = admin_target(args, settings)
    except BoxError as exc:
        print(f"smcp-box: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    handler: Handler = args.admin_handler
    return asyncio.run(_run(handler, args, socket_path, url, token))


def admin_target(
    args: argparse.Namespace, settings: Settings
) -> tuple[Path | None, str | None, str | None]:
    """Where the admin API is: (socket path, or base URL and token) from the flags."""
    if args.url:
        token = None
        if args.token_file is not None:
            try:
                token = args.token_file.read_text().strip()
            except OSError as exc:
                raise BoxError(f"cannot read {args.token_file}: {exc.strerror}") from None
        return None, str(args.url), token
    return args.socket or admin_socket_path(settings), None, None


async def _run(
    handler: Handler,
    args: argparse.Namespace,
    socket_path: Path | None,
    url: str | None,
    token: str | None,
) -> int:
    async with AdminClient(socket_path, base_url=url, token=token) as client:
        try:
            return await handler(client, args)
        except AdminUnavailable as exc:
            print(f"smcp-box: {exc.message}", file=sys.stderr)
            return EXIT_NOT_RUNNING
        except AdminRequestFailed as exc:
            print(f"smcp-box: {exc.message}", file=sys.stderr)
            return EXIT_REFUSED
        except BoxError as exc:
            print(f"smcp-box: error: {exc.message}", file=sys.stderr)
            return EXIT_USAGE
        except BrokenPipeError:
            # The reader went away (| head): not an error; keep Python quiet at exit too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE


def _emit(args: argparse.Namespace, body: Any, text: str) -> int:
    print(json.dumps(body, indent=2) if getattr(args, "json", False) else text)
    return 0


#: For other packages' admin-API commands: the same flags, dispatch and output as these.
add_admin_command = _leaf
emit = _emit


async def _unused_handler(client: AdminClient, args: argparse.Namespace) -> int:
    raise AssertionError("tui is dispatched before any handler")  # pragma: no cover


# --- handlers ------------------------------------------------------------------------------


async def _status(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.status()
    return _emit(args, body, fmt.status_text(body))


async def _drain(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.drain(undo=args.undo)
    return _emit(args, body, fmt.drain_text(body))


async def _tenant_list(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.tenants()
    return _emit(args, body, fmt.tenants_text(body))


async def _tenant_show(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.tenant(args.name)
    return _emit(args, body, fmt.tenant_text(body))


async def _tenant_add(client: AdminClient, args: argparse.Namespace) -> int:
    manifest, module = await asyncio.to_thread(read_tenant_upload, args.path)
    source = str(args.path.expanduser().resolve())
    body = await client.add_tenant(manifest, module, source)
    if body.get("origin") == "folder":
        text = (
            f"serving tenant {body['name']} from the tenants folder ({body['folder']}), not "
            f"copied: {body['url']}"
        )
    else:
        text = f"added tenant {body['name']}: {body['url']}"
    return _emit(args, body, text)


async def _tenant_rescan(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.rescan_tenants()
    return _emit(args, body, fmt.rescan_text(body))


async def _tenant_enable(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.set_enabled(args.name, True)
    return _emit(args, body, f"enabled {args.name}")


async def _tenant_disable(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.set_enabled(args.name, False)
    return _emit(args, body, f"disabled {args.name}: its clients get 503 until it is enabled")


async def _tenant_limits(client: AdminClient, args: argparse.Namespace) -> int:
    changes: dict[str, int | None] = {
        flag: getattr(args, flag) for flag, _ in LIMIT_FLAGS if getattr(args, flag) is not None
    }
    for name in args.reset:
        changes[name.replace("-", "_")] = None
    if not changes:
        # No flags: show them, with what an admin changed and what each may be set to.
        shown = await client.tenant(args.name)
        return _emit(args, shown, fmt.limits_text(shown))
    body = await client.set_limits(args.name, changes)
    limits = ", ".join(f"{k}={v}" for k, v in body["limits"].items())
    return _emit(args, body, f"limits of {args.name}: {limits}")


async def _tenant_reload(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.reload_tenant(args.name)
    return _emit(args, body, f"reloaded {args.name} (module sha256 {body['module']['sha256']})")


async def _tenant_remove(client: AdminClient, args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            print("smcp-box: removing a tenant deletes its data; pass --yes", file=sys.stderr)
            return EXIT_USAGE
        details = await client.tenant(args.name)
        files = (
            f"its files in {details['folder']}"
            if details.get("origin") == "admin"
            else f"it from the box (its folder {details['folder']} is kept)"
        )
        print(
            f"This removes tenant {args.name}: {files}, its kv data "
            f"({details['kv_keys']} keys), its {details['active_keys']} active key(s) and "
            f"{details['open_sessions']} open session(s). It cannot be undone."
        )
        answer = await asyncio.to_thread(input, f"Type {args.name} to confirm: ")
        if answer.strip() != args.name:
            print("not removed")
            return EXIT_REFUSED
    body = await client.remove_tenant(args.name)
    return _emit(
        args,
        body,
        f"removed {args.name}: {body['kv_keys_deleted']} kv keys deleted, "
        f"{body['keys_revoked']} keys revoked, {body['sessions_ended']} sessions ended",
    )


async def _key_create(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.create_key(args.tenant, args.label)
    if args.json:
        return _emit(args, body, "")
    # The secret alone on stdout, so that KEY=$(smcp-box key create notes) works; the rest is
    # for the person at the terminal.
    print(fmt.new_key_text(body), file=sys.stderr)
    print(body["key"])
    return 0


async def _key_list(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.keys(args.tenant)
    return _emit(args, body, fmt.keys_text(body))


async def _key_revoke(client: AdminClient, args: argparse.Namespace) -> int:
    # A whole key is accepted (people paste what they have) but only its public id is sent;
    # what was typed is never echoed, since it may be a secret with a typo in it.
    key_id = key_id_from(args.key_id)
    if key_id is None:
        raise BoxError(
            "that is neither a key id (16 hex digits, as `smcp-box key list` shows) nor an "
            "API key; nothing was revoked"
        )
    body = await client.revoke_key(key_id)
    return _emit(args, body, f"revoked {key_id} (tenant {body['tenant']})")


async def _session_list(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.sessions(args.tenant)
    return _emit(args, body, fmt.sessions_text(body))


async def _session_end(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.end_session(args.tenant, args.session_id)
    return _emit(args, body, f"ended session {args.session_id} of {args.tenant}")


async def _audit_list(client: AdminClient, args: argparse.Namespace) -> int:
    body = await client.audit(
        before_id=args.before_id,
        limit=args.limit,
        tenant=args.tenant,
        event=args.event,
        actor=args.actor,
        outcome=args.outcome,
    )
    lines = fmt.audit_lines(body["entries"])
    if "next_before_id" in body:
        lines.append(f"(older rows: --before-id {body['next_before_id']})")
    return _emit(args, body, "\n".join(lines) or "no audit rows")


async def _audit_follow(client: AdminClient, args: argparse.Namespace) -> int:
    newest = await client.audit(limit=1)
    last = max((int(e["id"]) for e in newest["entries"]), default=0)
    filters = {"tenant": args.tenant, "event": args.event}
    while True:
        body = await client.audit_follow(last, **filters)
        entries = [
            e
            for e in body["entries"]
            if (args.outcome is None or e["outcome"] == args.outcome)
            and (args.actor is None or args.actor in e["actor"])
        ]
        for entry in entries:
            print(json.dumps(entry) if args.json else fmt.audit_lines([entry])[0], flush=True)
        if body["entries"]:
            last = max(int(e["id"]) for e in body["entries"])
