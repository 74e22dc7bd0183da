"""Look at a SQLite store file as it lies on disk, before anything opens it as a store.

`Store.open` migrates; after a crash, the question is what the file held when the process died
(`veteran.testing.crash` asks it after every kill -9), so this reads it with plain sqlite3.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SqliteCheck:
    integrity: str  # "ok", or what `PRAGMA integrity_check` found
    trajectory_ids: frozenset[str]


def check_sqlite(path: Path) -> SqliteCheck:
    conn = sqlite3.connect(path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = frozenset(row[0] for row in conn.execute("SELECT id FROM trajectories"))
    finally:
        conn.close()
    return SqliteCheck(integrity=integrity, trajectory_ids=ids)
