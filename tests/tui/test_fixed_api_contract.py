"""The snapshot tests' FixedApi against the real admin API (AdminClient on a running box): if the
fake drifts (a method missing, a field renamed, a refusal the box would not make), these fail
rather than the snapshots showing data the box cannot send."""

from __future__ import annotations

import inspect
import io
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from smcp_box.admin.client import AdminClient
from smcp_box.errors import AdminRequestFailed
from smcp_box.tui.api import AdminApi
from tests.admin.support import RunningBox
from tests.tui.fixed_api import FixedApi

#: The AdminApi methods, as the protocol declares them.
PROTOCOL_METHODS = sorted(
    name
    for name, member in vars(AdminApi).items()
    if inspect.iscoroutinefunction(member) and not name.startswith("_")
)


def _parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(function).parameters.values())[1:]  # without self


@pytest.mark.parametrize("implementation", [FixedApi, AdminClient])
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_every_admin_api_method_is_implemented_alike(implementation: type, method: str) -> None:
    wanted = _parameters(getattr(AdminApi, method))
    found = _parameters(getattr(implementation, method))
    assert [(p.name, p.kind, p.default) for p in found[: len(wanted)]] == [
        (p.name, p.kind, p.default) for p in wanted
    ]
    # More parameters are fine only if the TUI may leave them out.
    assert all(p.default is not inspect.Parameter.empty for p in found[len(wanted) :])


#: Objects whose keys are data (tenant names, limit or annotation names), not fields.
MAPS = frozenset(
    {
        ".missing",
        ".admin_limit_overrides",
        ".tenants[0].tools[0].annotations",
    }
)
#: In /metrics, errors are counts by kind (data, not fields).
METRICS_MAPS = MAPS | {".tenants[0].errors", ".total.errors"}

#: Fields the box sends only when they have a value (a tool's title and annotations).
OPTIONAL = frozenset({".tenants[0].tools[0].title", ".tenants[0].tools[0].annotations"})


def _shape_differences(
    fake: Any, real: Any, path: str = "", maps: frozenset[str] = MAPS
) -> Iterator[str]:
    """Where ``fake`` has keys ``real`` lacks or lacks keys it has (lists: their first rows;
    an empty list on either side says nothing about the rows' shape)."""
    if path in maps:
        if not isinstance(fake, dict) or not isinstance(real, dict):
            yield f"{path}: not an object on both sides"
    elif isinstance(real, dict) and isinstance(fake, dict):
        for key in sorted(set(real) | set(fake)):
            if key not in fake:
                yield f"{path}.{key}: only the box sends it"
            elif key not in real:
                if f"{path}.{key}" not in OPTIONAL:
                    yield f"{path}.{key}: only the fake sends it"
            else:
                yield from _shape_differences(fake[key], real[key], f"{path}.{key}", maps)
    elif isinstance(real, list) and isinstance(fake, list):
        if real and fake:
            yield from _shape_differences(fake[0], real[0], f"{path}[0]", maps)
    elif (isinstance(real, dict | list) or isinstance(fake, dict | list)) and (
        # None is a value either side may send (a tenant without tools, an unsigned module).
        real is not None and fake is not None
    ):
        yield f"{path}: {type(fake).__name__} in the fake, {type(real).__name__} from the box"


async def _box_with_one_of_each(rb: RunningBox) -> AdminClient:
    client = rb.client
    await client.add_oauth_client("Editor", ["http://127.0.0.1/callback"])
    await client.set_secret("utils", "API_TOKEN", "s3cret")
    await rb.box.store.tasks.create(
        "utils",
        "anonymous",
        "echo",
        {"name": "echo"},
        ttl_ms=60_000,
        poll_interval_ms=1000,
        timeout_s=10,
        max_open=5,
    )
    await client.put_blob("utils", "notes.md", io.BytesIO(b"# notes"), "text/markdown")
    return client


async def test_fixed_answers_have_the_shape_of_the_box(rb: RunningBox) -> None:
    real = await _box_with_one_of_each(rb)
    fake = FixedApi()
    reads: list[tuple[str, Callable[[AdminApi], Awaitable[Any]]]] = [
        ("tenants", lambda api: api.tenants()),
        ("oauth_clients", lambda api: api.oauth_clients()),
        ("secrets", lambda api: api.secrets()),
        ("catalog", lambda api: api.catalog()),
        ("tasks", lambda api: api.tasks()),
    ]
    metrics_differences = _shape_differences(
        await fake.metrics(), await real.metrics(), maps=METRICS_MAPS
    )
    assert list(metrics_differences) == []
    blob_differences = _shape_differences(await fake.blobs("echo"), await real.blobs("utils"))
    assert list(blob_differences) == []
    for name, read in reads:
        differences = list(_shape_differences(await read(fake), await read(real)))
        assert differences == [], name
    tenant_differences = _shape_differences(await fake.tenant("echo"), await real.tenant("utils"))
    assert list(tenant_differences) == []
    # The status's parts the TUI reads (the box also sends more: paths, the settings tree).
    real_status, fake_status = await real.status(), await fake.status()
    for part in ("tenants", "box", "fleet", "database"):
        assert list(_shape_differences(fake_status[part], real_status[part])) == [], part
    assert set(fake_status) <= set(real_status)


async def _outcome(call: Awaitable[Any]) -> Any:
    """An answer's keys, or a refusal's status, kind and message."""
    try:
        answer = await call
    except AdminRequestFailed as exc:
        return ("refused", exc.status, exc.error_kind, exc.message)
    return sorted(answer)


async def test_fixed_changes_are_accepted_and_refused_like_the_box(rb: RunningBox) -> None:
    real, fake = rb.client, FixedApi()
    calls: list[Callable[[AdminApi], Awaitable[Any]]] = [
        lambda api: api.add_oauth_client("Editor", ["http://127.0.0.1/callback"]),
        lambda api: api.add_oauth_client("Web", ["http://example.com/callback"]),
        lambda api: api.add_oauth_client("Frag", ["https://example.com/cb#x"]),
        lambda api: api.add_oauth_client("", ["https://example.com/cb"]),
        lambda api: api.add_oauth_client("Nothing", []),
        lambda api: api.remove_oauth_client("pre_nobody"),
        lambda api: api.set_secret("utils", "API_TOKEN", "s3cret"),
        lambda api: api.set_secret("utils", "9bad name", "s3cret"),
        lambda api: api.delete_secret("utils", "API_TOKEN"),
        lambda api: api.delete_secret("utils", "API_TOKEN"),
        lambda api: api.delete_blob("utils", "nothing.txt"),
    ]
    for call in calls:
        assert await _outcome(call(fake)) == await _outcome(call(real))
    # Removing what was added answers alike too.
    for api in (fake, real):
        clients = (await api.oauth_clients())["clients"]
        added = next(c for c in clients if c["client_name"] == "Editor")
        assert await api.remove_oauth_client(added["client_id"]) == {"removed": added["client_id"]}
