"""The capture spool: where trajectories wait, on local disk, while the store is unavailable.

When a commit fails because the store is away (PostgreSQL down, SQLite's disk full, a broken
connection), the capture writer appends the batch to `captures.jsonl` in the spool folder (one
JSON line per trajectory: its row and its tags, exactly what the store would have received) and
the gateway carries on answering. The writer tries to drain the spool into the store every few
seconds; rows go in with "insert, ignore duplicates", so a drain cut short and repeated stores
each trajectory once. The spool is bounded (`capture.spool_max_bytes`): past it, captures are
dropped and counted (`capture_dropped` in `GET /healthz`), never blocking inference.

Only the writer thread touches the spool, so it needs no locks. A spool left by a previous run
(the store was down when the gateway stopped) is drained when the next one starts.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("veteran.store")
Row = tuple[Any, ...]
Tag = tuple[str, str, str]


class Spool:
    """Spooled rows are objects keyed by column name (`columns`), so a spool written by one
    version drains into the next one's schema (a column it did not know is stored as NULL)."""

    def __init__(self, folder: Path, *, max_bytes: int, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.folder = folder
        self.path = folder / "captures.jsonl"
        self.max_bytes = max_bytes
        self.bytes = self.path.stat().st_size if self.path.exists() else 0
        self.records = _count_lines(self.path) if self.bytes else 0

    def __bool__(self) -> bool:
        return self.records > 0

    def append(self, entries: Sequence[tuple[Row, list[Tag]]]) -> int:
        """Append what fits under the bound; returns how many entries were written."""
        lines = []
        size = self.bytes
        for row, tags in entries:
            line = orjson.dumps(
                {"row": dict(zip(self.columns, row, strict=True)), "tags": tags}
            ) + b"\n"
            if size + len(line) > self.max_bytes:
                break
            lines.append(line)
            size += len(line)
        if lines:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as f:
                f.write(b"".join(lines))
                f.flush()
                os.fsync(f.fileno())  # the client is told its call is kept: keep it
            self.bytes = size
            self.records += len(lines)
        return len(lines)

    def batches(self, size: int) -> Iterator[tuple[list[Row], list[Tag]]]:
        """The spooled entries, oldest first, in batches of `size`."""
        rows: list[Row] = []
        tags: list[Tag] = []
        with self.path.open("rb") as f:
            for line in f:
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:  # a line cut by a crash mid-append
                    log.warning("skipping a damaged line in the capture spool")
                    continue
                values = entry["row"]
                rows.append(tuple(values.get(column) for column in self.columns))
                tags.extend(tuple(t) for t in entry["tags"])
                if len(rows) >= size:
                    yield rows, tags
                    rows, tags = [], []
        if rows:
            yield rows, tags

    def set_aside(self) -> None:
        """Move the spool to `captures.rejected-TIME.jsonl` for a person to look at; the next
        spooled capture starts a new one."""
        target = self.folder / f"captures.rejected-{int(time.time())}.jsonl"
        self.path.rename(target)
        log.error("capture spool moved to %s: the store refused a row in it", target)
        self.bytes = 0
        self.records = 0

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.bytes = 0
        self.records = 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)
