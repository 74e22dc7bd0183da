"""The capture writer: trajectories leave the event loop and are committed in batches.

One thread owns the write connection. The event loop hands it rows through a thread-safe
queue; the thread takes everything waiting (up to `batch_max`), inserts it in one transaction
(group commit) and then resolves the waiting futures with a single `call_soon_threadsafe`. In
durable mode the gateway awaits that future before sending a response's last byte, so a response
that reached a client in full is committed. A batch that fails is retried row by row so one bad
record cannot take its neighbours down; rows that still fail are counted in `dropped` and logged.

When the store itself is unavailable (the failure is the connection or the disk, not a row),
batches go to the on-disk spool instead (spool.py) and their futures resolve once the spool
holds them: the gateway keeps answering. While the spool holds anything, new batches join it
(order kept, and a dead store is not hammered) and every `drain_interval` seconds the writer
tries to move it into the store. Other writers share the spool folder; what one left behind
when it stopped or died is adopted when this one starts, at each drain, and every
`adopt_interval` seconds while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from veteran.store.bulk import BulkInserter
from veteran.store.checkpoint import Checkpointer
from veteran.store.codec import PayloadCodec, codec_for
from veteran.store.rows import stored_row
from veteran.store.spool import Row, Spool, Tag
from veteran.types import TrajectoryRecord

log = logging.getLogger("veteran.store")


@dataclass(slots=True)
class Capture:
    record: TrajectoryRecord
    future: asyncio.Future[bool] | None = None


def store_unavailable(exc: BaseException) -> bool:
    """Whether a failed commit means the store is away (connection, disk) rather than a bad row.
    DBAPI error classes are named alike in sqlite3, psycopg and SQLAlchemy's wrappers."""
    if isinstance(exc, OSError):
        return True
    return type(exc).__name__ in ("OperationalError", "InterfaceError", "InternalError")


class CaptureWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        batch_max: int = 512,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 1 << 30,
        drain_interval: float = 2.0,
        adopt_interval: float = 30.0,
        codec: PayloadCodec | None = None,
    ) -> None:
        self._inserter = BulkInserter(engine)
        # rows are encoded once, here: the store and the spool both get them as stored
        self._codec = codec if codec is not None else codec_for(engine)
        self.spool = (
            Spool(spool_dir, max_bytes=spool_max_bytes, columns=TrajectoryRecord.COLUMNS)
            if spool_dir is not None else None
        )
        self.drain_interval = drain_interval
        self.adopt_interval = adopt_interval
        self._next_drain = 0.0
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
        if self.spool is not None:  # captures left by writers gone: drained by the thread
            self.spool.adopt()
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

    @property
    def spooled(self) -> int:
        """Trajectories waiting in the spool for the store to come back."""
        return self.spool.records if self.spool is not None else 0

    def _idle_timeout(self) -> float | None:
        """How long to wait for work: with a spool to drain, wake up to retry the store; with
        none, now and then to look for what other writers left behind."""
        if self.spool is None:
            return None
        return self.drain_interval if self.spooled else self.adopt_interval

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=self._idle_timeout())
            except queue.Empty:
                self._drain()
                continue
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
            if self.spooled:
                self._drain()
            if batch:
                self._write(batch)
        if self.spooled:  # one last try on the way out; what stays is left for the next writer
            self._drain(now=True)
        if self.spool is not None:
            self.spool.close()

    def _write(self, batch: list[Capture]) -> None:
        """Commit a batch (or spool it), then wake whoever waits for it."""
        if self.spooled:  # the store was away a moment ago: keep order, spool behind the rest
            self._resolve(batch, self._to_spool(batch))
            return
        results = [True] * len(batch)
        try:
            self._insert(batch)
        except Exception as exc:
            if self._spools(exc):
                self._resolve(batch, self._to_spool(batch))
                return
            log.exception("capture batch of %d failed; retrying one by one", len(batch))
            for i, capture in enumerate(batch):
                try:
                    self._insert([capture])
                except Exception as row_exc:
                    if self._spools(row_exc):
                        results[i:] = self._to_spool(batch[i:])
                        break
                    log.exception("capture of trajectory %s dropped", capture.record.id)
                    results[i] = False
                    self.dropped += 1
                else:
                    self.written += 1
        else:
            self.written += len(batch)
        self._resolve(batch, results)

    def _spools(self, exc: Exception) -> bool:
        """Whether `exc` means the store is away and there is a spool to turn to."""
        if self.spool is None or not store_unavailable(exc):
            return False
        log.warning("store unavailable (%s); spooling captures to %s until it returns",
                    type(exc).__name__, self.spool.folder)
        self._inserter.reset()
        self._next_drain = time.monotonic() + self.drain_interval
        return True

    def _to_spool(self, batch: list[Capture]) -> list[bool]:
        """Spool a batch; captures past the spool's bound are dropped (and counted)."""
        assert self.spool is not None
        try:
            kept = self.spool.append([(stored_row(c.record, self._codec), c.record.tag_rows())
                                      for c in batch])
        except OSError:
            log.exception("capture spool unwritable; %d captures dropped", len(batch))
            kept = 0
        if kept < len(batch):
            log.error("capture spool full (%d bytes); %d captures dropped",
                      self.spool.max_bytes, len(batch) - kept)
            self.dropped += len(batch) - kept
        return [True] * kept + [False] * (len(batch) - kept)

    def _drain(self, now: bool = False) -> None:
        """Move the spool into the store if it is back (duplicates from an earlier, cut-short
        drain are skipped); otherwise try again in `drain_interval` seconds. A row the store
        refuses would block the spool forever: its file is set aside (spool.py)."""
        if self.spool is None or (not now and time.monotonic() < self._next_drain):
            return
        try:
            moved = self.spool.drain(self._insert_once, self._batch_max,
                                     refused=lambda exc: not store_unavailable(exc))
        except Exception as exc:
            if not store_unavailable(exc):  # never the store's answer: a bug, yet keep writing
                log.exception("capture spool drain failed")
            self._inserter.reset()
            self._next_drain = time.monotonic() + self.drain_interval
            return
        if moved:
            log.warning("store back: %d spooled captures drained into it", moved)
        self.written += moved

    def _insert_once(self, rows: list[Row], tags: list[Tag]) -> None:
        self._inserter.insert(rows, tags, ignore_duplicates=True)

    def _resolve(self, batch: list[Capture], results: list[bool]) -> None:
        self.batches += 1
        waiting = [(c.future, r) for c, r in zip(batch, results, strict=True) if c.future]
        if waiting and self._loop is not None:
            # RuntimeError: the loop is gone, so nobody is waiting any more
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_resolve, waiting)

    def _insert(self, batch: list[Capture]) -> None:
        rows = [stored_row(capture.record, self._codec) for capture in batch]
        tags = [tag for capture in batch for tag in capture.record.tag_rows()]
        self._inserter.insert(rows, tags)


def _resolve(waiting: list[tuple[asyncio.Future[bool], bool]]) -> None:
    for future, ok in waiting:
        if not future.done():
            future.set_result(ok)
