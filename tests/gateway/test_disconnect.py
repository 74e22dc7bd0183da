"""A client that goes away mid-stream cancels the provider call and leaves an `incomplete`
trajectory with what was said so far."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import serve, write_workspace


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
