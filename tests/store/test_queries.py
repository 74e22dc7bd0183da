"""Listing by time through time-ordered ids: order, cursors and time bounds."""

from __future__ import annotations

import random

from veteran.store import Store, TrajectoryFilter, new_id
from veteran.store.ids import id_floor, id_ms
from veteran.types import TrajectoryRecord

BASE = 1_795_000_000.0


def test_ids_carry_their_time_and_floors_bound_them() -> None:
    # ordered within a millisecond too: calls a few microseconds apart sort in order
    times = [BASE + i * 0.000005 + random.random() * 0.000001 for i in range(2000)]
    ids = [new_id(t) for t in times]
    assert ids == sorted(ids)
    for t, id in zip(times, ids, strict=True):
        assert id_floor(id_ms(t)) <= id < id_floor(id_ms(t) + 1)
    # the edges where float rounding bites: times a hair either side of a millisecond
    for ms in range(1_795_000_000_000, 1_795_000_000_050):
        for t in (ms / 1000, (ms - 1e-6) / 1000, (ms + 1e-6) / 1000):
            assert id_floor(id_ms(t)) <= new_id(t) < id_floor(id_ms(t) + 1)


def test_ids_are_rfc_9562_version_7_and_unique() -> None:
    import uuid

    ids = {new_id(BASE) for _ in range(10_000)}  # the same instant: the random bits differ
    assert len(ids) == 10_000
    parsed = uuid.UUID(next(iter(ids)))
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(parsed.hex[:12], 16) == int(BASE * 1000)


def test_time_filters_pages_and_order_with_imported_history(store: Store) -> None:
    # out-of-order insertion of old and new records, as an import next to live traffic does
    times = [BASE + i * 0.5 for i in range(40)]
    shuffled = times[:]
    random.shuffle(shuffled)
    store.insert(
        TrajectoryRecord(id=new_id(t), episode_id="e", request={"messages": []}, created_at=t)
        for t in shuffled
    )
    page, cursor = store.trajectories(TrajectoryFilter(), limit=15)
    seen = [p.created_at for p in page]
    while cursor:
        page, cursor = store.trajectories(TrajectoryFilter(), limit=15, cursor=cursor)
        seen += [p.created_at for p in page]
    assert seen == sorted(times, reverse=True)

    def window(since: float | None, until: float | None) -> list[float]:
        page, _ = store.trajectories(TrajectoryFilter(since=since, until=until), limit=1000)
        return sorted(p.created_at for p in page)

    assert window(BASE + 5, BASE + 7.5) == [t for t in times if BASE + 5 <= t < BASE + 7.5]
    assert window(BASE + 19.5, None) == [BASE + 19.5]
    assert window(None, BASE + 0.5) == [BASE]
    assert window(BASE + 5.25, BASE + 5.75) == [BASE + 5.5]
