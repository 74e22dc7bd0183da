"""Several processes on one workspace's spool (two `veteran serve`, an `eval run` beside one):
captures spooled through a store outage reach the store once each, whoever drains and whatever
the others do meanwhile. Each writer is a real process (spool_child.py). PostgreSQL goes away
through a TCP proxy that the test cuts; SQLite through a full disk, as in test_spool.py, which
each process sets on its own connection."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from veteran.store import Store
from veteran.testing.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]


class Child:
    """One writer process, answering one command at a time."""

    def __init__(self, url: str, spool: Path, log: Path) -> None:
        self.log = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.store.spool_child", url, str(spool)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT,
            )
        assert self.read() == {"ready": True}

    def send(self, **command: Any) -> dict[str, Any]:
        self.write(command)
        return self.read()

    def write(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        self.process.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else b""
        assert line, f"writer process gave no answer:\n{self.log.read_text()}"
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    def capture(self, n: int) -> list[str]:
        answer = self.send(do="capture", n=n)
        assert answer["dropped"] == 0
        ids: list[str] = answer["ids"]
        return ids

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.write({"do": "exit"})
            self.process.wait(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


class Workspace:
    """The store seen directly, the writers started on it, and the outage."""

    def __init__(self, url: str, tmp_path: Path, proxy: TcpProxy | None) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.spool = tmp_path / "spool"
        self.proxy = proxy
        self.children: list[Child] = []
        Store.open(url).close()  # migrated once, before any writer

    def writer(self) -> Child:
        url = self.url
        if self.proxy is not None:
            url = make_url(url).set(host="127.0.0.1", port=self.proxy.port).render_as_string(
                hide_password=False)
        child = Child(url, self.spool, self.tmp_path / f"writer-{len(self.children)}.log")
        self.children.append(child)
        return child

    def store_away(self, away: bool) -> None:
        if self.proxy is not None:
            (self.proxy.cut if away else self.proxy.restore)()
            return
        for child in self.children:
            if child.process.poll() is None:
                assert child.send(do="disk", full=away) == {}

    def stored(self) -> tuple[list[str], int]:
        """Stored trajectory ids, and how many tag rows."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM trajectories"))]
                tags = conn.execute(sa.text("SELECT count(*) FROM trajectory_tags")).scalar_one()
        finally:
            engine.dispose()
        return ids, int(tags)

    def spool_files(self) -> list[str]:
        return sorted(p.name for p in self.spool.iterdir()) if self.spool.exists() else []

    def assert_stored_once(self, ids: list[str]) -> None:
        stored, tags = self.stored()
        missing = sorted(set(ids) - set(stored))
        assert (len(missing), sorted(set(stored) - set(ids))) == (0, [])
        assert len(stored) == len(ids) == len(set(ids))
        assert tags == len(ids)  # one tag each: none lost, none twice


@pytest.fixture
def workspace(database_url: str, tmp_path: Path) -> Iterator[Workspace]:
    if database_url.startswith("sqlite"):
        ws = Workspace(database_url, tmp_path, None)
        yield ws
    else:
        parsed = make_url(database_url)
        with TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
            ws = Workspace(database_url, tmp_path, proxy)
            yield ws
    for child in ws.children:
        child.stop()


def test_two_writers_spool_through_an_outage_and_drain_in_turn(workspace: Workspace) -> None:
    a, b = workspace.writer(), workspace.writer()
    workspace.store_away(True)
    ids = a.capture(20) + b.capture(20) + a.capture(20) + b.capture(20)
    assert workspace.stored()[0] == []
    workspace.store_away(False)
    # `a` drains and has committed, but not yet deleted what it sent, when `b` (whose earlier
    # captures still wait) spools more: one shared file lost exactly these
    a.write({"do": "drain", "pause": True})
    assert a.read()["paused"] > 0
    ids += b.capture(15)
    a.write({})
    assert a.read() == {"spooled": 0}
    drained = b.send(do="drain")
    workspace.assert_stored_once(ids)
    assert drained == {"spooled": 0}
    assert workspace.spool_files() == []


def test_a_writer_killed_mid_drain_leaves_its_captures_to_the_next(
    workspace: Workspace,
) -> None:
    a, b = workspace.writer(), workspace.writer()
    workspace.store_away(True)
    ids = a.capture(30) + b.capture(30)
    workspace.store_away(False)
    a.write({"do": "drain", "pause": True})
    assert a.read()["paused"] > 0  # committed; its spool file not yet deleted
    a.kill()
    assert len(workspace.spool_files()) == 2  # a's, left, and b's
    # b adopts what a left (sent again: the rows a committed are skipped) and drains its own
    assert b.send(do="drain") == {"spooled": 0}
    workspace.assert_stored_once(ids)
    assert workspace.spool_files() == []
