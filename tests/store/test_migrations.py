"""Migrations: a blank database is brought to head, each migration recorded once."""

from __future__ import annotations

import sqlalchemy as sa

from veteran.store import Store
from veteran.store.engine import create_store_engine
from veteran.store.migrate import current_revision, head_revision, migrate
from veteran.store.schema import metadata


def test_blank_database_migrates_to_head(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        assert current_revision(engine) is None
        migrate(engine)
        assert current_revision(engine) == head_revision()
        tables = set(sa.inspect(engine).get_table_names())
        assert {"trajectories", "trajectory_tags", "feedback", "alembic_version"} <= tables
        migrate(engine)  # applying again is a no-op
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert [v[0] for v in versions] == [head_revision()]
    finally:
        engine.dispose()


def test_migrations_match_the_schema_module(database_url: str) -> None:
    """The tables Alembic builds are the tables the code describes (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = Store.open(database_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store.open(f"sqlite:///{tmp_path}/v.db")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()
