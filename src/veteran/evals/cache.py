"""The eval call cache: a model call's answer, keyed by everything that decides it.

A SQLite file in the workspace (`evals/.cache/calls.db`). The key is the SHA-256 of the
provider, the model, the exact body the provider receives (system prompt and params included)
and the epoch, so a re-run of a suite calls no model again, while each epoch of a run is its
own call. The cost and latency of the original call are kept, so a report of a cached re-run
still shows what the variant costs.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson

from veteran.types import now

CACHE_FILE = Path("evals") / ".cache" / "calls.db"


def call_key(provider: str, model: str, body: dict[str, Any], epoch: int) -> str:
    data = {"provider": provider, "model": model, "body": body, "epoch": epoch}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class CallCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, response TEXT NOT NULL, "
            "cost REAL, latency_ms REAL, created_at REAL NOT NULL)"
        )
        self._pending: list[tuple[str, str, float | None, float | None, float]] = []
        self._lock = threading.Lock()  # one connection: lookups on the loop, flushes off it

    def get(self, key: str) -> tuple[dict[str, Any], float | None, float | None] | None:
        """(response, cost, latency_ms) of an earlier call, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT response, cost, latency_ms FROM calls WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return orjson.loads(row[0]), row[1], row[2]

    def put(self, key: str, response: dict[str, Any], cost: float | None,
            latency_ms: float | None) -> None:
        """Kept in memory until `flush()` (the runner flushes with each batch of results)."""
        self._pending.append((key, orjson.dumps(response).decode(), cost, latency_ms, now()))

    def take(self) -> list[tuple[str, str, float | None, float | None, float]]:
        """The answers kept since the last `take` (called on the thread that `put`s)."""
        pending, self._pending = self._pending, []
        return pending

    def flush(self, pending: list[tuple[str, str, float | None, float | None, float]] | None
              = None) -> None:
        """Write `pending` (from `take`), or everything kept so far."""
        pending = self.take() if pending is None else pending
        if not pending:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)",
                                 pending)
            self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()
