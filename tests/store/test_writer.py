"""The capture writer: group commit off the event loop, futures resolved after commit."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from veteran.store import Store, new_id
from veteran.types import TrajectoryRecord


def record(**fields: object) -> TrajectoryRecord:
    base: dict[str, object] = {
        "id": new_id(), "episode_id": new_id(), "created_at": time.time(),
        "request": {"messages": [{"role": "user", "content": "hi"}]},
    }
    return TrajectoryRecord(**{**base, **fields})  # type: ignore[arg-type]


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM trajectories")).scalar_one())


def test_durable_submit_resolves_after_commit_in_batches(store: Store) -> None:
    async def main() -> list[bool]:
        writer = store.writer(batch_max=64)
        writer.start()
        records = [record(tags={"n": str(i)}) for i in range(500)]
        results = await asyncio.gather(*(writer.submit(r) for r in records))
        assert count(store) == 500  # committed by the time every future resolved
        await writer.close()
        assert writer.batches < 500  # grouped, not one commit per record
        return results

    assert all(asyncio.run(main()))


def test_a_bad_row_does_not_take_its_batch_down(store: Store) -> None:
    async def main() -> tuple[list[bool], int]:
        writer = store.writer()
        writer.start()
        good = [record() for _ in range(5)]
        duplicate = record(id=good[0].id)  # primary key clash
        futures = [writer.submit(r) for r in [*good, duplicate]]
        results = await asyncio.gather(*futures)
        await writer.close()
        return results, writer.dropped

    results, dropped = asyncio.run(main())
    assert results == [True] * 5 + [False]
    assert dropped == 1
    assert count(store) == 5


def test_close_flushes_everything_queued(store: Store) -> None:
    async def main() -> None:
        writer = store.writer()
        writer.start()
        for _ in range(100):
            r = record()
            writer.submit_nowait(r)
        await writer.close()

    asyncio.run(main())
    assert count(store) == 100
