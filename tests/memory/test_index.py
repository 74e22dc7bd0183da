"""Search over an in-memory chunk source: BM25, dense, fusion, filters, the cache folder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from veteran.errors import BadRequest, NotFound
from veteran.memory.embed import MiniLMEmbedder
from veteran.memory.index import BuiltIndex
from veteran.memory.search import FUSION_WEIGHT, MemoryIndex
from veteran.memory.types import Chunk, Vectors


@dataclass
class Info:
    embedder: str
    dim: int


class Source:
    """What MemoryStore offers search, in memory; counts full reads of a collection."""

    def __init__(self, embedder: str, dim: int) -> None:
        self.info = Info(embedder, dim)
        self.rows: list[tuple[Chunk, Vectors]] = []
        self.gen = 1
        self.reads = 0

    def add(self, text: str, vector: Any, **metadata: Any) -> Chunk:
        n = len(self.rows)
        chunk = Chunk(f"doc{n}:0", "kb", f"doc{n}", f"doc{n}.md", 0, text, len(text.split()),
                      metadata)
        self.rows.append((chunk, np.asarray(vector, dtype=np.float32)))
        self.gen += 1
        return chunk

    def collection(self, name: str) -> Info | None:
        return self.info if name == "kb" else None

    def generation(self, collection: str) -> int:
        return self.gen

    def chunks(self, collection: str) -> Iterator[tuple[Chunk, Vectors]]:
        self.reads += 1
        return iter(list(self.rows))

    def chunks_by_id(self, ids: Sequence[str]) -> dict[str, Chunk]:
        by_id = {c.id: c for c, _ in self.rows}
        return {i: by_id[i] for i in ids if i in by_id}


class Fixed:
    """An embedder that must not be called: searches give their query_vector."""

    name = "fixed"
    dim = 16

    def embed(self, texts: Sequence[str]) -> Vectors:
        raise AssertionError("no embedding expected")

    def count_tokens(self, text: str) -> int:
        return len(text.split())


DOCS = [
    ("Error ERR-4021 means the card issuer declined the payment.", {"team": "billing"}),
    ("Refunds are paid back to the original card within five working days.",
     {"team": "billing", "tags": ["money", "urgent"]}),
    ("To reset a password, open Settings, then Security, then choose Reset.",
     {"team": "accounts"}),
    ("Our office is closed on public holidays.", {"team": "hr", "year": 2024}),
    ("Invoices are sent on the first day of every month.", {"team": "billing", "year": 2025}),
    ("The mobile app supports dark mode on iOS and Android.", {"team": "product"}),
    ("Two-factor authentication can use an authenticator app or SMS.", {"team": "accounts"}),
    ("Shipping to Canada takes seven to ten days.", {"team": "logistics", "tags": ["urgent"]}),
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def kb(minilm: MiniLMEmbedder, tmp_path: Path) -> tuple[Source, MemoryIndex]:
    source = Source(minilm.name, minilm.dim)
    vectors = minilm.embed([text for text, _ in DOCS])
    for (text, meta), vector in zip(DOCS, vectors, strict=True):
        source.add(text, vector, **meta)
    return source, MemoryIndex(source, minilm, tmp_path / "memory", refresh_interval=0)


def test_bm25_finds_an_exact_code(kb: tuple[Source, MemoryIndex]) -> None:
    _, index = kb
    hits = index.search("kb", "ERR-4021", k=3, mode="bm25")
    assert hits[0].chunk.text.startswith("Error ERR-4021")
    assert hits[0].bm25_rank == 1 and hits[0].dense_rank is None
    assert len(hits) == 1  # only chunks holding a query term count as keyword hits


def test_dense_finds_a_paraphrase_that_bm25_misses(kb: tuple[Source, MemoryIndex]) -> None:
    _, index = kb
    query = "how do I get my money returned"
    assert not any("Refunds" in h.chunk.text for h in index.search("kb", query, mode="bm25"))
    hits = index.search("kb", query, k=3, mode="dense")
    assert hits[0].chunk.text.startswith("Refunds")
    assert hits[0].dense_rank == 1 and hits[0].bm25_rank is None
    assert -1.0 <= hits[-1].score <= hits[0].score <= 1.0


def test_hybrid_fuses_both_rankings(kb: tuple[Source, MemoryIndex]) -> None:
    _, index = kb
    hits = index.search("kb", "ERR-4021 payment declined by the bank", k=8)
    assert hits[0].chunk.text.startswith("Error ERR-4021")
    assert hits[0].bm25_rank == 1 and hits[0].dense_rank == 1
    assert hits[0].score == pytest.approx(1.0)  # first in both lists: 0.5 * 1 + 0.5 * 1
    for hit in hits:
        assert 0.0 <= hit.score <= 1.0
        if hit.bm25_rank is None:  # scored by the dense list alone
            assert hit.score <= 1.0 - FUSION_WEIGHT + 1e-9
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert any(h.bm25_rank is None for h in hits)  # dense-only hits are fused in too


def test_filters_equality_and_list_membership(kb: tuple[Source, MemoryIndex]) -> None:
    _, index = kb
    for mode in ("hybrid", "bm25", "dense"):
        hits = index.search("kb", "card payment refund invoice", k=8, mode=mode,
                            filters={"team": "billing"})
        assert hits and all(h.chunk.metadata["team"] == "billing" for h in hits)
    urgent = index.search("kb", "anything at all", k=8, filters={"tags": "urgent"})
    assert {h.chunk.id for h in urgent} == {"doc1:0", "doc7:0"}
    assert [h.chunk.id for h in index.search("kb", "office", filters={"year": 2024.0})] == [
        "doc3:0"]
    assert index.search("kb", "office", filters={"year": True}) == []
    assert index.search("kb", "invoices", filters={"team": "billing", "year": 2025})[0].chunk.id \
        == "doc4:0"
    assert index.search("kb", "office", filters={"missing": "x"}) == []


def test_filtered_search_returns_k_when_k_chunks_match(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    source = Source("fixed", 16)
    for i in range(600):
        source.add(f"common words {i}", rng.standard_normal(16), rare=(i % 97 == 0))
    index = MemoryIndex(source, Fixed(), tmp_path, refresh_interval=0, ann_min=100)
    query = rng.standard_normal(16).astype(np.float32)
    for mode in ("hybrid", "dense", "bm25"):
        hits = index.search("kb", "common words", k=5, mode=mode, filters={"rare": True},
                            query_vector=query)
        assert len(hits) == 5 and all(h.chunk.metadata["rare"] for h in hits)


def test_the_index_is_cached_by_generation(kb: tuple[Source, MemoryIndex],
                                           minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    source, index = kb
    first = index.search("kb", "reset password")
    assert source.reads == 1
    folders = list((tmp_path / "memory" / "kb").iterdir())
    assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()
    # A new process (a new MemoryIndex) loads the folder instead of reading every chunk.
    again = MemoryIndex(source, minilm, tmp_path / "memory", refresh_interval=0)
    assert again.search("kb", "reset password") == first
    assert source.reads == 1
    # A change in the store moves the generation: rebuilt, saved, the old folder removed.
    source.add("Passwords must be reset every ninety days.", minilm.embed(["x"])[0])
    assert again.refresh("kb") is True
    assert source.reads == 2
    assert again.refresh("kb") is False
    assert any("ninety" in h.chunk.text for h in again.search("kb", "password reset", k=8))
    folders = list((tmp_path / "memory" / "kb").iterdir())
    assert [f.name for f in folders] == [BuiltIndex.folder_name(source.gen, minilm.name)]


def test_refresh_interval_bounds_generation_checks(minilm: MiniLMEmbedder) -> None:
    source = Source(minilm.name, minilm.dim)
    source.add("alpha beta", minilm.embed(["alpha beta"])[0])
    index = MemoryIndex(source, minilm, None, refresh_interval=3600)
    assert len(index.search("kb", "alpha", mode="bm25")) == 1
    source.add("alpha gamma", minilm.embed(["alpha gamma"])[0])
    assert len(index.search("kb", "alpha", mode="bm25")) == 1  # not checked again yet
    index.refresh("kb")
    assert len(index.search("kb", "alpha", mode="bm25")) == 2


def test_min_score_leaves_out_what_an_unrelated_query_finds(kb: tuple[Source, MemoryIndex]
                                                            ) -> None:
    # issue 13: the best of an off-topic query's list still gets a high fused score (each list
    # is min-max scaled), so without a floor on an absolute measure it was put into prompts.
    _, index = kb
    for query in ("What's a good recipe for banana bread?", "hi",
                  "Who won the football world cup?"):
        found = index.search("kb", query, k=3)
        assert len(found) == 3 and found[0].score >= 0.5  # ranked, whatever it says
        assert all(h.relevance is not None and h.relevance < 0.25 for h in found)
        for mode in ("hybrid", "dense", "bm25"):
            assert index.search("kb", query, k=3, mode=mode, min_score=0.25) == []
    # A related query keeps its chunk: by meaning (a paraphrase sharing no keyword)...
    hits = index.search("kb", "how do I get my money returned", k=3, min_score=0.25)
    assert hits[0].chunk.text.startswith("Refunds") and hits[0].keywords == 0
    assert hits[0].similarity is not None and hits[0].similarity >= 0.25
    # ...or by keywords alone, where nothing is embedded (bm25 mode).
    hits = index.search("kb", "ERR-4021", k=3, mode="bm25", min_score=0.25)
    assert [h.chunk.id for h in hits] == ["doc0:0"]
    assert hits[0].similarity is None and hits[0].keywords == pytest.approx(1.0)
    with pytest.raises(BadRequest, match="min_score"):
        index.search("kb", "x", min_score=1.5)


def test_min_score_takes_the_k_best_of_the_hits_above_it(kb: tuple[Source, MemoryIndex]
                                                         ) -> None:
    _, index = kb
    everything = index.search("kb", "card payment refund invoice", k=8, mode="dense")
    floor = sorted(h.relevance or 0 for h in everything)[-3]  # three reach it
    kept = index.search("kb", "card payment refund invoice", k=2, mode="dense",
                        min_score=floor)
    above = [h for h in everything if (h.relevance or 0) >= floor]
    assert len(above) == 3 and [h.chunk.id for h in kept] == [h.chunk.id for h in above[:2]]


def _built(texts: list[str]) -> BuiltIndex:
    rows = [(Chunk(f"c{i}:0", "kb", f"c{i}", f"c{i}.md", 0, text, 1, {}),
             np.ones(4, dtype=np.float32)) for i, text in enumerate(texts)]
    return BuiltIndex.build("kb", 1, "fixed", 4, rows)


def test_keyword_share_weighs_rare_terms_and_terms_no_chunk_holds() -> None:
    texts = ["parcel common", "common words", "common words again", "zebra"]
    index = _built(texts)
    rows = np.arange(4, dtype=np.int64)
    share = index.keyword_share("parcel common", rows)
    assert share[0] == pytest.approx(1.0) and share[3] == 0.0
    assert share[1] == share[2] < 0.5 < 1.0 - share[1]  # the rare term carries the weight
    # A term the collection never uses is the rarest of all: "parcel" alone is not enough.
    unknown = index.keyword_share("parcel kangaroo", rows)
    assert 0.0 < unknown[0] < 0.5 and unknown[1] == 0.0
    assert index.keyword_share("the and of", rows).tolist() == [0.0] * 4  # stopwords only
    # bm25s keeps each term's rows in order; were they not, they are sorted once.
    shuffled = _built(texts)
    indptr = shuffled.bm25.scores["indptr"]
    for column in range(len(indptr) - 1):
        start, end = indptr[column], indptr[column + 1]
        shuffled.bm25.scores["indices"][start:end] = shuffled.bm25.scores["indices"][
            start:end][::-1].copy()
    assert shuffled.keyword_share("parcel common", rows).tolist() == share.tolist()


def test_errors_and_edges(kb: tuple[Source, MemoryIndex], minilm: MiniLMEmbedder) -> None:
    source, index = kb
    with pytest.raises(NotFound):
        index.search("nope", "x")
    with pytest.raises(BadRequest):
        index.search("kb", "x", mode="fuzzy")  # type: ignore[arg-type]
    assert index.search("kb", "the and of", mode="bm25") == []  # only stopwords
    other = MemoryIndex(source, Fixed(), None)  # configured embedder != the collection's
    with pytest.raises(BadRequest, match=minilm.name):
        other.search("kb", "password")
    assert other.search("kb", "password", mode="bm25")  # keywords need no embedder
    empty = Source(minilm.name, minilm.dim)
    assert MemoryIndex(empty, minilm, None).search("kb", "anything") == []


def test_search_timed_reports_the_embedding_apart(kb: tuple[Source, MemoryIndex]) -> None:
    _, index = kb
    hits, timings = index.search_timed("kb", "reset password", k=2)
    assert len(hits) == 2 and timings.embed_ms > 0
    assert timings.search_ms == pytest.approx(timings.total_ms - timings.embed_ms)
    _, timings = index.search_timed("kb", "reset password", k=2, query_vector=np.zeros(
        384, dtype=np.float32))
    assert timings.embed_ms == 0


def test_ann_recall_against_exact_search(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    dim, n = 64, 4000
    centers = rng.standard_normal((40, dim))
    vectors = centers[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, dim))
    source = Source("fixed", dim)
    for i, vector in enumerate(vectors):
        source.add(f"chunk {i}", vector)
    fixed = Fixed()
    fixed.dim = dim
    ann = MemoryIndex(source, fixed, tmp_path, ann_min=1000)
    exact = MemoryIndex(source, fixed, None, ann_min=10**9)
    queries = vectors[rng.integers(0, n, 100)] + 0.3 * rng.standard_normal((100, dim))
    recall = []
    for query in queries.astype(np.float32):
        got = {h.chunk.id for h in ann.search("kb", "", k=10, mode="dense", query_vector=query)}
        want = {h.chunk.id for h in exact.search("kb", "", k=10, mode="dense",
                                                 query_vector=query)}
        recall.append(len(got & want) / 10)
    assert ann.refresh("kb") is False and (tmp_path / "kb").is_dir()
    assert float(np.mean(recall)) >= 0.95
    # The saved graph loads in a fresh index and answers the same.
    reloaded = MemoryIndex(source, fixed, tmp_path, ann_min=1000)
    query = queries[0].astype(np.float32)
    assert reloaded.search("kb", "", k=10, mode="dense", query_vector=query) == ann.search(
        "kb", "", k=10, mode="dense", query_vector=query)
    assert source.reads == 2  # ann and exact built once each; the reload read no chunks
