"""The capture writer: trajectories leave the event loop and are committed in batches.

One thread owns the write connection. The event loop hands it rows through a thread-safe
queue; the thread takes everything waiting (up to `batch_max`), inserts it in one transaction
(group commit) and then resolves the waiting futures with a single `call_soon_threadsafe`. In
durable mode the gateway awaits that future before sending a response's last byte, so a response
that reached a client in full is committed. A batch that fails is retried row by row so one bad
record cannot take its neighbours down; rows that still fail are counted in `dropped` and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from veteran.store.bulk import BulkInserter
from veteran.store.checkpoint import Checkpointer
from veteran.types import TrajectoryRecord

log = logging.getLogger("veteran.store")


@dataclass(slots=True)
class Capture:
    record: TrajectoryRecord
    future: asyncio.Future[bool] | None = None


class CaptureWriter:
    def __init__(self, engine: Engine, *, batch_max: int = 512) -> None:
        self._inserter = BulkInserter(engine)
        self._checkpointer = Checkpointer(engine) if engine.dialect.name == "sqlite" else None
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Capture | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.written = 0
        self.dropped = 0
        self.batches = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="veteran-writer", daemon=True)
        self._thread.start()
        if self._checkpointer is not None:
            self._checkpointer.start()

    def submit(self, record: TrajectoryRecord) -> asyncio.Future[bool]:
        """Queue a trajectory; the future becomes True once committed (False if it was dropped)."""
        assert self._loop is not None, "writer not started"
        future: asyncio.Future[bool] = self._loop.create_future()
        self._queue.put(Capture(record, future))
        return future

    def submit_nowait(self, record: TrajectoryRecord) -> None:
        """Queue a trajectory nobody waits for (non-durable mode, cancelled requests)."""
        self._queue.put(Capture(record))

    async def close(self) -> None:
        """Write everything queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        self._inserter.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            batch: list[Capture] = []
            if first is None:
                stop = True
            else:
                batch.append(first)
            while len(batch) < self._batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            if batch:
                self._write(batch)

    def _write(self, batch: list[Capture]) -> None:
        results = [True] * len(batch)
        try:
            self._insert(batch)
        except Exception:
            log.exception("capture batch of %d failed; retrying one by one", len(batch))
            for i, capture in enumerate(batch):
                try:
                    self._insert([capture])
                except Exception:
                    log.exception("capture of trajectory %s dropped", capture.record.id)
                    results[i] = False
        ok = sum(results)
        self.written += ok
        self.dropped += len(batch) - ok
        self.batches += 1
        waiting = [(c.future, r) for c, r in zip(batch, results, strict=True) if c.future]
        if waiting and self._loop is not None:
            # RuntimeError: the loop is gone, so nobody is waiting any more
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_resolve, waiting)

    def _insert(self, batch: list[Capture]) -> None:
        rows = [capture.record.to_row() for capture in batch]
        tags = [tag for capture in batch for tag in capture.record.tag_rows()]
        self._inserter.insert(rows, tags)


def _resolve(waiting: list[tuple[asyncio.Future[bool], bool]]) -> None:
    for future, ok in waiting:
        if not future.done():
            future.set_result(ok)
