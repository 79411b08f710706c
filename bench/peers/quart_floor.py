"""Peer (b): a bare Quart handler on Hypercorn returning the echo reply: the framework's floor.

Run as ``python -m bench.peers.quart_floor --port P``. It parses the JSON-RPC body and answers
with the same reply an MCP server would, and does nothing else (no auth, session, validation or
sandbox), so the box's cost above it is the cost of the box's own machinery. It also answers
``/healthz`` so the harness can wait for it like the box.
"""

from __future__ import annotations

import argparse
import asyncio

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, request

from bench.peers.payload import echo_result


def build_app() -> Quart:
    app = Quart("bench-floor")

    @app.post("/mcp")
    async def mcp():  # type: ignore[no-untyped-def]
        body = await request.get_json(force=True)
        text = body.get("params", {}).get("arguments", {}).get("text", "")
        return echo_result(body.get("id"), text)

    @app.get("/healthz")
    async def healthz():  # type: ignore[no-untyped-def]
        return "ok"

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    asyncio.run(serve(build_app(), config))


if __name__ == "__main__":
    main()
