"""The catalog (issue 15): GET /catalog lists only what each credential may use; the admin
API's catalog (smcp-box catalog) lists every tenant."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from tests.admin.support import REPO, running_box, serving_mcp
from tests.admin.test_cli import smcp


def add_public_tenant(tenants: Path) -> None:
    """A third tenant, "pub": utils' module, public (auth = "none")."""
    shutil.copytree(REPO / "tenants" / "utils", tenants / "pub")
    manifest = tenants / "pub" / "tenant.toml"
    text = manifest.read_text().replace('name = "utils"', 'name = "pub"')
    manifest.write_text(text.replace('auth = "api_key"', 'auth = "none"'))


async def listed(http: httpx.AsyncClient, base: str, key: str | None) -> tuple[int, list[str]]:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    response = await http.get(f"{base}/catalog", headers=headers)
    if response.status_code != 200:
        return response.status_code, []
    return 200, [entry["name"] for entry in response.json()["tenants"]]


async def test_catalog_lists_only_what_each_credential_may_use(
    tmp_path: Path, module_cache: Path
) -> None:
    async with running_box(tmp_path, module_cache, add_public_tenant) as rb:
        store = rb.box.store
        notes_id, notes_key = await store.create_api_key("notes", "laptop")
        _, utils_key = await store.create_api_key("utils", "ci")
        async with serving_mcp(rb) as base, httpx.AsyncClient() as http:
            assert await listed(http, base, notes_key) == (200, ["notes", "pub"])
            assert await listed(http, base, utils_key) == (200, ["pub", "utils"])
            # No credential, or one no tenant accepts: nothing is revealed, not even "pub".
            anonymous = await http.get(f"{base}/catalog")
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"].startswith("Bearer ")
            assert "notes" not in anonymous.text
            assert await listed(http, base, "smcp_" + "0" * 40) == (401, [])
            await store.revoke_api_key(notes_id)
            rb.box.authenticator.forget()
            assert await listed(http, base, notes_key) == (401, [])
            # A disabled tenant cannot be used, so it is not listed.
            rb.box.tenants.require("utils").set_enabled(False)
            assert await listed(http, base, utils_key) == (401, [])
            rb.box.tenants.require("utils").set_enabled(True)

            response = await http.get(
                f"{base}/catalog", headers={"authorization": f"Bearer {utils_key}"}
            )
            (pub, utils) = response.json()["tenants"]
        assert utils["url"] == f"{base}/t/utils/mcp"
        assert utils["auth"] == ["api_key"]
        assert pub["auth"] == ["none"]
        assert utils["kind"] == "core"
        assert utils["publisher"] is None
        served = rb.box.tenants.require("utils")
        assert utils["module_sha256"] == served.manifest.sha256
        assert utils["vetting"]["status"] == "pinned"
        assert utils["vetting"]["tools_sha256"] == served.manifest.tools_sha256
        assert utils["vetting"]["findings"] == []
        tools = {tool["name"]: tool for tool in utils["tools"]}
        assert "hello" in tools
        assert set(tools["hello"]) <= {"name", "title", "description", "annotations"}
        assert any("annotations" in tool for tool in tools.values())

        # The admin sees every tenant, disabled ones too.
        rb.box.tenants.require("notes").set_enabled(False)
        admin = await smcp(rb, "catalog", "--json")
        assert admin.code == 0, admin.err
        entries = {entry["name"]: entry for entry in json.loads(admin.out)["tenants"]}
        assert sorted(entries) == ["notes", "pub", "utils"]
        assert entries["notes"]["enabled"] is False
        # notes lists its resources from kv: approvals cannot hold them, and the catalog says so.
        assert entries["notes"]["vetting"]["not_covered"] == ["resources"]
        assert entries["utils"]["vetting"]["not_covered"] == []
        text = await smcp(rb, "catalog")
        assert "notes (DISABLED)" in text.out
        assert "publisher: none (unsigned)" in text.out
        assert "- hello" in text.out
