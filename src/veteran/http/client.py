"""A lean pooled HTTP/1.1 client for upstream calls: asyncio transports + the httptools parser.

Why not aiohttp, httpx, aiosonic or pyreqwest: the upstream client sets the gateway's ceiling,
and on the 2-core machine a raw ASGI proxy spent, per request, 237 µs of CPU with aiohttp,
209 µs with aiosonic, 144 µs with pyreqwest and 76 µs with this client (see bench/RESULTS.md and
docs/design.md). It does only what a gateway needs from one configured upstream: keep-alive
connections to one origin (http or https), requests with a body, responses read whole or
streamed as they arrive, connect / read (silence) / total timeouts, and one retry on a fresh
connection when a pooled one turns out to be closed before any answer byte arrived. Parsing,
including chunked transfer decoding, is httptools (llhttp), the parser uvicorn uses. No
redirects, cookies, proxies or compression: API upstreams do not need them and a gateway must
not follow a server elsewhere.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

import httptools

# The client's errors live in the one tree (veteran.errors); importers find them here too.
from veteran.errors import (
    ConnectError,
    ConnectionClosed,
    HTTPClientError,
    ProtocolError,
    ReadTimeout,
    TotalTimeout,
)

__all__ = [
    "ConnectError", "ConnectionClosed", "ConnectionPool", "HTTPClientError", "ProtocolError",
    "ReadTimeout", "RequestContext", "Response", "Timeouts", "TotalTimeout", "header_block",
    "retry_after",
]

PAUSE_AT = 1 << 20  # buffered body bytes above which reading pauses (backpressure)


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    read: float = 300.0
    total: float = 600.0


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reused = False
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[int] = self.loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.error: HTTPClientError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.read_timeout = 0.0
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self._arm_timer()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("upstream tried to upgrade the connection"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP from upstream: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            self._fail(ConnectionClosed("upstream closed the connection"), abort=False)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if not self.head.done():
            self.head.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_AT and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        # llhttp forgets keep-alive once the callback returns, so it is read here
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        self._cancel_timer()
        self._wake()

    # exchange

    def start(self, payload: bytes, read_timeout: float, deadline: float) -> None:
        """Send a request; the answer must keep coming (no silence over `read_timeout`) and
        be complete by `deadline` (loop time)."""
        assert self.transport is not None
        self.read_timeout = read_timeout
        self.deadline = deadline
        self._arm_timer()
        self.transport.write(payload)

    def _arm_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.read_timeout and not self.complete:
            delay = min(self.read_timeout, self.deadline - self.loop.time())
            self.timer = self.loop.call_later(max(delay, 0.0), self._on_timer)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _on_timer(self) -> None:
        self.timer = None
        if self.loop.time() >= self.deadline - 0.001:
            self._fail(TotalTimeout("upstream answer not complete within the total timeout"))
        else:
            self._fail(ReadTimeout(f"no data from upstream for {self.read_timeout:g} s"))

    def _fail(self, error: HTTPClientError, *, abort: bool = True) -> None:
        if self.error is None:
            self.error = error
        self._cancel_timer()
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved here; callers re-raise `self.error`
        self._wake()
        if abort and self.transport is not None:
            self.closed = True
            self.transport.abort()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next_chunk(self) -> bytes | None:
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.buffered <= PAUSE_AT and self.transport is not None:
                    self.transport.resume_reading()
                return chunk
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            self.waiter = self.loop.create_future()
            await self.waiter
            self.waiter = None

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def recycle(self) -> None:
        self._reset()
        self.reused = True


class Response:
    """A response whose head has arrived; read or iterate the body, then leave the context."""

    def __init__(self, pool: ConnectionPool, conn: _Connection, status: int) -> None:
        self.status = status
        self.headers = conn.headers
        self._pool = pool
        self._conn: _Connection | None = conn

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        assert self._conn is not None, "response already released"
        while (chunk := await self._conn.next_chunk()) is not None:
            yield chunk

    def release(self) -> None:
        if self._conn is not None:
            self._pool._release(self._conn)
            self._conn = None

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()


class ConnectionPool:
    """Keep-alive connections to the one origin of `base_url`."""

    def __init__(self, base_url: str, *, max_connections: int = 512,
                 timeouts: Timeouts | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = self.port == (443 if self.ssl else 80)
        self._host_header = (self.host if default_port else f"{self.host}:{self.port}").encode()
        self.timeouts = timeouts or Timeouts()
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._open: set[_Connection] = set()

    def request(self, method: str, path: str, headers: bytes, body: bytes,
                timeouts: Timeouts | None = None) -> RequestContext:
        """`async with pool.request("POST", "/chat/completions", headers, body) as response:`

        `path` is appended to the base URL's path and may carry a query string; `headers` are
        ready-made `Name: value\\r\\n` lines (see `header_block`). `timeouts` replaces the
        pool's for this request (a variant's own timeouts).
        """
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode()
            + b"Host: " + self._host_header + b"\r\n" + headers
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        return RequestContext(self, head + body, timeouts or self.timeouts)

    async def _send(self, payload: bytes, timeouts: Timeouts) -> Response:
        deadline = asyncio.get_running_loop().time() + timeouts.total
        await self._slots.acquire()
        try:
            for attempt in (0, 1):
                conn = await self._connection(fresh=attempt == 1, connect=timeouts.connect)
                conn.start(payload, timeouts.read, deadline)
                try:
                    status = await conn.head
                except ConnectionClosed:
                    self._discard(conn)
                    if conn.reused and not conn.got_bytes and attempt == 0:
                        continue  # a pooled connection the server had already closed
                    raise
                except BaseException:
                    self._discard(conn)
                    raise
                return Response(self, conn, status)
        except BaseException:
            self._slots.release()
            raise
        raise AssertionError("unreachable")

    async def _connection(self, *, fresh: bool, connect: float) -> _Connection:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._open.discard(conn)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise ConnectError(f"connect timed out after {connect:g} s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect: {exc.strerror or type(exc).__name__}") from None
        self._open.add(conn)
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable():
            conn.recycle()
            self._idle.append(conn)
        else:
            self._discard(conn)
        self._slots.release()

    def _discard(self, conn: _Connection) -> None:
        conn._cancel_timer()
        self._open.discard(conn)
        if conn.transport is not None and not conn.closed:
            conn.closed = True
            conn.transport.abort()

    async def close(self) -> None:
        for conn in list(self._open):
            self._discard(conn)
        self._idle.clear()


class RequestContext:
    def __init__(self, pool: ConnectionPool, payload: bytes, timeouts: Timeouts) -> None:
        self._pool = pool
        self._payload = payload
        self._timeouts = timeouts
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._pool._send(self._payload, self._timeouts)
        return self._response

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._response is not None:
            self._response.release()


def retry_after(headers: list[tuple[bytes, bytes]]) -> float | None:
    """Seconds asked for by a `Retry-After` header (delay-seconds or an HTTP date), if any."""
    for name, value in headers:
        if name.lower() != b"retry-after":
            continue
        text = value.decode("latin-1").strip()
        try:
            return max(float(text), 0.0) if text.isascii() and text[:1].isdigit() else max(
                email.utils.parsedate_to_datetime(text).timestamp() - time.time(), 0.0
            )
        except (TypeError, ValueError, OverflowError):
            return None
    return None


def header_block(headers: dict[str, str]) -> bytes:
    """`Name: value\\r\\n` lines; refuses CR/LF in names or values (header injection)."""
    out = []
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} contains a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("latin-1")
