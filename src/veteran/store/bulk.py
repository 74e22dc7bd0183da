"""Bulk inserts of trajectories on the DBAPI connection, compiled once per database dialect.

The capture writer runs on every request at thousands per second, in a thread that shares the
GIL with the event loop, so its per-row Python work is kept to building a tuple: the INSERT is
compiled by SQLAlchemy once (same table definitions, same dialect rules) and executed with the
driver's own `executemany`. Reads and everything else go through SQLAlchemy Core as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Dialect, Engine, Table

from veteran.store.schema import trajectories, trajectory_tags


class _Statement:
    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = table.insert().compile(
            dialect=dialect, column_keys=[c.name for c in table.columns]
        )
        self.sql = str(compiled)
        self.keys = tuple(compiled.positiontup or ()) if compiled.positional else None

    def params(self, rows: Sequence[dict[str, Any]]) -> Sequence[Any]:
        if self.keys is None:
            return rows
        keys = self.keys
        return [tuple(row[k] for k in keys) for row in rows]


class BulkInserter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._trajectories = _Statement(trajectories, engine.dialect)
        self._tags = _Statement(trajectory_tags, engine.dialect)

    def insert(self, rows: Sequence[dict[str, Any]], tags: Sequence[dict[str, str]]) -> None:
        """Insert `rows` (every column present) and their tag rows in one transaction."""
        conn = self._engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.executemany(self._trajectories.sql, self._trajectories.params(rows))
                if tags:
                    cursor.executemany(self._tags.sql, self._tags.params(tags))
            finally:
                cursor.close()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
