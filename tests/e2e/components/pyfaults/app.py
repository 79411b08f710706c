"""A Python component tenant that misbehaves on request, for the fault tests."""

from __future__ import annotations

from smcp_box_sdk import App, BlobError, blobs

app = App("pyfaults", version="1.0.0")


@app.tool()
def ok() -> str:
    """Answer normally."""
    return "still serving"


@app.tool()
def spin() -> str:
    """Loop forever: ends at the fuel or wall-clock limit."""
    n = 0
    while True:
        n += 1


@app.tool()
def hog() -> str:
    """Allocate until the memory limit."""
    chunks = []
    while True:
        chunks.append(bytearray(1 << 20))


@app.tool()
def boom() -> str:
    """Raise an ordinary exception: the SDK answers with a JSON-RPC error."""
    raise RuntimeError("boom from the tenant")


@app.tool()
def crash() -> str:
    """Raise past the SDK: the component traps and the box reports the exception."""
    raise SystemExit("crash from the tenant")


# Not a fault: the SDK's blobs through a real component, for test_python_sdk_blobs_*.
@app.tool()
def keep(name: str, size: int) -> dict[str, object]:
    """Write a blob of ``size`` bytes in pieces (byte i is i % 251), then stat, list and read it
    back through the SDK."""
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    with blobs.open_write(name, "application/octet-stream") as writer:
        for start in range(0, size, 300_000):
            writer.write(data[start : start + 300_000])
    with blobs.open_read(name) as reader:
        pieces = [len(piece) for piece in reader]
    try:
        blobs.open_read("no/such/blob")
        missing = "found"
    except BlobError as exc:
        missing = exc.reason
    blobs.write("scratch.txt", "to delete", "text/plain")
    return {
        "stat": blobs.stat(name),
        "listed": [b["name"] for b in blobs.list("")],
        "pieces": pieces,
        "text": blobs.read_bytes("scratch.txt").decode(),
        "deleted": [blobs.delete("scratch.txt"), blobs.delete("scratch.txt")],
        "missing": missing,
    }


WitWorld = app.world()
