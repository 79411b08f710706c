"""``smcp-box``: serve the box and manage it from a shell.

Every subcommand reads the same settings tree as the server. Commands that change state while
the box runs (``key create``) write through the store, which is safe next to a running box
because SQLite in WAL mode serializes writers across processes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from smcp_box import __version__
from smcp_box.admin import cli_commands, vetting_commands
from smcp_box.admin.urls import host_urls
from smcp_box.config import Settings, load_settings, settings_as_dict
from smcp_box.errors import BoxError
from smcp_box.logs import configure_logging

logger = logging.getLogger("smcp_box.cli")
#: ``serve``'s own lines: stopping (with the calls being drained) and stopped (with the uptime).
serve_logger = logging.getLogger("smcp_box.serve")


def _add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default: $SMCP_BOX_CONFIG or $CONFIGURATION_DIRECTORY/config.toml)",
    )
    parser.add_argument("--tenants-dir", default=None, help="folder of tenant folders")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smcp-box", description="Host many tenants' MCP servers as sandboxed wasm modules."
    )
    parser.add_argument("--version", action="version", version=f"smcp-box {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the box")
    _add_config_flag(serve)
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 8765)")

    # status, tenant, key, session, audit and tui: clients of the running box's admin API.
    cli_commands.register(commands)
    # publisher keygen, sign, secret and catalog.
    vetting_commands.register(commands)

    config = commands.add_parser("config", help="inspect configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_check = config_commands.add_parser("check", help="validate and print the settings")
    _add_config_flag(config_check)
    config_check.add_argument("--json", action="store_true", help="the settings tree as JSON")

    from smcp_box.ops.cert_command import add_cert_parser
    from smcp_box.ops.cli_commands import register as register_ops

    _add_config_flag(add_cert_parser(commands))
    from smcp_box.ops.lb_command import add_lb_config_parser

    _add_config_flag(add_lb_config_parser(commands))
    vet = commands.add_parser(
        "vet",
        help="vet tenant folders or bare .wasm modules: module hash, ABI, tool definitions, "
        "pin, description scan",
    )
    vet.add_argument("tenant_dirs", nargs="+", type=Path, metavar="TENANT_DIR_OR_MODULE")
    vet.add_argument("--json", action="store_true")
    _add_config_flag(vet)
    from smcp_box.ops.authoring import register as register_authoring

    register_authoring(commands)
    # The build's sandbox keeps compiled code in the configured cache directory.
    _add_config_flag(commands.choices["build"])
    # backup, restore, doctor, audit export|verify. Last: it extends the admin `audit` command.
    register_ops(commands)
    return parser


def _config_file(args: argparse.Namespace) -> Path | None:
    """The TOML file in force: --config, $SMCP_BOX_CONFIG, or systemd's configuration folder."""
    path: Path | None = getattr(args, "config", None)
    if path is None and os.environ.get("SMCP_BOX_CONFIG"):
        path = Path(os.environ["SMCP_BOX_CONFIG"])
    if path is None and os.environ.get("CONFIGURATION_DIRECTORY"):
        candidate = Path(os.environ["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml"
        path = candidate if candidate.exists() else None
    return path


def _settings_from(args: argparse.Namespace) -> Settings:
    path = _config_file(args)
    environ = {k: v for k, v in os.environ.items() if k != "SMCP_BOX_CONFIG"}
    overrides: dict[str, Any] = {"tenants_dir": getattr(args, "tenants_dir", None)}
    if getattr(args, "host", None) is not None:
        overrides["server.host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["server.port"] = args.port
    return load_settings(path, environ=environ, overrides=overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings_from(args)
        configure_logging(settings.log_level)
        return _dispatch(args, settings)
    except BoxError as exc:
        print(f"smcp-box: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error; keep Python quiet at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from smcp_box.ops.cli_commands import dispatch as dispatch_ops

    # First: the admin dispatcher would claim `audit export|verify` as its own `audit`.
    handled = dispatch_ops(args, settings)
    if handled is None:
        handled = vetting_commands.dispatch(args)
    if handled is not None:
        return handled
    if args.command == "cert":
        from smcp_box.ops.cert_command import run_cert

        return run_cert(args, state_dir=settings.state_path(), tenants_dir=settings.tenants_path())
    if args.command == "lb-config":
        from smcp_box.ops.lb_command import run_lb_config

        return run_lb_config(args, settings)
    if args.command in ("new", "build", "dev"):
        from smcp_box.ops.authoring import dispatch as dispatch_authoring

        done = dispatch_authoring(args, settings.cache_path(), settings.log_level)
        assert done is not None
        return done
    if args.command == "vet":
        from smcp_box.tenancy.vet_command import run_vet_command

        return run_vet_command(
            args.tenant_dirs,
            settings.cache_path(),
            settings.sandbox,
            as_json=args.json,
            vetting=settings.vetting,
        )
    if args.command == "serve":
        return asyncio.run(_serve(settings, lambda: _settings_from(args)))
    if args.command == "tui":
        from smcp_box.tui.run import run_tui

        socket_path, url, token = cli_commands.admin_target(args, settings)
        return run_tui(socket_path, read_only=args.read_only, base_url=url, token=token)
    handled = cli_commands.dispatch(args, settings)
    if handled is not None:
        return handled
    if args.command == "config":
        return _config_check(args, settings)
    raise AssertionError(args.command)  # pragma: no cover - argparse enforces the choices


def _config_check(args: argparse.Namespace, settings: Settings) -> int:
    """Valid settings (invalid ones exited 2 before this): say so, where they came from, the
    resolved folders, then every setting, one per line (``--json`` for the tree)."""
    resolved = {
        "state_dir": str(settings.state_path().resolve()),
        "database": str(settings.database_path().resolve()),
        "cache_dir": str(settings.cache_path().resolve()),
        "runtime_dir": str(settings.runtime_path().resolve()),
        "tenants_dir": str(settings.tenants_path().resolve()),
    }
    if args.json:
        print(json.dumps({**settings_as_dict(settings), "resolved": resolved}, indent=2))
        return 0
    source = _config_file(args)
    env_names = sorted(name for name in os.environ if name.startswith("SMCP_BOX_"))
    layers = ["built-in defaults", f"file {source}" if source else "no config file"]
    layers.append(
        f"environment ({', '.join(env_names)})" if env_names else "no SMCP_BOX_* variables"
    )
    print(f"configuration is valid: {'; '.join(layers)}")
    for name, value in resolved.items():
        print(f"  {name:<12} {value}")
    print()
    for name, value in _flatten(settings_as_dict(settings)):
        print(f"{name} = {json.dumps(value)}")
    return 0


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", list(value) if isinstance(value, tuple) else value))
    return rows


async def _serve(settings: Settings, reload_settings: Callable[[], Settings]) -> int:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HypercornConfig

    from smcp_box.admin.server import start_admin
    from smcp_box.box import Box, lock_state
    from smcp_box.ops.activation import listen_binds
    from smcp_box.ops.reload import reload_box, scan_tenants_forever
    from smcp_box.ops.sdnotify import Notifier, watchdog_loop
    from smcp_box.ops.tls import CertReloader, ReloadableTLSConfig
    from smcp_box.web.app import create_app
    from smcp_box.web.connections import configure_hypercorn

    notifier = Notifier.from_environ()
    notifier.status("starting: opening the store and loading tenants")
    # First of all, and for the process's life: one box per state directory. A second box
    # stops here, before it binds a port or loads a tenant, naming the PID that holds the lock.
    lock = lock_state(settings)
    try:
        # Bind before anything slow so a taken port fails fast, and so READY=1 can follow
        # start-up at once: early connections wait in the kernel's backlog until Hypercorn
        # accepts.
        binds = listen_binds(settings.server.host, settings.server.port)
        box = await Box.start(settings, lock=lock)
    except BaseException:
        lock.release()
        raise
    try:
        app = create_app(box.settings, box.app_services())
        reloader: CertReloader | None = None
        if settings.server.tls_cert:
            reloader = CertReloader(settings.server.tls_cert, settings.server.tls_key)
            hyper: HypercornConfig = ReloadableTLSConfig(reloader)
        else:
            hyper = HypercornConfig()
        hyper.bind = binds
        # The header deadline, and the per-address connection cap at accept.
        configure_hypercorn(hyper, box.connections)
        hyper.graceful_timeout = settings.server.shutdown_grace_s
        hyper.accesslog = None
        hyper.errorlog = logging.getLogger("hypercorn.error")
        stop = asyncio.Event()
        # Binds the admin socket now: a second box on the same socket fails here, at start.
        admin = start_admin(box, stop.wait)
        loop = asyncio.get_running_loop()

        transport = app.extensions["smcp_box.mcp"]
        draining: set[asyncio.Task[None]] = set()

        def request_stop() -> None:
            if not stop.is_set():
                serve_logger.info(
                    "stopping: draining %d calls (up to %gs)",
                    _running_calls(box),
                    settings.server.shutdown_grace_s,
                )
            notifier.stopping("stopping: finishing in-flight requests")
            stop.set()
            task = loop.create_task(transport.close_idle_streams())
            draining.add(task)
            task.add_done_callback(draining.discard)

        reloads: set[asyncio.Task[Any]] = set()

        def request_reload() -> None:
            task = loop.create_task(
                reload_box(box, reload_settings, app=app, reloader=reloader, notifier=notifier)
            )
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, request_stop)
        loop.add_signal_handler(signal.SIGHUP, request_reload)
        scheme = "https" if reloader else "http"
        host = settings.server.host
        shown_host = f"[{host}]" if ":" in host else host
        _print_banner(box, f"{scheme}://{shown_host}:{settings.server.port}")

        async def ready_checks_ok() -> bool:
            try:
                await box.store.healthcheck()
            except BoxError:
                return False
            return True

        async def ticker_ok() -> bool:
            return box.sandbox.ticker_alive()

        watchdog = loop.create_task(
            watchdog_loop(
                notifier,
                [ready_checks_ok, ticker_ok],
                healthy_status=lambda: f"serving {len(box.tenants.names())} tenant(s)",
            )
        )
        scanner = loop.create_task(scan_tenants_forever(box))
        # What start-up built (modules, compiled tenants, settings) lives as long as the process:
        # out of the collector's sight, a full collection walks only what requests create.
        # Under a connection flood those collections come every second or so, and walking the
        # start-up heap each time stalled every request for hundreds of milliseconds.
        gc.collect()
        gc.freeze()
        notifier.ready(f"serving {len(box.tenants.names())} tenant(s)")
        try:
            await serve(app, hyper, shutdown_trigger=stop.wait)
        finally:
            watchdog.cancel()
            scanner.cancel()
            stop.set()
            await admin
    finally:
        await box.stop()
        serve_logger.info("stopped after %s up", _uptime(box.clock() - box.started_at))
    return 0


def _running_calls(box: Any) -> int:
    """Module calls running now, over every tenant."""
    running = 0
    for name in box.tenants.names():
        try:
            running += box.sandbox.stats(name).busy_calls
        except KeyError:
            continue
    return int(running)


def _uptime(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _print_banner(box: Any, base_url: str) -> None:
    lines = [f"smcp-box {__version__} serving on {base_url}"]
    for tenant in box.tenants.all():
        auth = {
            "none": "public (no auth)",
            "oauth": "OAuth sign-in",
            "both": f"OAuth sign-in or API key: smcp-box key create {tenant.name}",
        }.get(tenant.auth_mode, f"API key: smcp-box key create {tenant.name}")
        lines.append(f"  {tenant.name:<16} {base_url}/t/{tenant.name}/mcp   [{auth}]")
        lines.extend(f"  {'':<16} {url}" for url in host_urls(box.settings, tenant.manifest.hosts))
    for folder, reason in box.tenants.last_report.failed.items():
        lines.append(f"  NOT LOADED {folder}: {reason}")
    if not box.tenants.names():
        lines.append(f"  no tenants loaded from {box.settings.tenants_path()}")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
