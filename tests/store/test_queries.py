"""Listing by time through time-ordered ids: order, cursors and time bounds."""

from __future__ import annotations

import random

import pytest

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


def test_export_gives_each_trajectory_the_feedback_that_one_read_gives(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches of 3 over 10 trajectories in 4 episodes: feedback on trajectories, on episodes
    # that span batches, late feedback, none at all; export reads it per batch.
    from veteran.store import queries

    monkeypatch.setattr(queries, "EXPORT_BATCH", 3)
    records = [TrajectoryRecord(id=new_id(BASE + i), episode_id=f"ep{i % 4}",
                                request={"messages": []}, created_at=BASE + i)
               for i in range(10)]
    store.insert(records)
    store.add_feedback(trajectory_id=records[0].id, metric="resolved", value=True)
    store.add_feedback(episode_id="ep1", metric="rating", value=0.5)  # records 1, 5, 9
    store.add_feedback(trajectory_id=records[5].id, metric="resolved", value=False)
    store.add_feedback(episode_id="ep1", metric="rating", value=0.9)
    store.add_feedback(trajectory_id=records[8].id, metric="note", value="late")
    exported = list(store.export(TrajectoryFilter()))
    assert [t.id for t in exported] == [r.id for r in records]
    for t in exported:
        assert [f.id for f in t.feedback] == [f.id for f in store.trajectory(t.id).feedback]
    assert [(f.metric, f.value) for f in exported[5].feedback] == [
        ("rating", 0.5), ("resolved", False), ("rating", 0.9)]
    assert exported[3].feedback == [] and len(exported[9].feedback) == 2
