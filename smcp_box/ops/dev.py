"""``smcp-box dev DIR``: serve one tenant folder on loopback while you work on it.

A throwaway box: its state (database, data key, admin socket) lives in a temporary folder that
is deleted when ``dev`` stops, its settings are the built-in defaults (only the compiled-module
cache and the log level come from the usual layers, so compiled modules are reused across runs),
and its tenants folder holds one link, to ``DIR``. It prints the endpoint, a fresh API key and a
client configuration that works when pasted, then watches the folder's ``tenant.toml`` and module
file: when either changes and has stayed unchanged for one more poll, and the module is the one
tenant.toml pins (``smcp-box build`` moves the module into place and pins it at once; a module
that does not match its pin is noted and waited for), the tenant is reloaded from its files with
a fresh module. A rebuild that does not load (a module the vetting refuses, a tenant.toml that
does not parse) is reported with the box's message, and the last good version keeps serving
until a later rebuild loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from smcp_box.admin import tenant_admin
from smcp_box.admin.client_config import Connection, client_snippet
from smcp_box.box import Box, lock_state
from smcp_box.config import Settings, load_settings
from smcp_box.errors import BoxError, ConfigError
from smcp_box.ops.authoring import DEV_PORT
from smcp_box.tenancy.manifest import MANIFEST_NAME, load_manifest
from smcp_box.tenancy.pinning import sha256_file

logger = logging.getLogger("smcp_box.dev")

#: Seconds between two looks at the watched files (two stat() calls).
POLL_S = 0.25

Fingerprint = tuple[tuple[int, int] | None, ...]


@dataclass(frozen=True)
class DevOptions:
    folder: Path
    #: 0 picks a free port.
    port: int = DEV_PORT
    cache_dir: Path | None = None
    log_level: str = "warning"
    poll_s: float = POLL_S


def dev_settings(options: DevOptions, workdir: Path, port: int) -> Settings:
    """Built-in defaults, on loopback, with everything durable in ``workdir``."""
    overrides: dict[str, object] = {
        "state_dir": str(workdir / "state"),
        "runtime_dir": str(workdir / "run"),
        "tenants_dir": str(workdir / "tenants"),
        "log_level": options.log_level,
        "server.host": "127.0.0.1",
        "server.port": port,
    }
    if options.cache_dir is not None:
        overrides["cache_dir"] = str(options.cache_dir)
    return load_settings(None, environ={}, overrides=overrides)


def _fingerprint(paths: list[Path]) -> Fingerprint:
    """(mtime, size) of each watched file, None for one that is missing."""
    marks: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            marks.append(None)
            continue
        marks.append((stat.st_mtime_ns, stat.st_size))
    return tuple(marks)


class DevServer:
    """The box, the watcher and what they print; :meth:`run` serves until ``stop`` is set."""

    def __init__(self, options: DevOptions, out: TextIO, err: TextIO) -> None:
        self.options = options
        self.folder = options.folder.resolve()
        self.out = out
        self.err = err
        try:
            manifest = load_manifest(self.folder / MANIFEST_NAME)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc.message}; a new tenant folder is served once it is built and pinned: "
                f"smcp-box build {options.folder}"
            ) from None
        self.name = manifest.name
        self.auth = manifest.auth
        self.stop = asyncio.Event()

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _complain(self, text: str) -> None:
        print(f"smcp-box dev: {text}", file=self.err, flush=True)

    def watched(self) -> list[Path]:
        """tenant.toml and the module it names now (it may name another after an edit)."""
        manifest = self.folder / MANIFEST_NAME
        try:
            module = load_manifest(manifest).module_path
        except BoxError:
            return [manifest]
        return [manifest, module]

    async def run(self) -> int:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config as HypercornConfig

        from smcp_box.web.app import create_app

        with tempfile.TemporaryDirectory(prefix="smcp-dev-") as scratch:
            workdir = Path(scratch)
            (workdir / "tenants").mkdir()
            (workdir / "tenants" / self.name).symlink_to(self.folder, target_is_directory=True)
            listener = _listen(self.options.port)
            port = listener.getsockname()[1]
            try:
                settings = dev_settings(self.options, workdir, port)
                lock = lock_state(settings)
                box = await Box.start(settings, lock=lock)
            except BaseException:
                listener.close()
                raise
            try:
                await self._announce(box, f"http://127.0.0.1:{port}")
                hyper = HypercornConfig()
                # Hypercorn adopts the socket bound above: the port printed is the one served.
                hyper.bind = [f"fd://{listener.detach()}"]
                hyper.graceful_timeout = 2.0
                hyper.accesslog = None
                hyper.errorlog = logging.getLogger("hypercorn.error")
                app = create_app(box.settings, box.app_services())
                watcher = asyncio.create_task(self._watch(box))
                try:
                    await serve(app, hyper, shutdown_trigger=self.stop.wait)
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
            finally:
                await box.stop()
        return 0

    async def _announce(self, box: Box, base_url: str) -> None:
        url = f"{base_url}/t/{self.name}/mcp"
        key: str | None = None
        if self.auth not in ("none", "oauth"):
            _, key = await box.store.create_api_key(self.name, "smcp-box dev")
        lines = [
            f"smcp-box dev: serving {self.folder} as tenant {self.name!r}",
            f"  endpoint  {url}",
        ]
        if key is not None:
            lines.append(f"  API key   {key}   (Authorization: Bearer <key>)")
        elif self.auth == "oauth":
            lines.append("  auth      oauth: dev serves it, but has no users; use api_key to test")
        else:
            lines.append("  auth      none: no key needed")
        conn = Connection(self.name, url, self.auth, key)
        snippet = client_snippet("json", conn)
        lines += ["", f"client configuration ({snippet.where}):", snippet.text]
        lines += ["Claude Code:", client_snippet("claude-code", conn).text, ""]
        self._say("\n".join(lines))
        failed = self._load_problem(box)
        if failed is not None:
            self._complain(f"{self.name} is not served yet: {failed}")
        else:
            self._say(f"loaded {self._describe(box)}")
        watched = ", ".join(str(p) for p in self.watched())
        self._say(
            f"watching {watched}; rebuild (smcp-box build {self.folder}) to reload, Ctrl-C to stop"
        )

    def _load_problem(self, box: Box) -> str | None:
        for folder, reason in box.tenants.last_report.failed.items():
            if Path(folder).name == self.name:
                return reason
        return None if box.tenants.get(self.name) is not None else "not loaded"

    def _describe(self, box: Box) -> str:
        tenant = box.tenants.get(self.name)
        if tenant is None:
            return f"{self.name}: nothing"
        return f"{self.name}: module {tenant.module.sha256[:12]} ({tenant.module.kind})"

    async def _watch(self, box: Box) -> None:
        seen = _fingerprint(self.watched())
        pending: Fingerprint | None = None
        while True:
            await asyncio.sleep(self.options.poll_s)
            now = _fingerprint(self.watched())
            if now != seen:
                # Changed since the last poll: wait until it holds still for one poll.
                seen, pending = now, now
                continue
            if pending is None:
                continue
            pending = None
            unpinned = self._unpinned()
            if unpinned is not None:
                self._say(unpinned)
                continue
            await self.reload(box)

    def _unpinned(self) -> str | None:
        """Why a changed module is not worth loading yet: its bytes are not what tenant.toml
        pins (a build in progress, or a module built without ``smcp-box build``)."""
        try:
            manifest = load_manifest(self.folder / MANIFEST_NAME)
            actual = sha256_file(manifest.module_path)
        except (BoxError, OSError):
            return None  # the reload names the problem
        if actual == manifest.sha256:
            return None
        return (
            f"{manifest.module_path.name} changed, but tenant.toml pins another sha256; "
            f"waiting for the pin (smcp-box build {self.folder} builds and pins)"
        )

    async def reload(self, box: Box) -> bool:
        """Reload the tenant from its files; on failure say why and keep the last good one."""
        before = box.tenants.get(self.name)
        try:
            await tenant_admin.reload(box, self.name)
        except BoxError as exc:
            kept = (
                f"still serving the last good module {before.module.sha256[:12]}"
                if before is not None
                else "nothing is served until a rebuild loads"
            )
            self._complain(f"the rebuilt {self.name} did not load: {exc.message}\n  ({kept})")
            return False
        self._say(f"reloaded {self._describe(box)}")
        return True


def _listen(port: int) -> socket.socket:
    """A loopback listening socket, bound now so that a taken port fails before start-up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; pick another with --port "
            "(0 picks a free one)"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def run_dev(options: DevOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``smcp-box dev``: serve until SIGINT or SIGTERM."""
    if not (options.folder / MANIFEST_NAME).is_file():
        raise ConfigError(
            f"{options.folder} has no {MANIFEST_NAME}; make a tenant folder with "
            "smcp-box new --lang c|python NAME"
        )
    server = DevServer(options, out, err)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.stop.set)
        return await server.run()

    return asyncio.run(main())
