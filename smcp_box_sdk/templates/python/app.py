"""{{name}}: an MCP server that runs as a sandboxed smcp-box component.

Build and pin it with `smcp-box build .`, check it with `smcp-box vet .`, then copy the folder
into the box's tenants folder (or add it with `smcp-box tenant add`).
"""

from __future__ import annotations

from typing import Annotated

from smcp_box_sdk import App, Context, ToolError, kv

app = App("{{name}}", version="0.1.0")


@app.tool()
def greet(name: Annotated[str, "Who to greet"]) -> str:
    """Say hello, and count how often each name was greeted (kept in kv)."""
    if not name:
        raise ToolError("name is empty")
    count = int(kv.get(f"greeted:{name}", "0") or "0") + 1
    kv.set(f"greeted:{name}", str(count))
    return f"Hello, {name}! (greeting number {count})"


@app.tool()
def countdown(ctx: Context, start: int = 3) -> str:
    """Count down, reporting progress at each step."""
    for step in range(start, 0, -1):
        ctx.progress(start - step + 1, start, f"{step}...")
    return "liftoff"


@app.resource("{{name}}://about", mime_type="text/plain")
def about() -> str:
    """What this tenant is."""
    return "{{name}}, built from the smcp-box Python template."


@app.prompt()
def introduce(topic: str) -> str:
    """Ask for a short introduction to a topic."""
    return f"Introduce {topic} in three sentences."


# componentize-py looks for this class: it implements the world's `handle` export.
WitWorld = app.world()
