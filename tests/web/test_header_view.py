"""The transport's view of request headers: from an ASGI scope and from Quart's request alike."""

from __future__ import annotations

from smcp_box.web.mcp_context import HeaderView

RAW = [
    (b"host", b"box.lan:8000"),
    (b"accept", b"application/json"),
    (b"x-note", b"first"),
    (b"x-note", b"second"),
    (b"x-latin", b"caf\xe9"),
]


def test_from_asgi_is_the_view_of_the_decoded_lines() -> None:
    fast = HeaderView.from_asgi(RAW)
    lines = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in RAW]
    slow = HeaderView(lines)
    assert fast.lines() == slow.lines() == lines
    assert dict(fast) == dict(slow)
    assert fast.get("X-Note") == "first"  # the first of repeated names; any case asks
    assert fast["x-latin"] == "caf\xe9"
    assert "HOST" in fast
    assert fast.get("missing") is None


def test_quart_spelled_names_are_found_in_any_case() -> None:
    view = HeaderView([("Content-Type", "application/json"), ("X-Note", "a"), ("x-note", "b")])
    assert view.get("content-type") == "application/json"
    assert view["X-NOTE"] == "a"
    assert len(view) == 2
