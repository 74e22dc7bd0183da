"""The store going away: inference keeps working, captures wait in the on-disk spool, and drain
into the store once, without duplicates, when it returns. PostgreSQL goes away through a TCP
proxy that the test cuts; SQLite through a full disk (`PRAGMA max_page_count`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from tests.conftest import BASE_CONFIG, POSTGRES_URL, _fresh_postgres, serve, write_workspace
from veteran.store import Store
from veteran.testing.server import ServerThread
from veteran.testing.tcp_proxy import TcpProxy


def ask(http: httpx.Client, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = http.post("/v1/chat/completions", json={
            "model": "m/echo", "messages": [{"role": "user", "content": f"call {i}"}]},
            headers={"x-veteran-tags": f"n={i}"})
        assert response.status_code == 200, response.text
        ids.append(response.headers["x-veteran-trajectory-id"])
    return ids


def health(http: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/healthz").json()
    return body


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stored_ids(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT id FROM trajectories"))]
    finally:
        engine.dispose()


def spool_files(ws: Any) -> list[Path]:
    """The spool's files waiting for the store (one per writer that spooled)."""
    return sorted((ws.path / "spool").glob("captures-*.jsonl"))


def fast_drain(server: ServerThread) -> None:
    server.gateway.writer.drain_interval = 0.2  # type: ignore[attr-defined]


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL not configured: set "
                    "VETERAN_TEST_POSTGRES_URL (.ci/run does)")
def test_postgres_going_away_spools_captures_and_drains_them_once(
    tmp_path: Path, upstream: Any
) -> None:
    direct = _fresh_postgres()
    Store.open(direct).close()  # migrated
    parsed = make_url(direct)
    with TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
        proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False)
        ws = write_workspace(tmp_path / "ws", BASE_CONFIG.format(upstream=upstream.url))
        with serve(ws, proxied) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            fast_drain(server)
            before = ask(http, 10)
            proxy.cut()
            started = time.perf_counter()
            during = ask(http, 30)  # inference keeps working
            assert time.perf_counter() - started < 20
            assert health(http)["capture_spooled"] == 30
            assert len(spool_files(ws)) == 1
            assert set(stored_ids(direct)) == set(before)
            proxy.restore()
            wait_for(lambda: health(http)["capture_spooled"] == 0)
            after = ask(http, 5)
            stats = health(http)
        ids = stored_ids(direct)
    expected = before + during + after
    missing = [i for i in expected if i not in ids]
    extra = [i for i in ids if i not in expected]
    assert (missing, extra) == ([], []), (before, during, after)
    assert len(ids) == len(expected)  # each once: no loss, no duplicate
    assert stats["capture_dropped"] == 0
    assert spool_files(ws) == []


class DiskFull:
    """Makes the store's SQLite database 'full' for connections opened while `full` is set."""

    def __init__(self, store: Store) -> None:
        self.full = False
        event.listen(store.engine, "checkout", self._checkout)

    def _checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages if self.full else 1 << 30}")


def sqlite_gateway(tmp_path: Path, upstream: Any, extra: str = "") -> tuple[Any, str]:
    ws = write_workspace(tmp_path / "ws", BASE_CONFIG.format(upstream=upstream.url) + extra)
    return ws, f"sqlite:///{tmp_path}/full.db"


def test_a_full_disk_spools_captures_and_they_drain_when_space_returns(
    tmp_path: Path, upstream: Any
) -> None:
    ws, url = sqlite_gateway(tmp_path, upstream)
    with serve(ws, url) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        fast_drain(server)
        disk = DiskFull(server.gateway.store)  # type: ignore[attr-defined]
        server.gateway.writer._inserter.reset()  # type: ignore[attr-defined]
        disk.full = True
        spooled = ask(http, 40)  # big enough to need new pages
        stats = health(http)
        assert stats["capture_spooled"] > 0
        assert stats["capture_dropped"] == 0
        disk.full = False
        wait_for(lambda: health(http)["capture_spooled"] == 0)
        stats = health(http)
    ids = stored_ids(url)
    assert sorted(ids) == sorted(spooled)
    assert stats["captured"] == 40
    with sa.create_engine(url).connect() as conn:
        tags = conn.execute(sa.text("SELECT count(*) FROM trajectory_tags")).scalar_one()
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert tags == 40


def test_the_spool_is_bounded_and_counts_what_it_drops(tmp_path: Path, upstream: Any) -> None:
    ws, url = sqlite_gateway(tmp_path, upstream, "\n[capture]\nspool_max_bytes = 8192\n")
    with serve(ws, url) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        disk = DiskFull(server.gateway.store)  # type: ignore[attr-defined]
        server.gateway.writer._inserter.reset()  # type: ignore[attr-defined]
        disk.full = True
        ask(http, 60)  # every call is still answered
        stats = health(http)
    assert 0 < sum(f.stat().st_size for f in spool_files(ws)) <= 8192
    assert stats["capture_dropped"] > 0
    assert stats["capture_spooled"] + stats["capture_dropped"] + stats["captured"] == 60


def test_a_spool_left_by_a_stopped_gateway_drains_at_the_next_start(
    tmp_path: Path, upstream: Any
) -> None:
    ws, url = sqlite_gateway(tmp_path, upstream)
    with serve(ws, url) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        disk = DiskFull(server.gateway.store)  # type: ignore[attr-defined]
        server.gateway.writer._inserter.reset()  # type: ignore[attr-defined]
        disk.full = True
        ids = ask(http, 40)
        left = health(http)["capture_spooled"]
    assert left > 0 and len(spool_files(ws)) == 1
    with serve(ws, url) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert health(http)["capture_spooled"] == left
        wait_for(lambda: health(http)["capture_spooled"] == 0, seconds=15)
    assert sorted(stored_ids(url)) == sorted(ids)
