"""The capture spool: where trajectories wait, on local disk, while the store is unavailable.

When a commit fails because the store is away (PostgreSQL down, SQLite's disk full, a broken
connection), the capture writer appends the batch to its file in the workspace's `spool/` (one
JSON line per trajectory: its row and its tags, exactly what the store would have received) and
the gateway carries on answering. The writer tries to drain the spool into the store every few
seconds; rows go in with "insert, ignore duplicates", so a drain cut short and repeated stores
each trajectory once.

Several writers share one folder: every `veteran serve` on a workspace, and an `eval run` or
`eval pairwise` beside them. One shared file lost captures: a drain read it, another process
appended and fsynced, the drain deleted it. So no file has two writers:

- A writer appends only to its own `captures-PID-TOKEN.jsonl`, made on its first spooled batch,
  and holds an exclusive `flock` on it while it lives. The lock says the writer is alive: the
  kernel drops it when the process exits or dies.
- A drain first adopts every spool file whose lock it can take (left by a writer that stopped or
  died with captures spooled, or the single `captures.jsonl` of versions before this one) and
  keeps that lock until the file is in the store; then it sends each file it holds, and deletes
  it only after the commit. A drain that dies half-way leaves the file unlocked for the next
  one, which sends it again: the rows already in are skipped, so nothing is lost and nothing is
  stored twice. A writer adopts when it starts, at every drain and now and then while idle
  (writer.py), so what an `eval run` left during an outage reaches the store through the
  `veteran serve` beside it.
- An old `captures.jsonl` is renamed as it is adopted, so an older version still running starts
  a new one instead of appending to a file being drained (its append in flight at that instant
  is the one thing not covered: stop older versions before upgrading).

`capture.spool_max_bytes` bounds the folder, all writers together (files set aside for a person
excepted): it is there so that a store outage cannot fill the workspace's disk, which they
share. Each writer measures the folder before it appends, so writers appending at the same
instant may each pass the bound by one batch. Past it, captures are dropped and counted
(`capture_dropped` in `GET /healthz`), never blocking inference.

One writer thread touches a `Spool`, so the object needs no locks of its own. `flock` binds an
open file, not a process, so two writers in one process exclude each other too; it is POSIX
(as is uvloop, under the gateway) and unreliable on network file systems: keep the workspace on
a local disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("veteran.store")
Row = tuple[Any, ...]
Tag = tuple[str, str, str]
Insert = Callable[[list[Row], list[Tag]], None]
LEGACY = "captures.jsonl"  # the one shared file of versions before per-writer files


def encode_line(columns: Sequence[str], row: Row, tags: Sequence[Tag]) -> bytes:
    """One spooled trajectory as a JSON line. Rows are keyed by column name, so a spool written
    by one version drains into the next one's schema (a column it did not know is NULL)."""
    return orjson.dumps({"row": dict(zip(columns, row, strict=True)), "tags": tags}) + b"\n"


def decode_line(columns: Sequence[str], line: bytes) -> tuple[Row, list[Tag]]:
    """The row (in `columns` order) and tag rows of a line `encode_line` wrote."""
    entry = orjson.loads(line)
    values = entry["row"]
    return (tuple(values.get(column) for column in columns),
            [(t[0], t[1], t[2]) for t in entry["tags"]])


@dataclass(slots=True)
class _Held:
    """A spool file whose lock this writer holds: its own, or one it adopted."""

    path: Path
    fd: int
    records: int


class Spool:
    def __init__(self, folder: Path, *, max_bytes: int, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.folder = folder
        self.max_bytes = max_bytes
        self._own: _Held | None = None
        self._adopted: list[_Held] = []

    @property
    def records(self) -> int:
        """Trajectories in the files this writer holds (its own and those it adopted)."""
        return sum(held.records for held in self._held())

    def __bool__(self) -> bool:
        return self.records > 0

    def append(self, entries: Sequence[tuple[Row, list[Tag]]]) -> int:
        """Append what fits under the bound to this writer's file; returns how many entries
        were written (all of them fsynced)."""
        used = self._folder_bytes()
        lines = []
        for row, tags in entries:
            line = encode_line(self.columns, row, tags)
            if used + len(line) > self.max_bytes:
                break
            lines.append(line)
            used += len(line)
        if lines:
            own = self._own or self._create()
            _append(own.fd, b"".join(lines))  # the client is told its call is kept: keep it
            own.records += len(lines)
        return len(lines)

    def adopt(self) -> int:
        """Take the lock of every spool file that no live writer holds, for the next drain;
        returns how many trajectories they hold."""
        held = {held.path.name for held in self._held()}
        try:
            names = sorted(name for name in os.listdir(self.folder) if _spooled(name))
        except FileNotFoundError:
            return 0
        found = 0
        for name in names:
            if name in held:
                continue
            path = self.folder / name
            fd = _claim(path, os.O_RDWR)
            if fd is None:
                continue  # a live writer's, or another drain has it
            if name == LEGACY:
                renamed = self.folder / _own_name()
                os.rename(path, renamed)
                path = renamed
            records = _count_lines(fd)
            self._adopted.append(_Held(path, fd, records))
            found += records
        if found:
            log.warning("adopted %d spooled captures left by writers gone from %s",
                        found, self.folder)
        return found

    def drain(self, insert: Insert, batch_size: int, *,
              refused: Callable[[Exception], bool]) -> int:
        """Adopt what is unclaimed, then send every file held through `insert` in batches of
        `batch_size`, deleting each only once all of it is in; returns how many entries went.

        When `insert` raises and `refused(exc)`, the store refuses a row in the file, which
        would block it forever: the file is moved to `captures.rejected-TIME-TOKEN.jsonl` for a
        person to look at, and the drain goes on. Any other exception propagates (the store is
        away) and the files stay held for the next try."""
        self.adopt()
        moved = 0
        for held in self._held():
            sent = 0
            try:
                for rows, tags in _batches(held.fd, self.columns, batch_size):
                    insert(rows, tags)
                    sent += len(rows)
            except Exception as exc:
                if not refused(exc):
                    raise
                self._set_aside(held)
                continue
            moved += sent
            os.unlink(held.path)  # before the lock goes, so no one can adopt it after
            self._let_go(held)
        return moved

    def close(self) -> None:
        """Let go of every file held; what they hold is left for the next writer to adopt."""
        for held in self._held():
            self._let_go(held)

    def _held(self) -> list[_Held]:
        """Adopted files first: they are older than this writer's own."""
        return [*self._adopted, *([self._own] if self._own is not None else [])]

    def _create(self) -> _Held:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(16):
            path = self.folder / _own_name()
            try:
                fd = _claim(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                continue
            if fd is not None:  # None: a drain took the new, empty file before us
                self._own = _Held(path, fd, 0)
                return self._own
        raise OSError(f"cannot make a spool file in {self.folder}")

    def _set_aside(self, held: _Held) -> None:
        target = self.folder / f"captures.rejected-{int(time.time())}-{secrets.token_hex(4)}.jsonl"
        os.rename(held.path, target)
        log.exception("capture spool file moved to %s: the store refused a row in it", target)
        self._let_go(held)

    def _let_go(self, held: _Held) -> None:
        os.close(held.fd)  # and with it the lock
        if held is self._own:
            self._own = None
        else:
            self._adopted.remove(held)

    def _folder_bytes(self) -> int:
        """Bytes in every writer's spool files: the bound is on all of them together."""
        total = 0
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if _spooled(entry.name):
                        with contextlib.suppress(FileNotFoundError):  # drained meanwhile
                            total += entry.stat().st_size
        except FileNotFoundError:
            return 0
        return total


def _spooled(name: str) -> bool:
    """Whether `name` is a spool file waiting for the store (set-aside files are not)."""
    return name == LEGACY or (name.startswith("captures-") and name.endswith(".jsonl"))


def _own_name() -> str:
    return f"captures-{os.getpid()}-{secrets.token_hex(6)}.jsonl"


def _claim(path: Path, flags: int) -> int | None:
    """Open `path` and take its lock; None when another writer or drain holds it, or it is gone.
    The lock is per open file, so it is taken without waiting and checked to still be on the
    file named `path`: a drain may have deleted that file between our open and our lock."""
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _append(fd: int, data: bytes) -> None:
    """Write all of `data` and fsync it. A write cut short (disk full) is undone, so the next
    append does not glue its first line onto half a line."""
    start = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        os.ftruncate(fd, start)
        raise


def _count_lines(fd: int) -> int:
    lines, offset = 0, 0
    while chunk := os.pread(fd, 1 << 20, offset):
        lines += chunk.count(b"\n")
        offset += len(chunk)
    return lines


def _batches(fd: int, columns: Sequence[str], size: int) -> Iterator[tuple[list[Row], list[Tag]]]:
    """A held file's entries, oldest first, in batches of `size`."""
    rows: list[Row] = []
    tags: list[Tag] = []
    with open(os.dup(fd), "rb") as f:  # a dup shares the offset: start from the top
        f.seek(0)
        for line in f:
            try:
                row, row_tags = decode_line(columns, line)
            except orjson.JSONDecodeError:  # a line cut by a crash mid-append
                log.warning("skipping a damaged line in the capture spool")
                continue
            rows.append(row)
            tags.extend(row_tags)
            if len(rows) >= size:
                yield rows, tags
                rows, tags = [], []
    if rows:
        yield rows, tags
