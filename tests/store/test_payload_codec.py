"""Every payload column passes the payload codec, both ways.

A sealing codec stands in for encryption: what it stores is unreadable without it, and it
refuses to open anything it did not seal. The tests write a payload to every kind of place the
workspace keeps one (trajectories through the capture writer and an import, feedback, memory,
the semantic cache, eval results, the eval call cache, the capture spool), then look at the raw
database and files: the payload text appears nowhere, and every payload column declared in the
schema holds sealed values. Read back through the store's APIs, everything is as written.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from tests.store.test_spool import DiskFull
from veteran.evals.cache import CallCache
from veteran.evals.runs import Result, Runs
from veteran.memory.cache import SemanticCache
from veteran.memory.store import MemoryStore, document_id
from veteran.memory.types import Chunk
from veteran.store import PayloadCodec, Store, TrajectoryFilter, new_id
from veteran.store.codec import PAYLOAD
from veteran.store.configs import ConfigVersions
from veteran.store.schema import metadata
from veteran.types import TrajectoryRecord, now

SECRET = "Ms Example's card 4111 1111 1111 1111"  # what must never be stored in the clear
SEAL = "sealed:"
# Text columns that are metadata, on purpose: everything else of type Text must be payload.
PLAIN_TEXT = {("trajectories", "tags"), ("api_keys", "limits"), ("provider_switches", "reason"),
              ("eval_runs", "config"),
              # policy decisions and what the upstream said answered: never a detected value
              ("trajectories", "policy"), ("trajectories", "upstream"),
              # the audit chain's details: names, ids, digests and counts (docs/custody.md),
              # hashed as stored, so an entry verifies whatever key the payloads are under
              ("audit_log", "details")}


class Sealing(PayloadCodec):
    def encode(self, text: str) -> str:
        return SEAL + base64.b64encode(text[::-1].encode()).decode()

    def decode(self, stored: str) -> str:
        assert stored.startswith(SEAL), f"read without being sealed: {stored[:60]!r}"
        return base64.b64decode(stored[len(SEAL):]).decode()[::-1]


def payload_columns() -> list[sa.Column[Any]]:
    return [c for t in metadata.sorted_tables for c in t.c if c.info.get(PAYLOAD)]


def test_every_text_column_is_declared_payload_or_plain_on_purpose() -> None:
    undeclared = [
        (t.name, c.name) for t in metadata.sorted_tables for c in t.c
        if isinstance(c.type, sa.Text) and not c.info.get(PAYLOAD)
        and (t.name, c.name) not in PLAIN_TEXT
    ]
    assert undeclared == [], "a new Text column: mark it payload(...) or list it as plain"
    assert len(payload_columns()) == 15


def record(**fields: Any) -> TrajectoryRecord:
    created_at = now()
    base: dict[str, Any] = {
        "id": new_id(created_at), "episode_id": new_id(), "created_at": created_at,
        "function": "triage", "request": {"messages": [{"role": "user", "content": SECRET}]},
        "tags": {"team": "support"},
    }
    return TrajectoryRecord(**{**base, **fields})


def capture(store: Store, records: list[TrajectoryRecord], spool_dir: Path | None = None,
            disk: DiskFull | None = None) -> None:
    """Through the capture writer, as the gateway does (spooling while `disk` is full)."""
    async def main() -> None:
        writer = store.writer(spool_dir=spool_dir)
        writer.start()
        if disk is not None:
            writer._inserter.reset()  # new connections see the full disk
            disk.full = True
        assert all(await asyncio.gather(*(writer.submit(r) for r in records)))
        if disk is not None:
            assert writer.spooled == len(records)
            disk.full = False
        await writer.close()  # drains the spool on the way out

    asyncio.run(main())


def raw_database(store: Store) -> str:
    """Every value of every table, as stored."""
    values = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                values += [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row]
    return "\n".join(values)


def raw_files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_payload_is_sealed_in_the_database_and_read_back_whole(
    database_url: str, tmp_path: Path
) -> None:
    store = Store.open(database_url, codec=Sealing())
    try:
        ok = record(response={"choices": [{"message": {"content": f"Re: {SECRET}"}}]},
                    context={"memory": [{"text": SECRET}]},
                    attempts=[{"provider": "up", "status": "error", "error": SECRET}])
        failed = record(status="error", error=f"upstream said: {SECRET}")
        capture(store, [ok])
        store.insert([failed])
        store.add_feedback(metric="fix", value={"text": SECRET}, trajectory_id=ok.id,
                           comment=SECRET)

        memory = MemoryStore(store.engine)
        memory.ensure_collection("kb", embedder="e", dim=4, chunk_tokens=100, overlap_tokens=0)
        doc = document_id("kb", "cards.md", "h")
        chunk = Chunk(id=f"{doc}:0", collection="kb", document_id=doc, source="cards.md",
                      ordinal=0, text=SECRET, tokens=8, metadata={"heading": [SECRET]})
        memory.replace_document("kb", "cards.md", content_hash="h", size=len(SECRET),
                                metadata={"title": SECRET}, chunks=[chunk],
                                embeddings=np.full((1, 4), 0.5, dtype=np.float32))

        vector = np.full(4, 0.5, dtype=np.float32)
        answer = {"choices": [{"message": {"content": SECRET}}]}
        SemanticCache(store.engine).store("triage", "g", vector, answer, ttl_seconds=600,
                                          text=f"user: {SECRET}")

        runs = Runs(store.engine)
        run_id = runs.create("suite", {"variants": ["a"]})
        result = Result(sample_id="s1", variant="a", epoch=0, output={"text": SECRET},
                        scores={"judge": {"value": 0.0, "explanation": f"quoted {SECRET}"}})
        runs.add(run_id, [result])

        configs = ConfigVersions(store.engine)
        published, _ = configs.publish(f'# {SECRET}\n[server]\nport = 4000\n', "reload")

        stored = raw_database(store)
        assert SECRET not in stored
        assert SECRET[::-1] not in stored
        with store.engine.connect() as conn:
            for column in payload_columns():
                values = conn.execute(
                    sa.select(column).where(column.is_not(None))).scalars().all()
                assert values, f"no payload written to {column.table.name}.{column.name}"
                assert all(v.startswith(SEAL) for v in values), column

        got = store.trajectory(ok.id)
        assert (got.request, got.response, got.context, got.attempts) == (
            ok.request, ok.response, ok.context, ok.attempts)
        assert got.feedback is not None
        assert [(f.value, f.comment) for f in got.feedback] == [({"text": SECRET}, SECRET)]
        assert store.trajectory(failed.id).error == failed.error
        listed, _ = store.trajectories(TrajectoryFilter())
        assert {t.error for t in listed} == {None, failed.error}
        assert {t.id: t.request for t in store.export(TrajectoryFilter())} == {
            ok.id: ok.request, failed.id: failed.request}

        [(read, _)] = list(memory.chunks("kb"))
        assert (read.text, read.metadata) == (SECRET, {"heading": [SECRET]})
        assert memory.chunks_by_id([chunk.id])[chunk.id].text == SECRET
        assert memory.documents("kb")["cards.md"].metadata == {"title": SECRET}

        hit = SemanticCache(store.engine).lookup("triage", "g", vector, 0.9,
                                                 text=f"user: {SECRET}")
        assert hit is not None and hit.response == answer

        [back] = runs.results(run_id)
        assert (back.output, back.scores) == (result.output, result.scores)

        again = configs.get(published.version)
        assert again is not None and again.text == published.text
    finally:
        store.close()


def test_the_eval_call_cache_keeps_answers_sealed(tmp_path: Path) -> None:
    answer = {"choices": [{"message": {"content": SECRET}}]}
    cache = CallCache(tmp_path / "calls.db", codec=Sealing())
    cache.put("k", answer, 0.25, 12.0)
    cache.close()
    assert SECRET.encode() not in raw_files(tmp_path)
    reopened = CallCache(tmp_path / "calls.db", codec=Sealing())
    try:
        hit = reopened.get("k")
        assert hit is not None and (hit.response, hit.cost, hit.latency_ms) == (answer, 0.25, 12.0)
    finally:
        reopened.close()


def test_spooled_captures_are_sealed_on_disk(tmp_path: Path, monkeypatch: Any) -> None:
    """The spool holds rows as the store would have received them: sealed."""
    store = Store.open(f"sqlite:///{tmp_path}/full.db", codec=Sealing())
    spool = tmp_path / "spool"
    seen: list[bytes] = []
    try:
        disk = DiskFull(store)
        big = record(request={"messages": [{"role": "user", "content": SECRET * 400}]},
                     response={"choices": [{"message": {"content": SECRET}}]})
        from veteran.store import writer as writer_module

        drain = writer_module.CaptureWriter._drain

        def look_then_drain(self: Any, now: bool = False) -> None:
            seen.append(raw_files(spool))  # what the spool held before it drained
            drain(self, now)

        monkeypatch.setattr(writer_module.CaptureWriter, "_drain", look_then_drain)
        capture(store, [big], spool_dir=spool, disk=disk)
        assert any(SEAL.encode() in held for held in seen), "nothing was spooled"
        assert not any(SECRET.encode() in held for held in seen)
        assert store.trajectory(big.id).request == big.request
    finally:
        store.close()


@pytest.mark.parametrize("text", ["", "plain", SECRET, "ünïcödé \u2028 \x00"])
def test_the_default_codec_stores_text_as_it_is(text: str) -> None:
    codec = PayloadCodec()
    assert codec.encode(text) == text
    assert codec.decode(codec.encode(text)) == text
    assert codec.decode_json(codec.encode_json({"t": text})) == {"t": text}
    assert codec.encode_maybe(None) is None and codec.decode_maybe(None) is None
