"""The store: trajectories and feedback in SQLite or PostgreSQL, migrated by Alembic; the one
home of all SQL, and of the payload codec every payload byte passes (codec.py)."""

from veteran.store.audit import AuditCheck, AuditEntry, AuditLog, local_actor
from veteran.store.codec import PayloadCodec
from veteran.store.ids import new_id
from veteran.store.queries import (
    EVAL_ROLE,
    EVAL_RUN,
    EVAL_SAMPLE,
    EVAL_SUITE,
    EVAL_TAGS,
    TrajectoryFilter,
)
from veteran.store.store import Store
from veteran.store.writer import CaptureWriter

__all__ = [
    "AuditCheck",
    "AuditEntry",
    "AuditLog",
    "EVAL_ROLE",
    "EVAL_RUN",
    "EVAL_SAMPLE",
    "EVAL_SUITE",
    "EVAL_TAGS",
    "CaptureWriter",
    "PayloadCodec",
    "Store",
    "TrajectoryFilter",
    "local_actor",
    "new_id",
]
