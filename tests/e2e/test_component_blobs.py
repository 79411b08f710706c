"""The tenant SDKs' blobs through real built components (tests/e2e/components: pyfaults with
the Python SDK, jsfaults with the JavaScript SDK, served as their "-blobs" variants with a
longer wall clock; all with ``[blobs] resources = true``): a
tool writes a blob in pieces and reads it back through the SDK, and a client then reads it as
a ``blob:`` resource in each mode, byte for byte."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from tests.e2e.boxproc import BoxProcess
from tests.e2e.clients import MODES, connect

# The first test in a session builds the components (minutes on a loaded machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: Three writes of at most 300,000 bytes; more than one 256 KiB chunk in the store.
SIZE = 700_001


def python_pattern(size: int) -> bytes:
    """What pyfaults' "keep" writes: byte i is i % 251."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def js_pattern(size: int) -> bytes:
    """What jsfaults' "keep" writes: piece k (300,000 bytes) is the byte k+1 repeated."""
    return b"".join(
        bytes([k + 1]) * min(300_000, size - start)
        for k, start in enumerate(range(0, size, 300_000))
    )


async def keep_and_read_back(
    box: BoxProcess, tenant: str, key: str, expected: bytes, text: str
) -> None:
    name = f"sdk/{tenant}.bin"
    async with connect(box.url(tenant), key, "auto") as client:
        kept = await client.call_tool("keep", {"name": name, "size": len(expected)})
        assert not kept.is_error, kept
        answer: dict[str, Any] = kept.structured_content or {}
    stat = answer["stat"]
    assert (stat["name"], stat["size"], stat["contentType"]) == (
        name,
        len(expected),
        "application/octet-stream",
    )
    assert stat["sha256"] == hashlib.sha256(expected).hexdigest()
    assert name in answer["listed"]
    assert sum(answer["pieces"]) == len(expected)
    assert all(0 < piece <= 1024 * 1024 for piece in answer["pieces"])
    assert answer["text"] == text  # a str written as UTF-8, read back decoded
    assert answer["deleted"] == [True, False]
    assert answer["missing"] == "not-found"
    for mode in MODES:
        async with connect(box.url(tenant), key, mode) as client:
            listed = {str(r.uri): r for r in (await client.list_resources()).resources}
            assert listed[f"blob:{name}"].size == len(expected), mode
            assert "blob:scratch.txt" not in listed  # deleted by the tool
            read = await client.read_resource(f"blob:{name}")
            content = read.contents[0]
            data = base64.b64decode(content.blob)  # type: ignore[union-attr]
            assert hashlib.sha256(data).digest() == hashlib.sha256(expected).digest(), mode


async def test_python_sdk_blobs_through_a_built_component(
    component_box: BoxProcess, component_keys: dict[str, str]
) -> None:
    expected = python_pattern(SIZE)
    await keep_and_read_back(
        component_box, "pyfaults-blobs", component_keys["pyfaults-blobs"], expected, "to delete"
    )


async def test_js_sdk_blobs_through_a_built_component(
    js_box: BoxProcess, js_keys: dict[str, str]
) -> None:
    expected = js_pattern(SIZE)
    await keep_and_read_back(
        js_box, "jsfaults-blobs", js_keys["jsfaults-blobs"], expected, "to delete ✓"
    )
