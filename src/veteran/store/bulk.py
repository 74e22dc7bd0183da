"""Bulk inserts of trajectories on one DBAPI connection.

The capture writer runs on every request, thousands of times a second, in a thread that shares
the GIL with the event loop: every microsecond of Python it runs is taken from the gateway. So
the INSERT text is built once per dialect from the table definitions, rows arrive as tuples
(`TrajectoryRecord.to_row`), and the writer keeps one connection for its life instead of a pool
checkout (and reset) per batch. Measured on the 2-core machine: see bench/RESULTS.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Dialect, Engine, Table

from veteran.store.schema import trajectories, trajectory_tags
from veteran.types import TrajectoryRecord

log = logging.getLogger("veteran.store")
TAG_COLUMNS = ("trajectory_id", "key", "value")
PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_sql(
    table: Table, columns: Sequence[str], dialect: Dialect, *, ignore_duplicates: bool = False
) -> str:
    if set(columns) != {c.name for c in table.columns}:
        raise RuntimeError(f"bulk columns for {table.name} do not match the schema")
    placeholder = PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        raise RuntimeError(f"unsupported DBAPI paramstyle {dialect.paramstyle!r}")
    quote = dialect.identifier_preparer.quote
    # ON CONFLICT DO NOTHING: SQLite 3.24+ and PostgreSQL 9.5+ spell it alike
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([placeholder] * len(columns))})"
        + (" ON CONFLICT DO NOTHING" if ignore_duplicates else "")
    )


class BulkInserter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._trajectories = insert_sql(trajectories, TrajectoryRecord.COLUMNS, engine.dialect)
        self._tags = insert_sql(trajectory_tags, TAG_COLUMNS, engine.dialect)
        self._once = (
            insert_sql(trajectories, TrajectoryRecord.COLUMNS, engine.dialect,
                       ignore_duplicates=True),
            insert_sql(trajectory_tags, TAG_COLUMNS, engine.dialect, ignore_duplicates=True),
        )
        self._conn: Any = None

    def insert(
        self,
        rows: Sequence[tuple[Any, ...]],
        tags: Sequence[tuple[str, str, str]],
        *,
        ignore_duplicates: bool = False,
    ) -> None:
        """Insert rows (`TrajectoryRecord.COLUMNS` order) and tag rows in one transaction;
        with `ignore_duplicates`, rows whose id is already stored are skipped (spool drains)."""
        if self._conn is None:
            self._conn = self._engine.raw_connection()
            if self._engine.dialect.name == "sqlite":
                # checkpoints run beside the writer, never inside its commits (checkpoint.py)
                self._conn.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
        dbapi = self._conn.driver_connection
        trajectories_sql, tags_sql = self._once if ignore_duplicates else (
            self._trajectories, self._tags)
        try:
            cursor = dbapi.cursor()
            try:
                cursor.executemany(trajectories_sql, rows)
                if tags:
                    cursor.executemany(tags_sql, tags)
            finally:
                cursor.close()
            dbapi.commit()
        except BaseException:
            self._recover()
            raise

    def _recover(self) -> None:
        try:
            self._conn.driver_connection.rollback()
        except Exception:  # the connection itself is broken: open a new one next time
            log.warning("store connection lost; reconnecting on the next batch")
            self._conn.invalidate()
            self.close()

    def reset(self) -> None:
        """Drop the connection (the store went away); the next insert opens a new one."""
        if self._conn is not None:
            try:
                self._conn.invalidate()
            except Exception:
                log.debug("invalidating a broken store connection failed", exc_info=True)
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
