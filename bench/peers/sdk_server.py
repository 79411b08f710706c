"""Peer (a): the official ``mcp`` SDK's high-level server with a native Python echo tool.

Run as ``python -m bench.peers.sdk_server --port P [--server uvicorn|hypercorn]``. It serves
streamable HTTP at ``/mcp`` with JSON responses, as a user of the SDK would deploy it. uvicorn is
what the SDK's own ``run()`` uses; it has no HTTP/2, so the HTTP/2 rows run the same Starlette
app under Hypercorn (h2c).

uvicorn's HTTP/1.1 parser and event loop are named, not left to what is installed: on its own
("auto") uvicorn takes httptools and uvloop whenever they happen to be importable, and the box's
own dependencies (httptools) would then change the peer it is measured against. The default is
what ``pip install mcp`` deploys (uvicorn without its ``[standard]`` extra: h11 and asyncio's
loop); ``--uvicorn standard`` runs it on httptools and uvloop, as ``uvicorn[standard]`` would.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from mcp.server.mcpserver import MCPServer

#: uvicorn's (HTTP/1.1 implementation, event loop) by how the SDK server is installed.
UVICORN_SETUPS = {"plain": ("h11", "asyncio"), "standard": ("httptools", "uvloop")}


def build_app():
    server = MCPServer("bench-echo", version="1", log_level="WARNING")

    @server.tool(
        name="echo", description="Returns its text argument unchanged.", structured_output=False
    )
    def echo(text: str) -> str:
        return text

    return server.streamable_http_app(json_response=True, streamable_http_path="/mcp")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=("uvicorn", "hypercorn"), default="uvicorn")
    parser.add_argument("--uvicorn", choices=tuple(UVICORN_SETUPS), default="plain")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build_app()
    if args.server == "uvicorn":
        import uvicorn

        http, loop = UVICORN_SETUPS[args.uvicorn]
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
            http=http,
            loop=loop,
        )
    else:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{args.port}"]
        config.accesslog = None
        config.loglevel = "WARNING"
        asyncio.run(serve(app, config))


if __name__ == "__main__":
    main()
