"""The Host and Origin readings that pick a tenant by its tenant.toml ``hosts``."""

from __future__ import annotations

import pytest

from smcp_box.protocol.http import host_name, https_origin_host


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("notes.box.lan", "notes.box.lan"),
        ("Notes.Box.LAN:8443", "notes.box.lan"),
        ("notes.box.lan.", "notes.box.lan"),
        ("notes.box.lan.:443", "notes.box.lan"),
        ("[::1]:8765", "::1"),
        ("127.0.0.1:8765", "127.0.0.1"),
        (None, None),
        ("", None),
        (":8443", None),
        ("notes.box.lan:port", None),
        ("user@notes.box.lan", None),
        ("notes.box.lan/x", None),
        ("notes.box.lan?x", None),
        ("notes box.lan", None),
        ("[::1", None),
    ],
)
def test_host_name(header: str | None, name: str | None) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("origin", "name"),
    [
        ("https://notes.box.lan", "notes.box.lan"),
        ("https://notes.box.lan:8443", "notes.box.lan"),
        ("https://NOTES.box.lan/", "notes.box.lan"),
        ("http://notes.box.lan", None),
        ("https://notes.box.lan/page", None),
        ("https://notes.box.lan:bad", None),
        ("null", None),
        ("", None),
        (None, None),
    ],
)
def test_https_origin_host(origin: str | None, name: str | None) -> None:
    assert https_origin_host(origin) == name
