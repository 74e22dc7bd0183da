"""Packing retrieved chunks into a prompt under a token budget."""

from __future__ import annotations

from veteran.memory.context import HEADER, last_user_text, pack
from veteran.memory.types import Chunk, Hit


def hit(id: str, text: str, score: float, **metadata: object) -> Hit:
    chunk = Chunk(id=id, collection="kb", document_id=id, source=f"{id}.md", ordinal=0,
                  text=text, tokens=len(text.split()), metadata=dict(metadata))
    return Hit(chunk, score)


def words(text: str) -> int:
    return len(text.split())


def test_best_first_under_the_budget_with_sources() -> None:
    hits = [hit("b", "second " * 10, 0.5), hit("a", "first " * 10, 0.9, heading=["H", "Sub"]),
            hit("c", "too long " * 40, 0.7), hit("d", "small one", 0.2), hit("z", "zero", 0.0)]
    budget = words(HEADER) + 40
    context = pack(hits, budget, words, ["kb"])
    assert context.message is not None and context.message["role"] == "system"
    content = context.message["content"]
    assert content.startswith(HEADER)
    assert content.index("[1] (a.md, H › Sub)") < content.index("[2] (b.md)")
    assert "too long" not in content  # did not fit; smaller, lower-ranked chunks still did
    assert "[3] (d.md)" in content and "zero" not in content  # a 0 score is no evidence
    record = context.record
    assert [c["id"] for c in record["chunks"]] == ["a", "b", "d"]
    assert record["tokens"] == words(content) <= budget == record["budget"]


def test_nothing_fits_nothing_is_inserted() -> None:
    context = pack([hit("a", "word " * 50, 0.9)], words(HEADER) + 5, words, ["kb"])
    assert context.message is None
    assert context.record == {"collections": ["kb"], "budget": words(HEADER) + 5,
                              "tokens": 0, "chunks": []}


def test_the_query_is_the_last_user_message() -> None:
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
                {"role": "user", "content": [{"type": "text", "text": "second"},
                                             {"type": "image_url", "image_url": {}}]}]
    assert last_user_text(messages) == "second"
    assert last_user_text([{"role": "system", "content": "s"}]) == ""
