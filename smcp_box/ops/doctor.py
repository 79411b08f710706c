"""``smcp-box doctor``: check an installation and say what to fix, as an OK/WARN/FAIL list.

FAIL means the box will not start or will misbehave (exit status 1); WARN means it runs but
something deserves a look. Nothing is created or repaired: a missing database or key is a
WARN on a fresh install, not something doctor makes. It runs beside a running box (it only
reads the database, and compiles modules into the same cache the box uses).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from smcp_box.config import Settings
from smcp_box.errors import BoxError
from smcp_box.ops.offline import admin_socket_answers, data_key_path, existing_store
from smcp_box.store import Store, statelock
from smcp_box.store.keyfile import read_key_file

Status = Literal["OK", "WARN", "FAIL"]
#: Free space below either of these on the state filesystem is a warning.
LOW_DISK_BYTES = 256 * 1024 * 1024
LOW_DISK_FRACTION = 0.05
CERT_RENEW_DAYS = 30


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    message: str


@dataclass
class Checklist:
    checks: list[Check] = field(default_factory=list)

    def add(self, status: Status, name: str, message: str) -> None:
        self.checks.append(Check(status, name, message))

    @property
    def failed(self) -> bool:
        return any(check.status == "FAIL" for check in self.checks)

    def text(self) -> str:
        lines = [f"[{c.status:^4}] {c.name}: {c.message}" for c in self.checks]
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in ("OK", "WARN", "FAIL")}
        lines.append(f"{counts['OK']} ok, {counts['WARN']} warning(s), {counts['FAIL']} failure(s)")
        return "\n".join(lines)


async def run_doctor(settings: Settings, config_source: str) -> Checklist:
    report = Checklist()
    report.add("OK", "config", f"valid ({config_source})")
    _check_exposure(settings, report)
    _check_running(settings, report)
    database_present = _check_state_dir(settings, report)
    key_ok = _check_key(settings, report, database_present)
    if database_present and key_ok:
        await _check_database(settings, report)
    _check_cache(settings, report)
    _check_tenants(settings, report)
    return report


def _check_exposure(settings: Settings, report: Checklist) -> None:
    server = settings.server
    try:
        loopback = ipaddress.ip_address(server.host).is_loopback
    except ValueError:
        loopback = server.host == "localhost"
    if not server.tls_cert:
        if not loopback:
            report.add(
                "WARN",
                "tls",
                f"serving on {server.host} without TLS: keys cross the LAN "
                "in clear text (smcp-box cert makes a certificate)",
            )
        return
    from smcp_box.ops.tls import build_ssl_context, read_certificate_info

    try:
        build_ssl_context(server.tls_cert, server.tls_key)
        info = read_certificate_info(server.tls_cert)
    except BoxError as exc:
        report.add("FAIL", "tls", exc.message)
        return
    left = info.not_after - datetime.now(UTC)
    if left < timedelta(0):
        report.add("FAIL", "tls", f"{server.tls_cert} expired on {info.not_after:%Y-%m-%d}")
    elif left < timedelta(days=CERT_RENEW_DAYS):
        report.add(
            "WARN",
            "tls",
            f"{server.tls_cert} expires on {info.not_after:%Y-%m-%d}: "
            "renew with smcp-box cert --keep-key, then systemctl reload",
        )
    else:
        report.add("OK", "tls", f"certificate valid until {info.not_after:%Y-%m-%d}")


def _check_running(settings: Settings, report: Checklist) -> None:
    socket_path = admin_socket_answers(settings)
    if socket_path is not None:
        report.add("OK", "box", f"running (admin socket {socket_path} answers)")
    elif statelock.box_is_running(settings.database_path().parent):
        holder = statelock.read_holder(settings.database_path().parent)
        pid = f"PID {holder[0]} " if holder is not None else ""
        report.add("OK", "box", f"running ({pid}holds the state lock; no admin socket)")
    else:
        report.add("OK", "box", "not running")


def _check_state_dir(settings: Settings, report: Checklist) -> bool:
    state = settings.state_path()
    if not state.exists():
        report.add("WARN", "state dir", f"{state} does not exist yet (made at first start)")
        return False
    st = state.stat()
    if not stat.S_ISDIR(st.st_mode):
        report.add("FAIL", "state dir", f"{state} is not a directory")
        return False
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o002:
        report.add(
            "FAIL",
            "state dir",
            f"{state} is writable by everyone (mode {mode:04o}): chmod 700 {state}",
        )
    elif mode & 0o077:
        report.add(
            "WARN",
            "state dir",
            f"{state} is open to other users (mode {mode:04o}): chmod 700 {state}",
        )
    elif st.st_uid != os.geteuid():
        report.add("WARN", "state dir", f"{state} belongs to uid {st.st_uid}, not to this user")
    else:
        report.add("OK", "state dir", f"{state} (mode {mode:04o})")
    usage = shutil.disk_usage(state)
    if usage.free < LOW_DISK_BYTES or usage.free < usage.total * LOW_DISK_FRACTION:
        report.add("WARN", "disk", f"only {usage.free // (1024 * 1024)} MiB free under {state}")
    database = settings.database_path()
    if not database.exists():
        report.add("WARN", "database", f"{database} does not exist yet (made at first start)")
        return False
    return True


def _check_key(settings: Settings, report: Checklist, database_present: bool) -> bool:
    path = data_key_path(settings)
    if path is None:
        status: Status = "FAIL" if database_present else "WARN"
        why = "the database cannot be read without it" if database_present else "made at start"
        report.add(status, "data key", f"no data key found ({why})")
        return False
    try:
        read_key_file(path)
    except BoxError as exc:
        report.add("FAIL", "data key", exc.message)
        return False
    source = "credential" if path.parent == settings.credentials_path() else "key file"
    hint = "" if source == "credential" else " (a systemd credential keeps it apart from backups)"
    report.add("OK", "data key", f"{source} {path}{hint}")
    return True


async def _check_database(settings: Settings, report: Checklist) -> None:
    try:
        async with existing_store(settings) as store:
            await _check_store(settings, store, report)
    except BoxError as exc:
        report.add("FAIL", "database", exc.message)


async def _check_store(settings: Settings, store: Store, report: Checklist) -> None:
    problems = await store.integrity_check()
    if problems:
        report.add("FAIL", "database", "integrity check: " + "; ".join(problems[:5]))
    else:
        size = settings.database_path().stat().st_size
        report.add("OK", "database", f"integrity ok ({size // 1024} KiB)")
    verification = await store.verify_audit_chain()
    if verification.ok:
        report.add("OK", "audit chain", f"intact ({verification.rows_checked} row(s))")
    else:
        report.add(
            "FAIL",
            "audit chain",
            f"{verification.message} (smcp-box audit verify lists every affected row)",
        )
    await _check_blobs(store, report)


async def _check_blobs(store: Store, report: Checklist) -> None:
    """Read every blob whole: each chunk must open and the SHA-256 must match. Not shown when
    there are no blobs. Reads a chunk at a time, like the box."""
    problems: list[str] = []
    count = size = 0
    for tenant in await store.blobs.tenants():
        for info in await store.blobs.listing(tenant):
            count += 1
            size += info.size
            try:
                async for _ in store.blobs.read(tenant, info):
                    pass
            except BoxError as exc:
                problems.append(exc.message)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        )
        report.add("FAIL", "blobs", f"{len(problems)} of {count} blob(s) are damaged: {shown}")
    elif count:
        report.add(
            "OK", "blobs", f"{count} blob(s), {size // 1024} KiB: every chunk opens, hashes match"
        )


def _check_cache(settings: Settings, report: Checklist) -> None:
    cache = settings.cache_path()
    if not cache.exists():
        report.add("WARN", "module cache", f"{cache} does not exist yet (made at first start)")
        return
    try:
        with tempfile.NamedTemporaryFile(dir=cache, prefix=".doctor-"):
            pass
    except OSError as exc:
        report.add(
            "WARN",
            "module cache",
            f"{cache} is not writable ({exc.strerror}): modules are compiled at every start",
        )
        return
    bad = []
    entries = sorted(cache.glob("*.cwasm"))
    for entry in entries:
        digest = entry.with_name(entry.name + ".sha256")
        try:
            expected = digest.read_text(encoding="ascii").strip()
            actual = hashlib.sha256(entry.read_bytes()).hexdigest()
        except (OSError, UnicodeDecodeError):
            bad.append(entry.name)
            continue
        if expected != actual:
            bad.append(entry.name)
    if bad:
        report.add(
            "WARN",
            "module cache",
            f"{len(bad)} corrupt entr(ies), recompiled on next "
            f"use (or delete them): {', '.join(bad[:5])}",
        )
    else:
        report.add("OK", "module cache", f"{cache} writable, {len(entries)} entr(ies) intact")


def _check_tenants(settings: Settings, report: Checklist) -> None:
    from smcp_box.sandbox import Sandbox
    from smcp_box.tenancy.manifest import discover_manifests, load_manifest, resolve_limits

    try:
        manifests = discover_manifests(settings.tenants_path())
    except BoxError as exc:
        report.add("FAIL", "tenants", exc.message)
        return
    if not manifests:
        report.add("WARN", "tenants", f"no tenant folders in {settings.tenants_path()}")
        return
    names: dict[str, Path] = {}
    cache = settings.cache_path()
    with contextlib.ExitStack() as stack:
        if not cache.is_dir():
            # Looking must not create the cache folder: compile into a throwaway one.
            cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smcp-doctor-")))
        # The checklist is the output; the sandbox's "loaded module" lines would be noise.
        sandbox_logger = logging.getLogger("smcp_box.sandbox")
        stack.callback(sandbox_logger.setLevel, sandbox_logger.level)
        sandbox_logger.setLevel(logging.WARNING)
        sandbox = stack.enter_context(Sandbox.from_settings(cache, settings.sandbox))
        for path in manifests:
            label = f"tenant {path.parent.name}"
            try:
                manifest = load_manifest(path)
                # Admin overrides live in the database; the manifest's own limits are checked.
                limits = resolve_limits(settings.sandbox, manifest.limit_overrides)
                # Compiling checks what the box checks at load: hash pin, imports, exports.
                sandbox.load(manifest.name, manifest.read_module(), limits, kind=manifest.kind)
            except BoxError as exc:
                report.add("FAIL", label, exc.message)
                continue
            if manifest.name in names:
                report.add(
                    "FAIL",
                    label,
                    f"duplicate tenant name {manifest.name!r} (also in {names[manifest.name]})",
                )
                continue
            names[manifest.name] = path.parent
            report.add("OK", label, f"ok; module {manifest.sha256[:12]} matches its pin")
