"""Promote: trajectories become question/answer memory linked back to them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from veteran.errors import NotFound
from veteran.memory.ingest import promote
from veteran.memory.store import MemoryStore
from veteran.store import Store, new_id
from veteran.testing.embedder import HashEmbedder
from veteran.types import TrajectoryRecord


def record(id: str, question: Any, answer: Any, function: str = "support") -> TrajectoryRecord:
    return TrajectoryRecord(
        id=id, episode_id=new_id(), created_at=time.time(), function=function, variant="a",
        provider="m", model="echo",
        request={"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": question},
        ]},
        response={"choices": [{"message": {"role": "assistant", "content": answer}}]},
    )


@pytest.fixture
def memory(store: Store) -> MemoryStore:
    store.insert([
        record("t1", "How long do refunds take?", "Five business days."),
        record("t2", [{"type": "text", "text": "Which cards"}, {"type": "text", "text": "work?"}],
               "Visa and Mastercard."),
        record("t3", "Anything?", None),
    ])
    store.add_feedback(metric="resolved", value=False, trajectory_id="t1")
    store.add_feedback(metric="resolved", value=True, trajectory_id="t1")
    store.add_feedback(metric="score", value=0.9, trajectory_id="t1")
    return MemoryStore(store.engine)


def test_trajectories_become_question_answer_documents(memory: MemoryStore, store: Store) -> None:
    embedder = HashEmbedder()
    report = promote(memory, embedder, store, "answers", ["t1", "t2", "t3"])
    assert (report.added, report.unchanged) == (2, 0)
    assert report.skipped == ["trajectory:t3: no answer text"]
    documents = memory.documents("answers")
    assert sorted(documents) == ["trajectory:t1", "trajectory:t2"]
    assert documents["trajectory:t1"].metadata["trajectory_id"] == "t1"
    chunks = {c.source: c for c, _ in memory.chunks("answers")}
    first = chunks["trajectory:t1"]
    assert first.text == "Q: How long do refunds take?\nA: Five business days."
    assert first.metadata["trajectory_id"] == "t1"
    assert first.metadata["function"] == "support"
    assert first.metadata["feedback"] == {"resolved": True, "score": 0.9}  # the latest values
    assert chunks["trajectory:t2"].text == "Q: Which cards\nwork?\nA: Visa and Mastercard."
    assert chunks["trajectory:t2"].metadata["feedback"] == {}


def test_promoting_again_is_free_unless_something_changed(
    memory: MemoryStore, store: Store
) -> None:
    embedder = HashEmbedder()
    promote(memory, embedder, store, "answers", ["t1", "t2"])
    embedder.calls = 0
    report = promote(memory, embedder, store, "answers", ["t1", "t2"])
    assert (report.added, report.updated, report.unchanged) == (0, 0, 2)
    assert embedder.calls == 0
    store.add_feedback(metric="score", value=0.2, trajectory_id="t2")
    report = promote(memory, embedder, store, "answers", ["t1", "t2"])
    assert (report.updated, report.unchanged) == (1, 1)
    chunks = {c.source: c for c, _ in memory.chunks("answers")}
    assert chunks["trajectory:t2"].metadata["feedback"] == {"score": 0.2}


def test_an_unknown_trajectory_stops_before_anything_is_written(
    memory: MemoryStore, store: Store
) -> None:
    with pytest.raises(NotFound, match="no trajectory 'nope'"):
        promote(memory, HashEmbedder(), store, "answers", ["t1", "nope"])
    assert memory.collection("answers") is None


def test_long_answers_are_chunked_with_the_collections_settings(
    memory: MemoryStore, store: Store
) -> None:
    answer = "\n\n".join(" ".join(f"word{p}x{i}" for i in range(30)) for p in range(4))
    store.insert([record("t4", "Explain everything", answer)])
    memory.ensure_collection("answers", embedder="test-hash-64", dim=64, chunk_tokens=40,
                             overlap_tokens=0)
    promote(memory, HashEmbedder(), store, "answers", ["t4"])
    chunks = sorted(memory.chunks("answers"), key=lambda cv: cv[0].ordinal)
    assert len(chunks) == 4
    assert all(c.tokens <= 40 and c.metadata["trajectory_id"] == "t4" for c, _ in chunks)
    assert chunks[0][0].text.startswith("Q: Explain everything\nA: word0x0")
