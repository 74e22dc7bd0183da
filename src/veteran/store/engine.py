"""Open a store database: SQLite (WAL) by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from veteran.errors import StoreError
from veteran.extras import install_hint

# The handle every store API is opened over (`Store.engine`), by a name rooms above the store use
# in signatures without importing SQLAlchemy themselves (SQL lives in store/ only).
StoreEngine = Engine


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver veteran installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_store_engine(url: str, *, sqlite_synchronous: str = "normal") -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception:
        raise StoreError("database_url is not a valid database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        synchronous = {"normal": "NORMAL", "full": "FULL"}[sqlite_synchronous]

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if backend == "postgresql":
        try:
            # connect_timeout: a store that is unreachable fails fast, so captures go to the
            # spool instead of holding the writer (and durable responses) for minutes
            return create_engine(
                url, pool_pre_ping=True, pool_size=8, connect_args={"connect_timeout": 5}
            )
        except ModuleNotFoundError:
            raise StoreError(f"PostgreSQL needs psycopg: {install_hint('postgres')}") from None
    raise StoreError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
