"""smcp-box's Python tenant SDK: write an MCP server that runs as a sandboxed component.

It runs inside the component (built by componentize-py against the ``smcp:box`` world in
``wit/smcp-box.wit``), never in the box: it imports nothing of ``smcp_box`` and only the
standard library. ::

    from smcp_box_sdk import App, Context, kv

    app = App("hello", version="1.0.0")

    @app.tool()
    def greet(name: str) -> str:
        \"\"\"Say hello.\"\"\"
        return f"hello {name}"

    WitWorld = app.world()

``smcp-box new --lang python NAME`` makes a tenant folder like this; ``smcp-box build DIR`` builds
and pins it. The app module's top level runs while the component is built (componentize-py
snapshots it), where there is no host: call kv, config, log and notify only from handlers.
"""

from pathlib import Path

from .app import App, Context, Escalate, RpcError, ToolError
from .blobs import BlobError, blobs
from .host import (
    KvError,
    config,
    kv,
    log,
    notify,
    now_ms,
    random_bytes,
    sleep_ms,
    use_backend,
)

#: The WIT world the SDK's components implement, shipped with the package.
WIT_DIR = Path(__file__).resolve().parent / "wit"
WORLD = "mcp-server"
#: The JavaScript tenant SDK, its build driver and its plain-Node test hooks (testing.mjs).
JS_DIR = Path(__file__).resolve().parent / "js"

__all__ = [
    "JS_DIR",
    "WIT_DIR",
    "WORLD",
    "App",
    "BlobError",
    "Context",
    "Escalate",
    "KvError",
    "RpcError",
    "ToolError",
    "blobs",
    "config",
    "kv",
    "log",
    "notify",
    "now_ms",
    "random_bytes",
    "sleep_ms",
    "use_backend",
]
