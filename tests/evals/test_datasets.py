"""Datasets from files (inspect_ai, OpenAI evals) and from the store; splits by episode."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from veteran.evals.datasets import from_store, load_file, split
from veteran.evals.errors import DatasetError
from veteran.evals.types import Sample
from veteran.store import Store, new_id
from veteran.types import TrajectoryRecord


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path


def test_inspect_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"input": "2+2?", "target": "4", "id": 7, "metadata": {"level": 1}, "source": "x"},
        {"input": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
         "target": ["hello", "hi"], "choices": ["a", "b"]},
    ])
    first, second = load_file(path)
    assert first.id == "7" and first.messages == [{"role": "user", "content": "2+2?"}]
    assert first.reference == "4" and first.metadata == {"level": 1, "source": "x"}
    assert second.messages[0]["role"] == "system" and second.reference == ["hello", "hi"]
    assert second.metadata["choices"] == ["a", "b"]
    assert load_file(path)[1].id == second.id and len(second.id) == 16  # content hash, stable


def test_openai_evals_jsonl_and_repeated_content(tmp_path: Path) -> None:
    row = {"input": [{"role": "user", "content": "capital of France?"}], "ideal": "Paris"}
    samples = load_file(write_jsonl(tmp_path / "e.jsonl", [row, row]))
    assert samples[0].reference == "Paris"
    assert samples[1].id == samples[0].id + "#2"


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('input,target,id,topic\n"Say ""hi""",hi,a,greet\nquestion,,b,misc\n')
    a, b = load_file(path)
    assert a.messages == [{"role": "user", "content": 'Say "hi"'}] and a.reference == "hi"
    assert a.metadata == {"topic": "greet"} and b.reference is None and b.id == "b"


@pytest.mark.parametrize(("content", "where", "problem"), [
    (b'{"input": "ok"}\n{"target": "x"}\n', 2, "no `input`"),
    (b'{"input": "ok"}\n\nnot json\n', 3, "not JSON"),
    (b'{"input": [{"content": "x"}]}\n', 1, "chat message"),
    (b'{"input": "a", "id": "x"}\n{"input": "b", "id": "x"}\n', 2, "repeats line 1"),
    (b'[1, 2]\n', 1, "JSON object"),
])
def test_bad_rows_name_file_and_line(
    tmp_path: Path, content: bytes, where: int, problem: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=rf"bad\.jsonl:{where}: .*{problem}"):
        load_file(path)


def test_bad_csv_and_bad_suffix(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("question,answer\nq,a\n")
    with pytest.raises(DatasetError, match=r"x\.csv:1: .*input"):
        load_file(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("input,target\nq,a,extra\n")
    with pytest.raises(DatasetError, match=r"y\.csv:2: "):
        load_file(tmp_path / "y.csv")
    with pytest.raises(DatasetError, match=".jsonl or .csv"):
        load_file(tmp_path / "x.txt")


def record(at: float, *, episode: str, answer: str, function: str = "support",
           tags: dict[str, str] | None = None) -> TrajectoryRecord:
    return TrajectoryRecord(
        id=new_id(at), episode_id=episode, created_at=at, function=function, variant="v1",
        request={"model": function, "messages": [{"role": "user", "content": f"q{at}"}]},
        response={"choices": [{"message": {"role": "assistant", "content": answer}}]},
        tags=tags or {},
    )


def test_from_store(store: Store) -> None:
    base = 1_795_000_000.0
    recs = [
        record(base, episode="e1", answer="bad", tags={"lang": "en"}),
        record(base + 1, episode="e1", answer="good"),
        record(base + 2, episode="e2", answer="fine", tags={"lang": "fr"}),
        record(base + 3, episode="e3", answer="other", function="other"),
    ]
    store.insert(recs)
    store.add_feedback(trajectory_id=recs[0].id, metric="demonstration",
                       value={"role": "assistant", "content": "better"})
    store.add_feedback(trajectory_id=recs[1].id, metric="resolved", value=False)
    store.add_feedback(trajectory_id=recs[1].id, metric="resolved", value=True)  # latest wins
    store.add_feedback(trajectory_id=recs[2].id, metric="resolved", value=False)

    every = from_store(store, "support", metric=None)
    assert [s.id for s in every] == [r.id for r in recs[:3]]
    first = every[0]
    assert first.reference == "better" and first.episode_id == "e1"
    assert first.messages == [{"role": "user", "content": f"q{base}"}]
    assert first.metadata == {"lang": "en", "function": "support", "variant": "v1"}
    assert every[1].reference is None  # no metric asked: its own answer is no reference

    resolved = from_store(store, "support", metric="resolved")
    assert [s.reference for s in resolved] == ["good", None]
    assert resolved[0].feedback == {"resolved": True}
    assert [s.id for s in from_store(store, "support", metric="resolved", value=False)] == [
        recs[2].id]
    assert [s.id for s in from_store(store, "support", tags={"lang": "fr"})] == [recs[2].id]
    assert [s.id for s in from_store(store, "support", since=base + 1, until=base + 2)] == [
        recs[1].id]
    assert [s.id for s in from_store(store, "support", limit=1)] == [recs[2].id]
    assert len(from_store(store, "support", metric="resolved", require_reference=True)) == 1


def test_split_keeps_episodes_whole_and_is_deterministic() -> None:
    samples = [Sample(id=f"s{i}", messages=[], episode_id=f"e{i // 3}") for i in range(600)]
    samples += [Sample(id=f"lone{i}", messages=[]) for i in range(100)]
    parts = split(samples, {"train": 0.8, "test": 0.2}, seed=1)
    assert sum(map(len, parts.values())) == 700
    episodes = {k: {s.episode_id for s in v if s.episode_id} for k, v in parts.items()}
    assert not episodes["train"] & episodes["test"]
    assert 0.7 < len(parts["train"]) / 700 < 0.9
    assert split(samples, {"train": 0.8, "test": 0.2}, seed=1) == parts
    assert split(samples, {"train": 0.8, "test": 0.2}, seed=2) != parts
    with pytest.raises(DatasetError):
        split(samples, {"train": 0.0})
