"""A capture writer in a process of its own, for test_spool_processes.py.

    python -m tests.store.spool_child DATABASE_URL SPOOL_DIR

It reads one JSON command a line on stdin and answers one JSON line on stdout:
`{"do": "capture", "n": N}` writes N trajectories as one batch (to the store, or to the spool
while the store is away); `{"do": "disk", "full": BOOL}` fills or frees SQLite's disk for this
process (PostgreSQL goes away through the test's TCP proxy instead); `{"do": "drain"}` drains
the spool now, and with `"pause": true` answers `{"paused": ROWS}` after each committed drain
batch and waits for a line before it goes on: the moment between a drain's commit and its
deleting what it sent. The writer's batch and drain steps are called directly, not through its
thread, so that the test decides who spools and who drains, and in which order.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event

from veteran.store import Store, new_id
from veteran.store.writer import Capture, CaptureWriter
from veteran.types import TrajectoryRecord

BODY = "x" * 4000  # every row needs new pages, so a full SQLite disk refuses it


def reply(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


def record(i: int) -> TrajectoryRecord:
    return TrajectoryRecord(
        id=new_id(), episode_id=new_id(), created_at=time.time(),
        request={"messages": [{"role": "user", "content": f"{i} {BODY}"}]},
        tags={"n": str(i)},
    )


def main() -> None:
    url, spool = sys.argv[1], Path(sys.argv[2])
    store = Store.open(url, upgrade=False)
    writer = CaptureWriter(store.engine, spool_dir=spool, batch_max=100_000,
                           drain_interval=3600)
    disk = {"full": False}
    if store.engine.dialect.name == "sqlite":
        @event.listens_for(store.engine, "checkout")
        def _checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages if disk['full'] else 1 << 30}")

    pause = {"on": False}
    inserter: Any = writer._inserter
    insert = inserter.insert

    def pausing_insert(rows: Any, tags: Any, *, ignore_duplicates: bool = False) -> None:
        insert(rows, tags, ignore_duplicates=ignore_duplicates)
        if pause["on"] and ignore_duplicates:  # a drain's batch is committed, its file kept
            reply({"paused": len(rows)})
            sys.stdin.buffer.readline()

    inserter.insert = pausing_insert
    reply({"ready": True})
    for line in sys.stdin.buffer:
        command = orjson.loads(line)
        if command["do"] == "capture":
            records = [record(i) for i in range(command["n"])]
            writer._write([Capture(r) for r in records])
            reply({"ids": [r.id for r in records], "spooled": writer.spooled,
                   "dropped": writer.dropped})
        elif command["do"] == "disk":
            disk["full"] = command["full"]
            writer._inserter.reset()  # the next batch checks out a connection that sees it
            reply({})
        elif command["do"] == "drain":
            pause["on"] = command.get("pause", False)
            writer._drain(now=True)
            reply({"spooled": writer.spooled})
        else:
            break
    store.close()


if __name__ == "__main__":
    main()
