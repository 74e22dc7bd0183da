"""The spool's files: one per writer, adopted by a drain only when no live writer holds it, kept
until what they hold is committed, bounded all together (spool.py). Several `Spool` objects on
one folder stand for several writers: their locks exclude each other within a process too."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from veteran.store import Store, new_id
from veteran.store.bulk import BulkInserter
from veteran.store.spool import LEGACY, Row, Spool, Tag, encode_line
from veteran.types import TrajectoryRecord

COLUMNS = ("id", "text")
Sent = list[tuple[list[Row], list[Tag]]]


def entries(n: int) -> list[tuple[Row, list[Tag]]]:
    return [((new_id(), "x" * 50), [(f"t{i}", "n", str(i))]) for i in range(n)]


def sending(sent: Sent) -> Callable[[list[Row], list[Tag]], None]:
    return lambda rows, tags: sent.append((rows, tags))


def never(exc: Exception) -> bool:
    return False


def ids(sent: Sent) -> list[str]:
    return sorted(row[0] for rows, _ in sent for row in rows)


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def spool(folder: Path, max_bytes: int = 1 << 20, columns: tuple[str, ...] = COLUMNS) -> Spool:
    return Spool(folder, max_bytes=max_bytes, columns=columns)


def test_a_live_writers_file_is_left_to_it_and_adopted_once_it_stops(tmp_path: Path) -> None:
    a, b = spool(tmp_path), spool(tmp_path)
    written = entries(3)
    assert a.append(written) == 3
    sent: Sent = []
    assert b.drain(sending(sent), 10, refused=never) == 0  # a lives: its file is a's
    assert sent == [] and a.records == 3 and b.records == 0
    a.close()  # a stops with its captures still spooled
    assert b.adopt() == 3 and b.records == 3
    assert spool(tmp_path).adopt() == 0  # b holds them now
    assert b.drain(sending(sent), 10, refused=never) == 3
    assert ids(sent) == sorted(row[0] for row, _ in written)
    assert files(tmp_path) == [] and b.records == 0


def test_each_writer_appends_to_its_own_file(tmp_path: Path) -> None:
    a, b = spool(tmp_path), spool(tmp_path)
    a.append(entries(2))
    b.append(entries(1))
    a.append(entries(1))
    names = files(tmp_path)
    assert len(names) == 2 and all(n.startswith(f"captures-{os.getpid()}-") for n in names)
    assert (a.records, b.records) == (3, 1)
    sent: Sent = []
    assert a.drain(sending(sent), 10, refused=never) == 3
    assert len(files(tmp_path)) == 1  # b's
    b.close()


def test_an_old_captures_jsonl_is_adopted_renamed_and_drained(tmp_path: Path) -> None:
    old = entries(2)
    legacy = tmp_path / LEGACY
    legacy.write_bytes(b"".join(encode_line(COLUMNS, row, tags) for row, tags in old)
                       + b'{"row": {"id": "cut sho')  # a crash mid-append
    s = spool(tmp_path)
    assert s.adopt() == 2
    assert not legacy.exists()  # an older version still running starts a new one
    later = entries(1)
    legacy.write_bytes(encode_line(COLUMNS, *later[0]))
    sent: Sent = []
    assert s.drain(sending(sent), 10, refused=never) == 3
    assert ids(sent) == sorted(row[0] for row, _ in old + later)
    assert files(tmp_path) == []


def test_the_bound_is_on_all_writers_together(tmp_path: Path) -> None:
    line = len(encode_line(COLUMNS, *entries(1)[0]))
    a, b = spool(tmp_path, max_bytes=3 * line), spool(tmp_path, max_bytes=3 * line)
    assert a.append(entries(2)) == 2
    assert b.append(entries(2)) == 1  # room for one more, in all
    assert a.append(entries(1)) == 0
    assert sum((tmp_path / n).stat().st_size for n in files(tmp_path)) == 3 * line
    a.close()
    b.close()


def test_a_file_the_store_refuses_is_set_aside_and_the_rest_drains(tmp_path: Path) -> None:
    good = entries(2)
    (tmp_path / "captures-1-bad.jsonl").write_bytes(b'{"neither": "row nor tags"}\n')
    (tmp_path / "captures-1-good.jsonl").write_bytes(
        b"".join(encode_line(COLUMNS, row, tags) for row, tags in good))
    sent: Sent = []
    s = spool(tmp_path)
    assert s.drain(sending(sent), 10, refused=lambda exc: isinstance(exc, KeyError)) == 2
    assert ids(sent) == sorted(row[0] for row, _ in good)
    (rejected,) = files(tmp_path)
    assert rejected.startswith("captures.rejected-")
    assert s.adopt() == 0  # set aside for a person, not drained again


def test_a_failed_append_leaves_no_half_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = spool(tmp_path)
    s.append(entries(1))
    (name,) = files(tmp_path)
    size = (tmp_path / name).stat().st_size

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        s.append(entries(3))
    monkeypatch.undo()
    assert (tmp_path / name).stat().st_size == size and s.records == 1
    assert s.append(entries(1)) == 1
    sent: Sent = []
    assert s.drain(sending(sent), 10, refused=never) == 2


def record(i: int) -> TrajectoryRecord:
    return TrajectoryRecord(
        id=new_id(), episode_id=new_id(), created_at=time.time(),
        request={"messages": [{"role": "user", "content": f"call {i}"}]}, tags={"n": str(i)},
    )


def stored(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        trajectories = conn.execute(sa.text("SELECT count(*) FROM trajectories")).scalar_one()
        tags = conn.execute(sa.text("SELECT count(*) FROM trajectory_tags")).scalar_one()
    return int(trajectories), int(tags)


def test_a_drain_cut_short_is_sent_again_and_stored_once(tmp_path: Path, store: Store) -> None:
    records = [record(i) for i in range(5)]
    folder = tmp_path / "spool"
    s = spool(folder, columns=TrajectoryRecord.COLUMNS)
    s.append([(r.to_row(), r.tag_rows()) for r in records])
    inserter = BulkInserter(store.engine)
    calls: list[int] = []

    def store_goes_away(rows: list[Row], tags: list[Tag]) -> None:
        calls.append(len(rows))
        if len(calls) == 2:
            raise ConnectionError("store away")
        inserter.insert(rows, tags, ignore_duplicates=True)

    def insert(rows: list[Row], tags: list[Tag]) -> None:
        inserter.insert(rows, tags, ignore_duplicates=True)

    with pytest.raises(ConnectionError):
        s.drain(store_goes_away, 2, refused=never)
    assert stored(store) == (2, 2) and s.records == 5  # the file stays, all of it
    assert s.drain(insert, 2, refused=never) == 5  # the first two again: skipped
    assert stored(store) == (5, 5)
    assert files(folder) == []
    inserter.close()


def test_entries_keep_their_shape_through_a_line(tmp_path: Path) -> None:
    s = spool(tmp_path, columns=("id", "n", "meta"))
    row: Any = ("a", 3, None)
    s.append([(row, [("a", "k", "v")])])
    sent: Sent = []
    s.drain(sending(sent), 10, refused=never)
    assert sent == [([("a", 3, None)], [("a", "k", "v")])]
