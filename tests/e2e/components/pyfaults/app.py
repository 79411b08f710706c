"""A Python component tenant that misbehaves on request, for the fault tests."""

from __future__ import annotations

from smcp_box_sdk import App

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


WitWorld = app.world()
