"""Quotas: the token bucket, address lockout, allowed networks, the fuel window, tenant.toml
[quotas] through the registry, and client addresses behind trusted proxies."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from smcp_box.config import QuotaSettings, SandboxSettings, load_settings
from smcp_box.errors import (
    AddressLockedOut,
    AddressNotAllowed,
    ConfigError,
    FuelQuotaExceeded,
    KvWriteRefused,
    RateLimited,
    SessionQuotaExceeded,
    StreamQuotaExceeded,
)
from smcp_box.protocol.http import client_address
from smcp_box.sandbox import Sandbox
from smcp_box.seams import CallContext, JsonObject
from smcp_box.store import Store
from smcp_box.tenancy.quotas import (
    PROMPT_REFUSALS_PER_S,
    REFUSAL_HOLD_S,
    Admission,
    FuelWindow,
    TenantPolicy,
    TenantQuotas,
    parse_networks,
    resolve_quotas,
)
from smcp_box.tenancy.registry import TenantRegistry

REPO = Path(__file__).resolve().parents[2]


def quotas(**changes: float) -> TenantQuotas:
    base = resolve_quotas(QuotaSettings(), {})
    values = {**base.__dict__, **changes}
    return TenantQuotas(**values)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admission_for(
    policy: TenantPolicy, clock: Clock, settings: QuotaSettings | None = None
) -> Admission:
    return Admission(
        settings or QuotaSettings(),
        lambda name: policy if name == "alpha" else None,
        clock=clock,
    )


def test_bucket_allows_the_burst_then_refuses_with_retry_after() -> None:
    clock = Clock()
    admission = admission_for(TenantPolicy(quotas(requests_per_s=2.0, burst=3)), clock)
    for _ in range(3):
        admission.admit_request("alpha")
    with pytest.raises(RateLimited) as refused:
        admission.admit_request("alpha")
    assert refused.value.http_status == 429
    assert refused.value.retry_after == 1
    assert refused.value.data == {"quota": "requests_per_s", "retryAfterSeconds": 1}
    # Half a second refills one token at 2/s; other tenants were never limited.
    clock.now += 0.5
    admission.admit_request("alpha")
    admission.admit_request("beta")


def test_zero_rate_means_no_limit() -> None:
    admission = admission_for(TenantPolicy(quotas(requests_per_s=0, burst=1)), Clock())
    for _ in range(100):
        admission.admit_request("alpha")


def test_failed_authentications_lock_the_address_out_for_the_window() -> None:
    clock = Clock()
    settings = QuotaSettings(auth_failures_per_ip=3, auth_failure_window_s=60)
    admission = admission_for(TenantPolicy(quotas()), clock, settings)
    for _ in range(3):
        admission.check_address("alpha", "192.0.2.7")
        admission.auth_failed("192.0.2.7")
    with pytest.raises(AddressLockedOut) as refused:
        admission.check_address("alpha", "192.0.2.7")
    assert refused.value.retry_after == 60
    admission.check_address("alpha", "192.0.2.8")  # another address is not affected
    clock.now += 60
    admission.check_address("alpha", "192.0.2.7")


def test_allowed_networks() -> None:
    policy = TenantPolicy(quotas(), parse_networks(["10.0.0.0/8", "2001:db8::/32"]))
    admission = admission_for(policy, Clock())
    admission.check_address("alpha", "10.1.2.3")
    admission.check_address("alpha", "::ffff:10.1.2.3")
    admission.check_address("alpha", "2001:db8::1")
    for outside in ("192.168.1.1", "127.0.0.1", None, "not-an-address"):
        with pytest.raises(AddressNotAllowed):
            admission.check_address("alpha", outside)
    with pytest.raises(ConfigError, match=r"'10\.0\.0\.0/33' is not an IP address or CIDR"):
        parse_networks(["10.0.0.0/33"])


def test_session_and_stream_counts() -> None:
    admission = admission_for(TenantPolicy(quotas(max_sessions=2, max_sse_streams=1)), Clock())
    admission.check_new_session("alpha", 1)
    with pytest.raises(SessionQuotaExceeded, match="max_sessions"):
        admission.check_new_session("alpha", 2)
    admission.check_new_stream("alpha", 0)
    with pytest.raises(StreamQuotaExceeded, match="max_sse_streams"):
        admission.check_new_stream("alpha", 1)


def test_refusals_are_audited_once_a_minute_with_the_count() -> None:
    clock = Clock()
    admission = admission_for(TenantPolicy(quotas()), clock)
    assert admission.audit_due("alpha", "requests_per_s") == 1
    assert admission.audit_due("alpha", "requests_per_s") is None
    assert admission.audit_due("alpha", "requests_per_s") is None
    assert admission.audit_due("beta", "requests_per_s") == 1
    clock.now += 60
    assert admission.audit_due("alpha", "requests_per_s") == 3


def test_fuel_window_rolls_over_a_minute() -> None:
    window = FuelWindow()
    window.charge(1000.0, 600)
    window.check(1000.5, 1000, "alpha")
    window.charge(1030.0, 400)
    with pytest.raises(FuelQuotaExceeded) as refused:
        window.check(1030.0, 1000, "alpha")
    assert refused.value.retry_after == 30
    window.check(1030.0, 0, "alpha")  # 0: no budget
    window.check(1060.0, 1000, "alpha")  # the first charge left the window


def test_quota_bounds_and_types_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"burst = 0 is out of range: allowed 1\.\.10000000"):
        resolve_quotas(QuotaSettings(), {"burst": 0})
    with pytest.raises(ConfigError, match="unknown quota 'rps'"):
        resolve_quotas(QuotaSettings(), {"rps": 5})
    assert resolve_quotas(QuotaSettings(), {"requests_per_s": 2.5}).requests_per_s == 2.5
    config = tmp_path / "box.toml"
    config.write_text("[quotas]\nmax_sessions = 0\n")
    with pytest.raises(ConfigError, match="max_sessions = 0 is out of range"):
        load_settings(config, environ={})
    config.write_text('[server]\ntrusted_proxies = ["10.0.0.0/8", "proxy"]\n')
    with pytest.raises(ConfigError, match="'proxy' is not an IP address or CIDR network"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("10.0.0.5", "198.51.100.9", (), "10.0.0.5"),  # header ignored without trusted proxies
        ("10.0.0.5", "198.51.100.9", ("10.0.0.0/8",), "198.51.100.9"),
        ("192.0.2.1", "198.51.100.9", ("10.0.0.0/8",), "192.0.2.1"),  # untrusted peer
        # A client's own forged entry sits left of what the proxies appended: not believed.
        ("10.0.0.5", "6.6.6.6, 198.51.100.9, 10.0.0.4", ("10.0.0.0/8",), "198.51.100.9"),
        ("10.0.0.5", "garbage, 10.0.0.4", ("10.0.0.0/8",), "10.0.0.4"),
        ("10.0.0.5", None, ("10.0.0.0/8",), "10.0.0.5"),
        # A dual-stack listener reports an IPv4 peer as IPv4-mapped IPv6: a proxy written as
        # IPv4 is that peer, and the client comes out as plain IPv4 either way.
        ("::ffff:10.0.0.5", "198.51.100.9", ("10.0.0.0/8",), "198.51.100.9"),
        ("::ffff:10.0.0.5", "::ffff:198.51.100.9", ("10.0.0.0/8",), "198.51.100.9"),
        ("::ffff:192.0.2.1", "198.51.100.9", ("10.0.0.0/8",), "192.0.2.1"),
        ("::ffff:192.0.2.1", None, (), "192.0.2.1"),
        ("fe80::1%eth0", None, (), "fe80::1"),
        ("2001:db8::7", "198.51.100.9", ("2001:db8::/32",), "198.51.100.9"),
        ("2001:db8::7", "198.51.100.9", ("10.0.0.0/8",), "2001:db8::7"),
        (None, "198.51.100.9", ("10.0.0.0/8",), None),
    ],
)
def test_client_address_behind_trusted_proxies(
    peer: str | None, forwarded: str | None, trusted: tuple[str, ...], client: str | None
) -> None:
    assert client_address(peer, forwarded, trusted) == client


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),  # the same host on a dual-stack listener
        ("::ffff:192.0.2.1", False),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
        ("not an address", False),
        (None, False),
    ],
)
def test_allowed_networks_read_addresses_as_client_address_does(
    address: str | None, allowed: bool
) -> None:
    policy = TenantPolicy(quotas(), networks=parse_networks(["10.0.0.0/8"]))
    admission = admission_for(policy, Clock())
    if allowed:
        admission.check_address("alpha", address)
    else:
        with pytest.raises(AddressNotAllowed):
            admission.check_address("alpha", address)


def test_a_trusted_proxy_written_as_ipv4_matches_its_ipv4_mapped_peer() -> None:
    # The proxy is configured as 127.0.0.1; a dual-stack listener reports it as ::ffff:127.0.0.1.
    assert client_address("::ffff:127.0.0.1", "203.0.113.9", ("127.0.0.1",)) == "203.0.113.9"
    # Lockouts count one client once, whichever way its address arrived.
    clock = Clock()
    admission = admission_for(TenantPolicy(quotas()), clock, QuotaSettings(auth_failures_per_ip=1))
    admission.auth_failed(client_address("::ffff:198.51.100.7", None, ()))
    with pytest.raises(AddressLockedOut):
        admission.check_address("alpha", client_address("198.51.100.7", None, ()))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "cache")
    yield box
    box.close()


async def test_tenant_toml_quotas_reach_the_tenant_and_fuel_per_minute_refuses(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(REPO / "tenants" / "utils", tenants / "utils")
    manifest = tenants / "utils" / "tenant.toml"
    # Top-level keys first: utils' tenant.toml ends inside a table.
    manifest.write_text(
        'allowed_networks = ["127.0.0.0/8"]\n'
        + manifest.read_text()
        + "\n[quotas]\nburst = 7\nfuel_per_minute = 1000\n"
    )
    clock = Clock()
    registry = TenantRegistry(
        sandbox=sandbox,
        kv=None,  # type: ignore[arg-type]  # utils imports no kv function
        defaults=SandboxSettings(inline_fuel=0),
        clock=clock,
        quota_defaults=QuotaSettings(max_sessions=9),
    )
    registry.load_folder(tenants)
    policy = registry.policy("utils")
    assert policy is not None
    assert (policy.quotas.burst, policy.quotas.max_sessions) == (7, 9)
    assert [str(n) for n in policy.networks] == ["127.0.0.0/8"]
    tenant = registry.get("utils")
    assert tenant is not None

    async def notify(message: JsonObject) -> None:
        pass

    call: JsonObject = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "hash", "arguments": {"text": "abc"}},
    }
    # The first call runs (the budget is checked before a call) and burns more than 1000.
    assert await tenant.call(call, CallContext("utils", "2025-11-25", notify)) is not None
    with pytest.raises(FuelQuotaExceeded, match="fuel_per_minute"):
        await tenant.call(call, CallContext("utils", "2025-11-25", notify))
    clock.now += 61
    assert await tenant.call(call, CallContext("utils", "2025-11-25", notify)) is not None
    # A reload keeps the minute's account (no fresh budget by reloading).
    registry.load_folder(tenants)
    reloaded = registry.get("utils")
    assert reloaded is not None
    with pytest.raises(FuelQuotaExceeded):
        await reloaded.call(call, CallContext("utils", "2025-11-25", notify))


async def test_tenant_toml_kv_quota_refuses_the_write_past_it_and_notes_the_refusal(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(REPO / "tenants" / "notes", tenants / "notes")
    manifest = tenants / "notes" / "tenant.toml"
    # Each note is one key, plus the id counter: two keys for the first note, three for two.
    manifest.write_text(manifest.read_text() + "\n[quotas]\nkv_max_keys = 2\n")
    store = await Store.open(tmp_path / "box.db", secrets.token_bytes(32))
    try:
        registry = TenantRegistry(
            sandbox=sandbox, kv=store, defaults=SandboxSettings(), clock=Clock()
        )
        registry.load_folder(tenants)
        tenant = registry.get("notes")
        assert tenant is not None

        async def notify(message: JsonObject) -> None:
            pass

        def create(request_id: int) -> JsonObject:
            arguments = {"title": f"t{request_id}", "body": "b"}
            params = {"name": "note_create", "arguments": arguments}
            return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}

        first = CallContext("notes", "2025-11-25", notify)
        reply = await tenant.call(create(1), first)  # two keys: at the quota
        assert reply is not None
        assert reply["result"].get("isError") is not True, reply
        assert first.refusals == []
        second = CallContext("notes", "2025-11-25", notify)
        reply = await tenant.call(create(2), second)  # a third key: refused
        assert reply is not None
        assert reply.get("error") or reply["result"].get("isError") is True, reply
        assert [type(r) for r in second.refusals] == [KvWriteRefused]
        assert second.refusals[0].quota == "kv_max_keys"
        assert "tenant.toml [quotas] kv_max_keys" in second.refusals[0].message
        assert (await store.kv_usage("notes"))[0] == 2
    finally:
        await store.close()


def test_rate_refusals_past_the_prompt_ones_in_a_second_are_held() -> None:
    clock = Clock()
    admission = admission_for(TenantPolicy(quotas()), clock)
    holds = [admission.refusal_hold_s("alpha") for _ in range(PROMPT_REFUSALS_PER_S + 2)]
    assert holds == [0.0] * PROMPT_REFUSALS_PER_S + [REFUSAL_HOLD_S] * 2
    # Counted per tenant: another tenant's refusals are answered at once.
    assert admission.refusal_hold_s("beta") == 0.0
    # A new second: the prompt ones again.
    clock.now += 1.0
    assert admission.refusal_hold_s("alpha") == 0.0
