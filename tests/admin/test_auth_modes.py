"""How the admin surfaces show a tenant's auth mode, now that it may be oauth or both."""

from __future__ import annotations

import re

from smcp_box.admin.cli_format import tenants_text
from tests.admin.support import RunningBox


def test_tenant_list_names_each_mode() -> None:
    body = {
        "tenants": [
            {"name": n, "enabled": True, "auth": a, "calls": 0, "url": f"/t/{n}/mcp"}
            for n, a in (("k", "api_key"), ("o", "oauth"), ("b", "both"), ("p", "none"))
        ],
        "failed": [],
    }
    table = tenants_text(body)
    for name, shown in (("k", "api_key"), ("o", "oauth"), ("b", "both"), ("p", "public")):
        assert re.search(rf"(?m)^{name}\s+enabled\s+{shown}\s", table), table


async def test_a_key_for_an_oauth_only_tenant_gets_a_note(rb: RunningBox) -> None:
    manifest = rb.tenants_dir / "utils" / "tenant.toml"
    manifest.write_text(re.sub(r'(?m)^auth = ".*"$', 'auth = "oauth"', manifest.read_text()))
    await rb.client.reload_tenant("utils")
    created = await rb.client.create_key("utils")
    assert "OAuth access tokens only" in created["note"]
    listed = await rb.client.tenant("utils")
    assert listed["auth"] == "oauth"
