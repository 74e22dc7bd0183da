"""`veteran serve` as a real process: SIGTERM drains in-flight requests and flushes captures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.conftest import write_workspace
from veteran.testing.server import free_port, wait_http


def test_sigterm_drains_in_flight_requests_and_flushes_the_writer(tmp_path: Path) -> None:
    port = free_port()
    ws = write_workspace(tmp_path / "ws", """
        [providers.slow]
        kind = "mock"
        delay_ms = 1500
        [functions.f.variants.a]
        model = "slow/m"
    """)
    proc = subprocess.Popen(
        [sys.executable, "-m", "veteran.cli", "serve", "-w", str(ws.path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", proc, "veteran serve", 60)
        results: list[httpx.Response] = []

        def call() -> None:
            results.append(httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
                "model": "f", "messages": [{"role": "user", "content": "hi"}]}))

        threads = [threading.Thread(target=call) for _ in range(5)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # all five are now waiting on the slow provider
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        # uvicorn re-raises the signal once it has shut down gracefully
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert [r.status_code for r in results] == [200] * 5
    engine = sa.create_engine(f"sqlite:///{ws.path / 'veteran.db'}")
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text("SELECT id FROM trajectories"))}
        assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()
    assert ids == {r.headers["x-veteran-trajectory-id"] for r in results}
