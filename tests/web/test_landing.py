"""``GET /`` on the LAN port: says what the box is, and names no tenant."""

from __future__ import annotations

from pathlib import Path

import httpx

from smcp_box import __version__
from tests.admin.support import running_box, serving_mcp


async def test_the_root_names_the_box_its_version_and_the_docs(tmp_path: Path) -> None:
    """Regression: `GET /` was a generic 404."""
    async with (
        running_box(tmp_path, tmp_path / "cache") as rb,
        serving_mcp(rb) as base,
        httpx.AsyncClient() as http,
    ):
        as_json = await http.get(f"{base}/")
        as_html = await http.get(f"{base}/", headers={"accept": "text/html"})
    assert as_json.status_code == 200
    body = as_json.json()
    assert body["name"] == "smcp-box"
    assert body["version"] == __version__
    assert body["mcp_endpoint"] == "/t/<tenant>/mcp"
    assert "docs" in body
    assert as_html.status_code == 200
    assert as_html.headers["content-type"].startswith("text/html")
    assert f"smcp-box {__version__}" in as_html.text
    # Unauthenticated: which tenants exist is for credential holders and admins.
    for name in rb.box.tenants.names():
        assert name not in as_json.text
        assert name not in as_html.text
