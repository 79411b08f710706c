"""Per-tenant quotas and per-address limits: who may send how much, answered before any work.

The transport asks :class:`Admission` (the :class:`~smcp_box.seams.Admission` seam) at fixed
points of a request: the client's address (lockout after failed authentications, the tenant's
``allowed_networks``), each authenticated request (a token bucket per tenant), a new legacy
session and a new GET stream (counts). A tenant's fuel budget per minute is kept by the tenant
itself (:class:`FuelWindow`), since only the runtime knows what a call burned.

Everything here is in memory and O(1) per request; the state is per process, which is what a
single box needs (a fleet would move the buckets to the shared store behind the same seam).
Clocks are injected: the limits are tested without waiting.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from smcp_box.config import QUOTAS, QuotaSettings, check_quota
from smcp_box.errors import (
    AddressLockedOut,
    AddressNotAllowed,
    ConfigError,
    FuelQuotaExceeded,
    RateLimited,
    SessionQuotaExceeded,
    StreamQuotaExceeded,
)
from smcp_box.protocol.http import IpNetwork, in_networks, parse_address
from smcp_box.store.blobs import BlobQuotas

#: Addresses remembered for failed authentications; past this, expired entries are dropped
#: first, then the oldest (a flood of spoofed-looking addresses cannot grow memory unbounded).
_MAX_TRACKED_ADDRESSES: Final = 100_000
#: A refusal of one quota on one tenant is audited at most this often (the rest are counted
#: into the next row), so a flood cannot flood the audit log too.
AUDIT_EVERY_S: Final = 60.0
#: Rate refusals (429) of one tenant answered at once within one second; the ones past them
#: are held first (:meth:`Admission.refusal_hold_s`).
PROMPT_REFUSALS_PER_S: Final = 20
#: How long such a refusal is held before it is answered: the shortest ``Retry-After`` a rate
#: refusal gives, so a client that waits as it is told never meets a hold. One that ignores it
#: and sends again at once gets its next answer no sooner than it was told to retry: each of
#: its connections then costs the event loop one cheap sleeping task a second instead of a
#: request parsed, authenticated and answered every few hundred microseconds, time the other
#: tenants' requests waited for (a flood of refused ``tools/list`` doubled another tenant's
#: p99). The per-address connection caps bound how many held refusals one client can have.
REFUSAL_HOLD_S: Final = 1.0


@dataclass(frozen=True)
class TenantQuotas:
    requests_per_s: float
    burst: int
    max_sessions: int
    max_sse_streams: int
    fuel_per_minute: int
    max_open_tasks: int
    #: 0: the box's [store] limit.
    kv_max_keys: int = 0
    kv_max_total_bytes: int = 0
    blob_max_bytes: int = QuotaSettings.blob_max_bytes
    blob_max_total_bytes: int = QuotaSettings.blob_max_total_bytes
    blob_max_count: int = QuotaSettings.blob_max_count
    blob_resource_max_bytes: int = QuotaSettings.blob_resource_max_bytes


@dataclass(frozen=True)
class TenantPolicy:
    """What :class:`Admission` needs to know of one tenant."""

    quotas: TenantQuotas
    #: Client networks allowed to reach the tenant (tenant.toml ``allowed_networks``); empty
    #: means any.
    networks: tuple[IpNetwork, ...] = ()


def resolve_quotas(defaults: QuotaSettings, overrides: Mapping[str, object]) -> TenantQuotas:
    """A tenant's quotas: the box defaults with its tenant.toml ``[quotas]`` on top; every value
    held to :data:`~smcp_box.config.QUOTAS` with the shared message."""
    merged: dict[str, int | float] = {name: getattr(defaults, name) for name in QUOTAS}
    merged.update({name: check_quota(name, value) for name, value in overrides.items()})
    return TenantQuotas(
        requests_per_s=float(merged["requests_per_s"]),
        burst=int(merged["burst"]),
        max_sessions=int(merged["max_sessions"]),
        max_sse_streams=int(merged["max_sse_streams"]),
        fuel_per_minute=int(merged["fuel_per_minute"]),
        max_open_tasks=int(merged["max_open_tasks"]),
        kv_max_keys=int(merged["kv_max_keys"]),
        kv_max_total_bytes=int(merged["kv_max_total_bytes"]),
        blob_max_bytes=int(merged["blob_max_bytes"]),
        blob_max_total_bytes=int(merged["blob_max_total_bytes"]),
        blob_max_count=int(merged["blob_max_count"]),
        blob_resource_max_bytes=int(merged["blob_resource_max_bytes"]),
    )


def blob_quotas(quotas: TenantQuotas) -> BlobQuotas:
    """The store's view of a tenant's blob quotas."""
    return BlobQuotas(
        max_bytes=quotas.blob_max_bytes,
        max_total_bytes=quotas.blob_max_total_bytes,
        max_count=quotas.blob_max_count,
    )


def parse_networks(entries: object) -> tuple[IpNetwork, ...]:
    """tenant.toml ``allowed_networks``: a list of addresses or CIDR networks."""
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError('allowed_networks must be a list of CIDR strings, like ["10.0.0.0/8"]')
    networks: list[IpNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                f"allowed_networks: {entry!r} is not an IP address or CIDR network"
            ) from None
    return tuple(networks)


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``capacity``; a request takes one."""

    rate: float
    capacity: int
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """Take a token; None when granted, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


@dataclass
class FuelWindow:
    """Fuel burned over the last minute, in one-second slots (O(1) per call, 60 slots)."""

    slots: dict[int, int] = field(default_factory=dict)

    def used(self, now: float) -> int:
        oldest = int(now) - 59
        for second in [s for s in self.slots if s < oldest]:
            del self.slots[second]
        return sum(self.slots.values())

    def check(self, now: float, budget: int, tenant: str) -> None:
        """Raise FuelQuotaExceeded when ``budget`` (>0) is spent for the rolling minute."""
        if budget <= 0:
            return
        used = self.used(now)
        if used < budget:
            return
        # Waiting for the oldest second to leave the window frees at least its fuel.
        retry = max(1.0, min(self.slots) + 60 - now) if self.slots else 1.0
        raise FuelQuotaExceeded(
            f"Quota exceeded: tenant {tenant!r} has burned {used} of its fuel_per_minute "
            f"({budget}); try again in {math.ceil(retry)} s",
            quota="fuel_per_minute",
            retry_after=math.ceil(retry),
        )

    def charge(self, now: float, fuel: int) -> None:
        second = int(now)
        self.slots[second] = self.slots.get(second, 0) + fuel


@dataclass
class _Failures:
    count: int
    window_start: float


class Admission:
    """Implements :class:`smcp_box.seams.Admission` for one box."""

    def __init__(
        self,
        settings: QuotaSettings,
        policy: Callable[[str], TenantPolicy | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        refusal_hold_s: float = REFUSAL_HOLD_S,
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._clock = clock
        self._refusal_hold_s = refusal_hold_s
        #: Per tenant: the second (of the clock) its rate refusals are counted in, and how many.
        self._refusals: dict[str, tuple[int, int]] = {}
        #: Rate refusals held so far (for the metrics and tests).
        self.held_refusals = 0
        self._buckets: dict[str, TokenBucket] = {}
        self._failures: dict[str, _Failures] = {}
        self._last_audit: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def update_settings(self, settings: QuotaSettings) -> None:
        """A reload's new defaults; buckets refill at their new rate from now on."""
        self._settings = settings

    # --- the client's address ------------------------------------------------------------

    def check_address(self, tenant: str, address: str | None) -> None:
        """Refuse a locked-out address (429) or one outside the tenant's networks (403)."""
        if address is not None:
            self._check_lockout(address)
        policy = self._policy(tenant)
        if policy is None or not policy.networks:
            return
        if not in_networks(parse_address(address), policy.networks):
            raise AddressNotAllowed(
                f"Forbidden: tenant {tenant!r} does not accept requests from this address "
                "(its tenant.toml allowed_networks)"
            )

    def _check_lockout(self, address: str) -> None:
        entry = self._failures.get(address)
        if entry is None:
            return
        now = self._clock()
        window = self._settings.auth_failure_window_s
        if now - entry.window_start >= window:
            del self._failures[address]
            return
        if entry.count >= self._settings.auth_failures_per_ip:
            retry = math.ceil(entry.window_start + window - now)
            raise AddressLockedOut(
                f"Too many requests: too many failed authentications from this address; "
                f"try again in {retry} s",
                quota="auth_failures_per_ip",
                retry_after=retry,
            )

    def auth_failed(self, address: str | None) -> None:
        """Count one failed authentication against ``address``."""
        if address is None:
            return
        now = self._clock()
        entry = self._failures.get(address)
        if entry is None or now - entry.window_start >= self._settings.auth_failure_window_s:
            if len(self._failures) >= _MAX_TRACKED_ADDRESSES:
                self._forget_expired(now)
            self._failures[address] = _Failures(1, now)
            return
        entry.count += 1

    def _forget_expired(self, now: float) -> None:
        window = self._settings.auth_failure_window_s
        for address in [a for a, e in self._failures.items() if now - e.window_start >= window]:
            del self._failures[address]
        while len(self._failures) >= _MAX_TRACKED_ADDRESSES:
            del self._failures[next(iter(self._failures))]

    # --- per-tenant quotas -----------------------------------------------------------------

    def admit_request(self, tenant: str) -> None:
        """Take one request from the tenant's token bucket, or raise RateLimited (429)."""
        policy = self._policy(tenant)
        if policy is None or policy.quotas.requests_per_s <= 0:
            return
        quotas = policy.quotas
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if (
            bucket is None
            or bucket.rate != quotas.requests_per_s
            or (bucket.capacity != quotas.burst)
        ):
            # New tenant or changed quota: start full, so a reload never refuses at once.
            bucket = self._buckets[tenant] = TokenBucket(
                quotas.requests_per_s, quotas.burst, float(quotas.burst), now
            )
        wait = bucket.take(now)
        if wait is not None:
            retry = max(1, math.ceil(wait))
            raise RateLimited(
                f"Too many requests: tenant {tenant!r} allows {quotas.requests_per_s:g} "
                f"requests/s (burst {quotas.burst}); retry in {retry} s",
                quota="requests_per_s",
                retry_after=retry,
            )

    def refusal_hold_s(self, tenant: str) -> float:
        """Count one rate refusal (429) of ``tenant``; how long to hold it before answering:
        0 for the first :data:`PROMPT_REFUSALS_PER_S` within a second, then
        :data:`REFUSAL_HOLD_S` (a client ignoring ``Retry-After``)."""
        second = math.floor(self._clock())
        window, count = self._refusals.get(tenant, (second, 0))
        count = count + 1 if window == second else 1
        self._refusals[tenant] = (second, count)
        if count <= PROMPT_REFUSALS_PER_S:
            return 0.0
        self.held_refusals += 1
        return self._refusal_hold_s

    def check_new_session(self, tenant: str, open_sessions: int) -> None:
        policy = self._policy(tenant)
        if policy is not None and open_sessions >= policy.quotas.max_sessions:
            raise SessionQuotaExceeded(
                f"Quota exceeded: tenant {tenant!r} has {open_sessions} open sessions, its "
                f"max_sessions; end one (DELETE) or wait for idle ones to expire",
                quota="max_sessions",
            )

    def check_new_stream(self, tenant: str, open_streams: int) -> None:
        policy = self._policy(tenant)
        if policy is not None and open_streams >= policy.quotas.max_sse_streams:
            raise StreamQuotaExceeded(
                f"Quota exceeded: tenant {tenant!r} has {open_streams} open GET streams, its "
                "max_sse_streams; close one first",
                quota="max_sse_streams",
                retry_after=None,
            )

    # --- auditing refusals, rate-limited ---------------------------------------------------

    def audit_due(self, tenant: str, quota: str) -> int | None:
        """Whether a refusal of ``quota`` on ``tenant`` should be audited now: the number of
        refusals it stands for (itself plus those suppressed since the last row), or None."""
        key = (tenant, quota)
        now = self._clock()
        last = self._last_audit.get(key)
        if last is not None and now - last < AUDIT_EVERY_S:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last_audit[key] = now
        return 1 + self._suppressed.pop(key, 0)
