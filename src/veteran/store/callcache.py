"""The eval call cache's file: a model call's answer, by the key of everything that decided it.

Its own SQLite file (`evals/.cache/calls.db` in the workspace), not a table of the store, even
when the store is PostgreSQL: it is a disposable saving (delete the file and the next run calls
the models again), local to the machine that ran the evals, and would only bloat the company's
store and its backups with copies of answers the trajectories already hold. Its SQL lives here
all the same, and its answers are payload: they pass the store's codec like every other.

The key is made by `veteran.evals.cache.call_key`; the cost and latency of the original call are
kept, so a report of a cached re-run still shows what the variant costs, and so is the time it
was made (`created_at`, in every file since the first), so a reader can refuse answers older
than its age limit and `prune` can drop them.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veteran.store.codec import PLAIN, PayloadCodec
from veteran.types import now


@dataclass(frozen=True, slots=True)
class CachedCall:
    """An earlier call's answer, what it cost and took, and when it was made."""

    response: dict[str, Any]
    cost: float | None
    latency_ms: float | None
    created_at: float


@dataclass(frozen=True, slots=True)
class PendingAnswer:
    """An answer kept by `put`, waiting for `flush`."""

    key: str
    response: dict[str, Any]
    cost: float | None
    latency_ms: float | None
    created_at: float


class CallCache:
    def __init__(self, path: Path, *, codec: PayloadCodec = PLAIN) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = codec
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, response TEXT NOT NULL, "
            "cost REAL, latency_ms REAL, created_at REAL NOT NULL)"
        )
        self._pending: list[PendingAnswer] = []
        self._lock = threading.Lock()  # one connection: lookups on the loop, flushes off it

    def get(self, key: str, *, max_age: float | None = None) -> CachedCall | None:
        """The earlier call's answer, or None (also when it is more than `max_age` seconds
        old)."""
        oldest = -math.inf if max_age is None else now() - max_age
        with self._lock:
            row = self._db.execute(
                "SELECT response, cost, latency_ms, created_at FROM calls "
                "WHERE key = ? AND created_at >= ?", (key, oldest)
            ).fetchone()
        if row is None:
            return None
        return CachedCall(self.codec.decode_json(row[0]), row[1], row[2], row[3])

    def prune(self, max_age: float) -> int:
        """Delete the answers more than `max_age` seconds old; how many were deleted."""
        with self._lock:
            return self._db.execute("DELETE FROM calls WHERE created_at < ?",
                                    (now() - max_age,)).rowcount

    def put(self, key: str, response: dict[str, Any], cost: float | None,
            latency_ms: float | None) -> None:
        """Kept in memory until `flush()` (the runner flushes with each batch of results)."""
        self._pending.append(PendingAnswer(key, response, cost, latency_ms, now()))

    def take(self) -> list[PendingAnswer]:
        """The answers kept since the last `take` (called on the thread that `put`s)."""
        pending, self._pending = self._pending, []
        return pending

    def flush(self, pending: list[PendingAnswer] | None = None) -> None:
        """Write `pending` (from `take`), or everything kept so far; encoding happens here, off
        the event loop."""
        pending = self.take() if pending is None else pending
        if not pending:
            return
        rows = [(a.key, self.codec.encode_json(a.response), a.cost, a.latency_ms, a.created_at)
                for a in pending]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()
