"""A tiny canned-response HTTP/1.1 server on 127.0.0.1, for code that fetches URLs.

Each path answers with a fixed status, headers and body; unknown paths answer 404. A route may
instead ``hang`` (read the request, never answer) to exercise a client's timeout without any
sleep. The server records the Host header of every request. With an ``ssl.SSLContext`` it serves
HTTPS. It runs in the test's event loop: ``async with LoopbackHttp(...) as server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from types import TracebackType


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Send the body without Content-Length and close the connection after it.
    until_close: bool = False
    #: Read the request and never answer (the connection stays open until the server stops).
    hang: bool = False


class LoopbackHttp:
    def __init__(self, routes: dict[str, Route], *, tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.hosts: list[str] = []
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()
        #: The listening port, known once the server has started.
        self.port = 0

    @property
    def hits(self) -> int:
        return len(self.hosts)

    async def __aenter__(self) -> LoopbackHttp:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "host":
                    self.hosts.append(value.strip())
            route = self.routes.get(path, Route(404, b"not found"))
            if route.hang:
                await self._stop.wait()
                return
            headers = {"Content-Type": "application/json", **route.headers}
            if route.until_close:
                headers["Connection"] = "close"
            else:
                headers["Content-Length"] = str(len(route.body))
            status_line = f"HTTP/1.1 {route.status} Canned\r\n"
            header_lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write((status_line + header_lines + "\r\n").encode("latin-1") + route.body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
