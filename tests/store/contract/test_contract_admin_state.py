"""Contract: tenants' admin state and module bytes, secrets, approvals and baselines."""

from __future__ import annotations

import hashlib

from smcp_box.store import Store
from smcp_box.store.baselines import BaselineRow
from smcp_box.store.tenant_state import TenantAdminState

from .conftest import Backend

MANIFEST = 'name = "added"\n'


async def test_tenant_admin_state_round_trips(store: Store) -> None:
    folder = TenantAdminState("folder-t", enabled=False, limits={"timeout_ms": 5})
    await store.save_tenant_state(folder)
    assert await store.add_tenant_state_if_absent(TenantAdminState("folder-t")) is False
    assert await store.add_tenant_state_if_absent(TenantAdminState("other")) is True
    got = await store.tenant_state("folder-t")
    assert got is not None
    assert (got.enabled, dict(got.limits), got.removed) == (False, {"timeout_ms": 5}, False)
    assert sorted(await store.tenant_states()) == ["folder-t", "other"]
    assert await store.delete_tenant_state("other") is True
    assert await store.delete_tenant_state("other") is False


async def test_an_added_tenant_keeps_its_module_bytes_on_every_box(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    module = bytes(range(256)) * 64
    sha = hashlib.sha256(module).hexdigest()
    added = TenantAdminState("added", origin="admin", manifest=MANIFEST, module_sha256=sha)
    await first.save_added_tenant(added, module)
    assert await second.added_tenant_module("added") == module
    state = await second.tenant_state("added")
    assert state is not None
    assert (state.origin, state.manifest) == ("admin", MANIFEST)
    assert await second.added_tenant_module("folder-only") is None
    assert await second.delete_tenant_state("added") is True
    assert await first.added_tenant_module("added") is None


async def test_secrets_are_sealed_and_listed_without_values(backend: Backend) -> None:
    store = await backend.open()
    await store.set_secret("t", "API_TOKEN", "visible-secret-value")
    await store.set_secret("t", "API_TOKEN", "visible-secret-value-2")
    await store.set_secret("u", "OTHER", "x")
    assert await store.all_secrets() == {
        "t": {"API_TOKEN": "visible-secret-value-2"},
        "u": {"OTHER": "x"},
    }
    assert [(t, n) for t, n, _ in await store.secret_names("t")] == [("t", "API_TOKEN")]
    for row in await backend.raw("SELECT value_enc FROM tenant_secrets"):
        assert b"visible" not in bytes(row[0])
    assert await store.delete_secret("t", "API_TOKEN") is True
    assert await store.delete_tenant_secrets("u") == 1
    assert await store.all_secrets() == {}


async def test_approvals_keep_their_order(store: Store) -> None:
    first = await store.record_approval("t", "a" * 64, [{"name": "x"}], actor="admin", reason="r1")
    second = await store.record_approval("t", "b" * 64, [{"name": "y"}], actor="admin", reason="r2")
    assert second.id > first.id
    history = await store.approvals("t")
    assert [(a.definitions_sha256, a.reason) for a in history] == [
        ("a" * 64, "r1"),
        ("b" * 64, "r2"),
    ]
    assert history[1].definitions == ({"name": "y"},)
    assert await store.delete_tenant_approvals("t") == 2


async def test_baselines_upsert_and_delete(store: Store) -> None:
    await store.save_baselines(
        [BaselineRow("t", "a", {"calls": 1}, False), BaselineRow("t", "b", {"calls": 2}, True)]
    )
    await store.save_baselines([BaselineRow("t", "a", {"calls": 3}, True)])
    rows = await store.baselines()
    assert [(r.tool, r.profile, r.blocked) for r in rows] == [
        ("a", {"calls": 3}, True),
        ("b", {"calls": 2}, True),
    ]
    assert await store.delete_baselines("t", "a") == 1
    assert await store.delete_baselines("t") == 1
