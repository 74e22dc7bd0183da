"""Time-ordered ids (UUIDv7), and the key bounds that turn a time range into an id range."""

from __future__ import annotations

import uuid_utils


def new_id(at: float | None = None) -> str:
    """A UUIDv7: unique across gateway replicas, and ordered by time. Given `at` (UNIX seconds)
    it carries that time, so a trajectory's id sorts with its `created_at` (to the millisecond)
    and listings page through the primary key instead of a separate time index."""
    if at is None:
        return str(uuid_utils.uuid7())
    return str(uuid_utils.uuid7(nanoseconds=int(at * 1e9)))


def id_ms(at: float) -> int:
    """The millisecond `new_id(at)` writes into its id (same arithmetic, same rounding)."""
    return int(at * 1e9) // 1_000_000


def id_floor(ms: int) -> str:
    """The smallest UUIDv7 of millisecond `ms`: every `new_id(at)` with `id_ms(at) >= ms` is >=."""
    hex_ms = f"{max(ms, 0):012x}"
    return f"{hex_ms[:8]}-{hex_ms[8:]}-7000-8000-000000000000"
