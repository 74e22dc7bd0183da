"""The store: trajectories and feedback in SQLite or PostgreSQL, migrated by Alembic."""

from veteran.store.queries import TrajectoryFilter
from veteran.store.store import Store, new_id
from veteran.store.writer import CaptureWriter

__all__ = ["CaptureWriter", "Store", "TrajectoryFilter", "new_id"]
