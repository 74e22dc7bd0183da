"""The store: trajectories and feedback in SQLite or PostgreSQL, migrated by Alembic."""

from veteran.store.ids import new_id
from veteran.store.queries import TrajectoryFilter
from veteran.store.store import Store
from veteran.store.writer import CaptureWriter

__all__ = ["CaptureWriter", "Store", "TrajectoryFilter", "new_id"]
