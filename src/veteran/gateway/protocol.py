"""uvicorn's httptools protocol, with a response's head and body sent in one syscall, and the
request cancelled when its client goes away before the answer started.

A client that disconnects while the gateway still waits for the provider would otherwise keep
that provider call (and its cost) running to the end: the ASGI app learns of the disconnect
only when it next reads or writes. So when the connection is lost before the response started,
the request's task (registered in the scope by `GatewayApp`) is cancelled; the provider call is
aborted at once. Once a response has started, Starlette's streaming response does the same.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, then the body in a second `send()`. On loopback a socket write costs a
good share of the gateway's per-request CPU (profiled on the 2-core machine), so a write is held
until the next one and both leave together: a plain answer goes out in one segment. A held
write with no successor (a stream's first event) is flushed at the end of the loop turn, so
nothing waits longer than that.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = data
            self._loop.call_soon(self._flush)
        else:
            data, self._held = self._held + data, None
            self._transport.write(data)

    def _flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


TASK_KEY = "veteran.task"
GONE_KEY = "veteran.client_gone"


class GatewayHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(wrapped)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and not cycle.response_started:
            scope = cast(dict[str, Any], cycle.scope)
            task = scope.get(TASK_KEY)
            if isinstance(task, asyncio.Task) and not task.done():
                scope[GONE_KEY] = True
                task.cancel()
