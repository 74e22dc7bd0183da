"""Time-ordered ids (UUIDv7), and the key bounds that turn a time range into an id range."""

from __future__ import annotations

import os
import time

SUB_MS_STEPS = 4096  # the 12 bits after the version hold the fraction of the millisecond


def new_id(at: float | None = None) -> str:
    """A UUIDv7 (RFC 9562): unique across gateway replicas, and ordered by time. Given `at` (UNIX
    seconds) it carries that time, so a trajectory's id sorts with its `created_at` and listings
    page through the primary key instead of a separate time index.

    The 12 bits after the version carry the fraction of the millisecond (RFC 9562 section 6.2,
    method 3), so ids made a quarter of a microsecond or more apart sort in the order they were
    made; the last 62 bits are random."""
    ns = int((time.time() if at is None else at) * 1e9)
    ms, sub_ms = divmod(ns, 1_000_000)
    fraction = sub_ms * SUB_MS_STEPS // 1_000_000
    random_62 = int.from_bytes(os.urandom(8)) >> 2
    value = (ms << 80) | (0x7 << 76) | (fraction << 64) | (0b10 << 62) | random_62
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_ms(at: float) -> int:
    """The millisecond `new_id(at)` writes into its id (same arithmetic, same rounding)."""
    return int(at * 1e9) // 1_000_000


def id_floor(ms: int) -> str:
    """The smallest UUIDv7 of millisecond `ms`: every `new_id(at)` with `id_ms(at) >= ms` is >=."""
    hex_ms = f"{max(ms, 0):012x}"
    return f"{hex_ms[:8]}-{hex_ms[8:]}-7000-8000-000000000000"
