"""kill -9 a gateway with streamed requests in flight, then check what the store kept.

Used by the test suite (a few repetitions) and `bench/durability.py` (many). The gateway runs as
its own process in durable mode over SQLite, in front of a fake upstream whose answers take a
random 0-400 ms, so at the moment of the kill some streams are complete, some half-way, some not
started. Afterwards: the database must pass `PRAGMA integrity_check`, reopen (migrations and
all), and hold a trajectory for every stream a client received in full (`data: [DONE]`).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from veteran import http
from veteran.store import Store, TrajectoryFilter
from veteran.store.sqlite_check import check_sqlite
from veteran.testing.server import wait_http

CONFIG = """
[server]
port = {port}
[capture]
durable = true
[providers.up]
kind = "openai"
base_url = "{upstream}"
[functions.f.variants.a]
model = "up/m"
"""


@dataclass
class CrashResult:
    sent: int
    completed: int
    stored: int
    missing: list[str] = field(default_factory=list)
    integrity: str = ""
    reopened: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing and self.integrity == "ok" and self.reopened


async def _one(pool: http.ConnectionPool, done: list[str], seed: int) -> None:
    delay = random.Random(seed).randint(0, 400)
    body = orjson.dumps({"model": "f", "stream": True, "messages": [
        {"role": "user", "content": f"fault:delay={delay} request {seed}"}]})
    try:
        async with pool.request("POST", "/v1/chat/completions",
                                http.header_block({"Content-Type": "application/json"}),
                                body) as response:
            trajectory_id = dict(response.headers).get(b"x-veteran-trajectory-id", b"").decode()
            received = b"".join([chunk async for chunk in response.iter_chunks()])
        if response.status == 200 and received.endswith(b"data: [DONE]\n\n"):
            done.append(trajectory_id)
    except http.HTTPClientError:
        pass  # cut by the kill: not received in full, so not promised


async def _load(url: str, process: subprocess.Popen[bytes], concurrency: int,
                kill_after: int) -> tuple[list[str], int]:
    pool = http.ConnectionPool(url, max_connections=concurrency,
                               timeouts=http.Timeouts(connect=5, read=10, total=20))
    done: list[str] = []
    tasks = [asyncio.create_task(_one(pool, done, i)) for i in range(concurrency)]
    while len(done) < kill_after and not all(t.done() for t in tasks):
        await asyncio.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    await asyncio.gather(*tasks)
    await pool.close()
    return done, concurrency


def crash_once(workdir: Path, upstream_url: str, *, port: int, concurrency: int = 200,
               kill_after: int = 60, startup_timeout: float = 60.0) -> CrashResult:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "veteran.toml").write_text(CONFIG.format(port=port, upstream=upstream_url))
    env = {k: v for k, v in os.environ.items() if k != "VETERAN_DATABASE_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "veteran.cli", "serve", "--workspace", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process, "veteran serve", startup_timeout)
        done, sent = asyncio.run(_load(f"http://127.0.0.1:{port}", process, concurrency,
                                       kill_after))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    db = workdir / "veteran.db"
    check = check_sqlite(db)  # look before any migration touches it
    integrity, stored = check.integrity, check.trajectory_ids
    reopened = False
    store = Store.open(f"sqlite:///{db}")
    try:
        store.trajectories(TrajectoryFilter(), limit=1)
        reopened = True
    finally:
        store.close()
    missing = [t for t in done if t not in stored]
    return CrashResult(sent=sent, completed=len(done), stored=len(stored), missing=missing,
                       integrity=integrity, reopened=reopened)
