"""A client that goes away mid-stream cancels the provider call and leaves an `incomplete`
trajectory with what was said so far."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import serve, write_workspace
from veteran.testing.fake_upstream import FakeUpstream


def test_client_disconnect_is_captured_as_incomplete(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", """
        [providers.slow]
        kind = "mock"
        delay_ms = 200
        reply = "one two three four five six seven eight nine ten"
        [functions.f.variants.a]
        model = "slow/m"
    """)
    with serve(ws) as server, httpx.Client(base_url=server.url, timeout=20) as http:
        with http.stream("POST", "/v1/chat/completions", json={
            "model": "f", "stream": True, "messages": [{"role": "user", "content": "hi"}],
        }) as response:
            trajectory_id = response.headers["x-veteran-trajectory-id"]
            for line in response.iter_lines():
                if "one" in line:
                    break  # leave after the first word
        started = time.monotonic()
        while time.monotonic() - started < 10:
            got = http.get(f"/v1/trajectories/{trajectory_id}")
            if got.status_code == 200:
                break
            time.sleep(0.05)
        t = got.json()
        assert t["status"] == "incomplete"
        assert "disconnected" in t["error"]
        assert t["response"]["choices"][0]["message"]["content"].startswith("one")
        assert "ten" not in t["response"]["choices"][0]["message"]["content"]


def test_disconnect_before_the_answer_cancels_the_provider_call(
    tmp_path: Path, upstream: FakeUpstream, database_url: str
) -> None:
    ws = write_workspace(tmp_path / "ws", f"""
        [providers.up]
        kind = "openai"
        base_url = "{upstream.url}"
        [functions.f.variants.a]
        model = "up/m"
    """)
    with serve(ws, database_url) as server, httpx.Client(base_url=server.url) as http:
        pool = server.gateway.providers["up"]._pool  # type: ignore[attr-defined]
        for stream in (False, True):
            body = {"model": "f", "stream": stream,
                    "messages": [{"role": "user", "content": "fault:delay=10000 slow"}]}
            with pytest.raises(httpx.ReadTimeout):
                http.post("/v1/chat/completions", json=body, timeout=0.3)
            started = time.monotonic()
            while pool._open and time.monotonic() - started < 5:
                time.sleep(0.01)
            assert not pool._open  # the upstream call was aborted, well before its 10 s
            assert time.monotonic() - started < 1.0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = http.get("/v1/trajectories").json()["data"]
            if len(data) == 2:
                break
            time.sleep(0.05)
        assert [(t["status"], t["error"]) for t in data] == [
            ("incomplete", "client disconnected before the answer was complete")] * 2


def test_ten_thousand_disconnects_leak_no_task_or_connection(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    ws = write_workspace(tmp_path / "ws", f"""
        [capture]
        durable = false
        [providers.up]
        kind = "openai"
        base_url = "{upstream.url}"
        [functions.f.variants.a]
        model = "up/m"
    """)
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
    bodies = [orjson.dumps({"model": "f", "stream": stream, "messages": [
        {"role": "user", "content": "fault:delay=5000 slow"}]}) for stream in (False, True)]
    with serve(ws) as server:
        pool = server.gateway.providers["up"]._pool  # type: ignore[attr-defined]
        baseline = server.call(_task_count)
        for i in range(10_000):
            body = bodies[i % 2]
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(request % (len(body), body))
                if i % 100 == 0:  # now and then, make sure the call reached the upstream
                    reached = time.monotonic() + 5
                    while not pool._open and time.monotonic() < reached:
                        time.sleep(0.001)
                    assert pool._open, "the request never reached the upstream"
        writer = server.gateway.writer  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if writer.written == 10_000 and not pool._open and (
                    server.call(_task_count) <= baseline):
                break
            time.sleep(0.1)
        assert writer.written == 10_000  # every request ran, and was captured as incomplete
        assert not pool._open  # every upstream call aborted: no connection left
        assert server.call(_task_count) <= baseline  # no task left behind


async def _task_count() -> int:
    return len(asyncio.all_tasks())
