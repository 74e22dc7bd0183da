"""The store: trajectories and feedback in SQLite or PostgreSQL, migrated by Alembic; the one
home of all SQL, and of the payload codec every payload byte passes (codec.py)."""

from veteran.store.codec import PayloadCodec
from veteran.store.ids import new_id
from veteran.store.queries import TrajectoryFilter
from veteran.store.store import Store
from veteran.store.writer import CaptureWriter

__all__ = ["CaptureWriter", "PayloadCodec", "Store", "TrajectoryFilter", "new_id"]
