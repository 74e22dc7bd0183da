"""The upstream HTTP/1.1 client against small real servers on loopback with scripted behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from veteran import http

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEADERS = http.header_block({"Content-Type": "application/json"})


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def reply(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def with_server(handler: Handler, test: Callable[[str, list[int]], Awaitable[None]]) -> None:
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await test(f"http://127.0.0.1:{port}/v1", connections)
    finally:
        server.close()
        await server.wait_closed()


async def echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        request = await read_request(reader)
        writer.write(reply(request.split(b"\r\n", 1)[0]))
        await writer.drain()


def test_keep_alive_reuses_one_connection_and_sends_path_and_host() -> None:
    async def test(url: str, connections: list[int]) -> None:
        pool = http.ConnectionPool(url)
        for _ in range(20):
            async with pool.request("POST", "/chat/completions?x=1", HEADERS, b"{}") as r:
                assert r.status == 200
                assert await r.read() == b"POST /v1/chat/completions?x=1 HTTP/1.1"
        assert len(connections) == 1
        await pool.close()

    asyncio.run(with_server(echo_forever, test))


def test_a_pooled_connection_closed_by_the_server_is_retried_once() -> None:
    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(reply(b"ok"))  # keep-alive claimed, then closed: a stale pooled connection
        await writer.drain()

    async def test(url: str, connections: list[int]) -> None:
        pool = http.ConnectionPool(url)
        for _ in range(3):
            async with pool.request("POST", "/a", HEADERS, b"{}") as r:
                assert await r.read() == b"ok"
            await asyncio.sleep(0.05)
        assert len(connections) == 3
        await pool.close()

    asyncio.run(with_server(one_per_connection, test))


def test_chunked_body_arrives_piece_by_piece() -> None:
    gate = asyncio.Event()

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await gate.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()

    async def test(url: str, _: list[int]) -> None:
        pool = http.ConnectionPool(url)
        async with pool.request("POST", "/s", HEADERS, b"{}") as r:
            pieces = r.iter_chunks()
            assert await anext(pieces) == b"first"  # before the server sent the rest
            gate.set()
            assert [p async for p in pieces] == [b"second"]
        await pool.close()

    asyncio.run(with_server(chunked, test))


def test_cut_body_raises_connection_closed() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async def test(url: str, _: list[int]) -> None:
        pool = http.ConnectionPool(url)
        async with pool.request("POST", "/s", HEADERS, b"{}") as r:
            with pytest.raises(http.ConnectionClosed):
                await r.read()
        await pool.close()

    asyncio.run(with_server(cut, test))


def test_read_and_total_timeouts() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(50):
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)

    async def test_read(url: str, _: list[int]) -> None:
        pool = http.ConnectionPool(url, timeouts=http.Timeouts(read=0.2, total=10))
        with pytest.raises(http.ReadTimeout):
            async with pool.request("POST", "/s", HEADERS, b"{}") as r:
                await r.read()
        await pool.close()

    async def test_total(url: str, _: list[int]) -> None:
        pool = http.ConnectionPool(url, timeouts=http.Timeouts(read=1, total=0.5))
        with pytest.raises(http.TotalTimeout):
            async with pool.request("POST", "/s", HEADERS, b"{}") as r:
                await r.read()
        await pool.close()

    asyncio.run(with_server(silent, test_read))
    asyncio.run(with_server(trickle, test_total))


def test_connect_error() -> None:
    async def main() -> None:
        pool = http.ConnectionPool("http://127.0.0.1:1/v1", timeouts=http.Timeouts(connect=2))
        with pytest.raises(http.ConnectError):
            async with pool.request("POST", "/s", HEADERS, b"{}"):
                pass

    asyncio.run(main())


def test_releasing_early_closes_the_connection_and_frees_the_slot() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await writer.drain()

    async def test(url: str, connections: list[int]) -> None:
        pool = http.ConnectionPool(url, max_connections=1)
        for _ in range(3):  # with one slot, a leaked slot would hang the second request
            async with pool.request("POST", "/s", HEADERS, b"{}") as r:
                assert await anext(r.iter_chunks()) == b"abc"
        assert len(connections) == 3  # unfinished responses are never reused
        assert not pool._open
        await pool.close()

    asyncio.run(asyncio.wait_for(with_server(endless, test), 10))


def test_invalid_http_is_a_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def test(url: str, _: list[int]) -> None:
        pool = http.ConnectionPool(url)
        with pytest.raises(http.ProtocolError):
            async with pool.request("POST", "/s", HEADERS, b"{}"):
                pass
        await pool.close()

    asyncio.run(with_server(garbage, test))


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError):
        http.header_block({"X-Evil": "a\r\nHost: elsewhere"})


def test_https_url_gets_a_verifying_tls_context() -> None:
    async def main() -> None:
        pool = http.ConnectionPool("https://api.example.com/v1")
        assert pool.ssl is not None and pool.ssl.check_hostname
        assert (pool.host, pool.port, pool.prefix) == ("api.example.com", 443, "/v1")

    asyncio.run(main())


def test_the_public_names_of_http() -> None:
    assert http.__all__ == sorted(http.__all__)
    for name in http.__all__:
        assert getattr(http, name) is not None, name
    assert issubclass(http.ReadTimeout, http.HTTPClientError)
