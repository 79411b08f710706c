"""The box's settings: one frozen tree, layered defaults < TOML file < ``SMCP_BOX_*`` env < flags.

Every field is documented once, here, and shown with its default in ``config.example.toml``
(a test keeps the two in step). Unknown keys anywhere are errors that name the key, because a
misspelt setting silently falling back to its default is how appliances get misconfigured.

Environment overrides: a top-level field ``state_dir`` is ``SMCP_BOX_STATE_DIR``; a field
``port`` of section ``server`` is ``SMCP_BOX_SERVER_PORT``. Values are parsed as the field's type
(lists are comma-separated).

Default paths follow systemd: ``$STATE_DIRECTORY``, ``$CACHE_DIRECTORY``, ``$RUNTIME_DIRECTORY``
and ``$CREDENTIALS_DIRECTORY`` when set (the unit sets them), else folders under ``./.smcp-box``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from smcp_box.errors import ConfigError
from smcp_box.seams import MIB

ENV_PREFIX = "SMCP_BOX_"


@dataclass(frozen=True)
class ServerSettings:
    #: Address to listen on. The default keeps a fresh box off the LAN until you choose.
    host: str = "127.0.0.1"
    #: TCP port for the MCP endpoints, /healthz and /metrics.
    port: int = 8765
    #: Largest request body accepted, in bytes; larger ones get 413 before being read whole.
    max_body_bytes: int = 4 * MIB
    #: Extra allowed browser origins (e.g. "https://box.lan:8765"). Loopback origins are always
    #: allowed; requests without an Origin header (non-browser clients) are always allowed.
    allowed_origins: tuple[str, ...] = ()
    #: Seconds between SSE keep-alive comments on idle streams.
    sse_keepalive_s: float = 15.0
    #: Handshake-era clients: seconds the box waits for the client to answer a request it sends
    #: on a tool's behalf (sampling, elicitation, roots). Elicitation waits for a person.
    server_request_timeout_s: float = 300.0
    #: PEM certificate chain; with tls_key set, the box serves HTTPS with HTTP/2 via ALPN.
    tls_cert: str = ""
    #: PEM private key for tls_cert.
    tls_key: str = ""
    #: Seconds in-flight requests get to finish after SIGTERM before the box exits.
    shutdown_grace_s: float = 10.0


@dataclass(frozen=True)
class SandboxSettings:
    """Defaults for every tenant; a tenant.toml [limits] table may lower or raise them."""

    #: Linear-memory limit of one module instance, in MiB.
    memory_mib: int = 128
    #: Fuel (roughly, wasm instructions) one call may burn before it is stopped.
    fuel: int = 2_000_000_000
    #: Wall-clock limit of one call, in milliseconds (epoch interruption).
    timeout_ms: int = 5_000
    #: Largest reply a module may return, in bytes.
    max_reply_bytes: int = 4 * MIB
    #: Warm instances kept per tenant.
    max_instances: int = 4
    #: Calls one tenant may run at once; more wait, then get "tenant busy".
    max_concurrent_calls: int = 8
    #: Epoch tick of the wall-clock ticker thread, in milliseconds.
    tick_ms: int = 10
    #: Fuel a call may burn on the event loop before it is moved to a worker thread; 0 runs
    #: every call in a worker. Small calls answered inline skip a thread hop that costs several
    #: times the call, and the budget keeps a call's loop time below the ~0.5 ms of Python every
    #: request costs anyway, so no tenant gains loop time by it.
    inline_fuel: int = 100_000


@dataclass(frozen=True)
class StoreSettings:
    #: SQLite database path; empty means <state_dir>/smcp-box.db.
    database: str = ""
    #: Encrypt sensitive columns. Only the benchmark turns this off; never in production.
    encrypt: bool = True
    #: SSE events kept per session for Last-Event-ID replay (oldest are pruned first).
    max_events_per_session: int = 1_000
    #: kv quota per tenant: number of keys.
    kv_max_keys: int = 10_000
    #: kv quota per tenant: largest value, in bytes.
    kv_max_value_bytes: int = 1 * MIB
    #: kv quota per tenant: total bytes of keys and values.
    kv_max_total_bytes: int = 64 * MIB


@dataclass(frozen=True)
class SessionSettings:
    #: Legacy-era sessions idle this long (seconds) are ended and their events deleted.
    idle_timeout_s: float = 3_600.0


@dataclass(frozen=True)
class AuditSettings:
    #: Days audit rows are kept before background pruning (a signed checkpoint remains).
    retention_days: int = 30


@dataclass(frozen=True)
class Settings:
    #: Durable state: database and data key. Default $STATE_DIRECTORY or ./.smcp-box/state.
    state_dir: str = ""
    #: Compiled-module cache. Default $CACHE_DIRECTORY or ./.smcp-box/cache.
    cache_dir: str = ""
    #: Admin socket and other runtime files. Default $RUNTIME_DIRECTORY or ./.smcp-box/run.
    runtime_dir: str = ""
    #: systemd credentials (data-key, TLS key). Default $CREDENTIALS_DIRECTORY, else unused.
    credentials_dir: str = ""
    #: Folder of tenant folders, each holding a tenant.toml.
    tenants_dir: str = "tenants"
    #: Log level: debug, info, warning, error.
    log_level: str = "info"
    server: ServerSettings = field(default_factory=ServerSettings)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)

    # --- resolved paths -------------------------------------------------------------------

    def state_path(self) -> Path:
        return _resolve_dir(self.state_dir, "STATE_DIRECTORY", "state")

    def cache_path(self) -> Path:
        return _resolve_dir(self.cache_dir, "CACHE_DIRECTORY", "cache")

    def runtime_path(self) -> Path:
        return _resolve_dir(self.runtime_dir, "RUNTIME_DIRECTORY", "run")

    def credentials_path(self) -> Path | None:
        chosen = self.credentials_dir or os.environ.get("CREDENTIALS_DIRECTORY", "")
        return Path(chosen) if chosen else None

    def database_path(self) -> Path:
        if self.store.database:
            return Path(self.store.database)
        return self.state_path() / "smcp-box.db"

    def tenants_path(self) -> Path:
        return Path(self.tenants_dir)


def _resolve_dir(explicit: str, systemd_variable: str, fallback: str) -> Path:
    if explicit:
        return Path(explicit)
    # systemd may pass several colon-separated directories; the first is ours.
    from_systemd = os.environ.get(systemd_variable, "").split(":")[0]
    if from_systemd:
        return Path(from_systemd)
    return Path(".smcp-box") / fallback


# --- loading ------------------------------------------------------------------------------

_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "sandbox": SandboxSettings,
    "store": StoreSettings,
    "sessions": SessionSettings,
    "audit": AuditSettings,
}


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings tree from the layers; raise ConfigError naming any bad key or value.

    ``overrides`` holds command-line flags as dotted names (``"server.port"``) or top-level names.
    """
    settings = Settings()
    if path is not None:
        settings = _apply_mapping(settings, _read_toml(path), source=str(path))
    env = os.environ if environ is None else environ
    settings = _apply_mapping(settings, _env_layer(env), source="environment")
    if overrides:
        nested: dict[str, Any] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, key = dotted.rpartition(".")
            target = nested.setdefault(section, {}) if section else nested
            target[key] = value
        settings = _apply_mapping(settings, nested, source="command line")
    assert isinstance(settings, Settings)
    _validate(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    top_level = {f.name for f in fields(Settings)} - set(_SECTIONS)
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in top_level:
            layer[key] = raw
            continue
        for section, section_type in _SECTIONS.items():
            prefix = section + "_"
            if key.startswith(prefix) and key[len(prefix) :] in _field_names(section_type):
                layer.setdefault(section, {})[key[len(prefix) :]] = raw
                break
        else:
            raise ConfigError(
                f"unknown environment variable {name}: no setting has that name "
                "(see config.example.toml for every setting)"
            )
    return layer


def _field_names(cls: type[Any]) -> set[str]:
    return {f.name for f in fields(cls)}


def _apply_mapping(obj: Any, mapping: Mapping[str, Any], *, source: str, where: str = "") -> Any:
    known = {f.name: f for f in fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for key, value in mapping.items():
        qualified = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"unknown setting {qualified!r} in {source}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting {qualified!r} in {source} must be a table")
            changes[key] = _apply_mapping(current, value, source=source, where=qualified + ".")
        else:
            changes[key] = _coerce(value, hints[key], qualified, source)
    return replace(obj, **changes) if changes else obj


def _coerce(value: Any, hint: Any, name: str, source: str) -> Any:
    """Parse ``value`` (from TOML or a string from the environment) as the field's type."""
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
                return True
            if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if hint is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if hint is str:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError("expected a string")
            return str(value)
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
        if isinstance(hint, types.UnionType):  # pragma: no cover - no such fields yet
            raise ValueError("unsupported type")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} in {source}: {value!r} is not valid ({exc})") from None
    raise ConfigError(f"setting {name!r} has an unsupported type")  # pragma: no cover


def _validate(settings: Settings) -> None:
    problems: list[str] = []
    if not 0 < settings.server.port < 65536:
        problems.append("server.port must be between 1 and 65535")
    if settings.server.max_body_bytes < 1024:
        problems.append("server.max_body_bytes must be at least 1024")
    if not 1.0 <= settings.server.server_request_timeout_s <= 86_400.0:
        problems.append("server.server_request_timeout_s must be between 1 and 86400 seconds")
    if bool(settings.server.tls_cert) != bool(settings.server.tls_key):
        problems.append("server.tls_cert and server.tls_key must be set together")
    limits = settings.sandbox
    if not 1 <= limits.memory_mib <= 4096:
        problems.append("sandbox.memory_mib must be between 1 and 4096")
    if limits.fuel < 1_000:
        problems.append("sandbox.fuel must be at least 1000")
    if limits.timeout_ms < 1:
        problems.append("sandbox.timeout_ms must be positive")
    if limits.max_instances < 1 or limits.max_concurrent_calls < 1:
        problems.append("sandbox.max_instances and sandbox.max_concurrent_calls must be >= 1")
    if not 1 <= limits.tick_ms <= 1_000:
        problems.append("sandbox.tick_ms must be between 1 and 1000")
    if not 0 <= limits.inline_fuel <= 10_000_000:
        problems.append("sandbox.inline_fuel must be between 0 and 10000000")
    if settings.log_level not in {"debug", "info", "warning", "error"}:
        problems.append("log_level must be one of debug, info, warning, error")
    if settings.audit.retention_days < 1:
        problems.append("audit.retention_days must be at least 1")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """A plain dict of the tree, for ``config check`` and the admin status view."""
    return dataclasses.asdict(settings)
