"""`MemoryIndex`: hybrid search over the collections of a memory store.

Each retriever (BM25 keywords, dense vectors) returns its top `max(50, 4k)` chunks among those
that pass the filters; hybrid search fuses the two lists by relative score fusion: each list's
scores are scaled to [0, 1] (min-max over the list) and the two are averaged (`FUSION_WEIGHT`
on BM25), a chunk absent from a list scoring 0 there. Unlike reciprocal rank fusion it keeps
how far ahead a retriever's best match is: an exact part number that BM25 scores far above
everything else stays first. Measured on the labelled set in bench/data/memory (nDCG@10, 310
queries): relative score fusion 0.692, reciprocal rank fusion 0.507 (k = 60) and 0.642 (k = 5),
BM25 alone 0.438, dense alone 0.476. Filters are applied inside each retriever
(a row mask), not after it, so a filtered search still returns k hits when k chunks match.

**Relevance and `min_score`.** A fused score says how a chunk ranks against the others found
for this query, not whether it is relevant: min-max scaling gives the best of each list 1.0
even when nothing matches, and the last 0 however good it is. So each hit also carries two
measures on a fixed 0-1 scale: `similarity`, the cosine of the query's and the chunk's
embeddings, and `keywords`, the share of the query's keyword weight (IDF) that the chunk holds
(`BuiltIndex.keyword_share`). Its `relevance` is the larger, and a search with `min_score`
keeps only hits at or above it, then the k best of those. Either measure alone misses
relevant chunks: a rare code ("What does E-4172 mean?") means little to a small embedding
model (cosine 0.10-0.33 to its passage) but is nearly all of the query's keyword weight; a
paraphrase shares the meaning and no word. Measured with MiniLM on bench/data/memory (the 310
queries' top 8 hybrid hits) and 30 off-topic questions ("What's a good recipe for banana
bread?", "hi"): at 0.25, the default `[memory] min_score`, 99.1% of the relevant hits stay
(cosine alone at 0.25: 89.0%) and the off-topic questions keep 8 of their 240 hits (cosine
alone: 4); at 0.30, 95.0% and 4; at 0.35, 88.0% and 0. In "bm25" mode, which embeds nothing,
only `keywords` counts; in the other modes both do.

Indexes are built from `MemoryStore.chunks` on first use and cached in memory and in
`cache_dir/COLLECTION/` keyed by the store's generation; the generation is checked at most once
per `refresh_interval` seconds per collection (`refresh` checks at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from veteran.errors import BadRequest, NotFound
from veteran.memory.index import ANN_MIN, BuiltIndex, collection_folder
from veteran.memory.types import Chunk, Embedder, Hit, Vectors

Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[Mode, ...] = ("hybrid", "bm25", "dense")
FUSION_WEIGHT = 0.5  # BM25's share of the fused score; the untuned, even default


class CollectionLike(Protocol):
    @property
    def embedder(self) -> str: ...

    @property
    def dim(self) -> int: ...


class ChunkSource(Protocol):
    """What search needs from the memory store (`veteran.memory.store.MemoryStore`)."""

    def collection(self, name: str) -> CollectionLike | None: ...

    def generation(self, collection: str) -> int: ...

    def chunks(self, collection: str) -> Iterator[tuple[Chunk, np.ndarray[Any, Any]]]: ...

    def chunks_by_id(self, ids: Sequence[str]) -> Mapping[str, Chunk]: ...


@dataclass(frozen=True, slots=True)
class SearchTimings:
    """Milliseconds spent in each step of one search (the bench times them apart)."""

    embed_ms: float = 0.0  # the query embedding: 0 when a query_vector was given
    refresh_ms: float = 0.0  # generation check, and a load or rebuild when it moved
    bm25_ms: float = 0.0
    dense_ms: float = 0.0
    fetch_ms: float = 0.0  # reading the hits' chunks from the store
    total_ms: float = 0.0

    @property
    def search_ms(self) -> float:
        """Everything but the query embedding."""
        return self.total_ms - self.embed_ms


class MemoryIndex:
    """Thread-safe: searches read an immutable index; a rebuild swaps it in when done."""

    def __init__(self, store: ChunkSource, embedder: Embedder, cache_dir: Path | None = None,
                 *, refresh_interval: float = 1.0, ann_min: int = ANN_MIN) -> None:
        self.store = store
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.refresh_interval = refresh_interval
        self.ann_min = ann_min
        self._indexes: dict[str, BuiltIndex] = {}
        self._checked: dict[str, float] = {}  # collection -> monotonic time of the last check
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def search(self, collection: str, query: str, *, k: int = 5,
               filters: Mapping[str, Any] | None = None, mode: Mode = "hybrid",
               query_vector: Vectors | None = None, min_score: float = 0.0) -> list[Hit]:
        """The k best chunks for `query` among those whose relevance is at least `min_score`
        (the module docstring); NotFound for an unknown collection."""
        return self.search_timed(collection, query, k=k, filters=filters, mode=mode,
                                 query_vector=query_vector, min_score=min_score)[0]

    def search_timed(self, collection: str, query: str, *, k: int = 5,
                     filters: Mapping[str, Any] | None = None, mode: Mode = "hybrid",
                     query_vector: Vectors | None = None, min_score: float = 0.0,
                     ) -> tuple[list[Hit], SearchTimings]:
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}", param="mode")
        if k < 1:
            raise BadRequest("k must be at least 1", param="k")
        if not 0.0 <= min_score <= 1.0:
            raise BadRequest("min_score must be between 0 and 1", param="min_score")
        started = time.perf_counter()
        index = self._current(collection)
        refreshed = time.perf_counter()
        embed_ms = bm25_ms = dense_ms = 0.0
        depth = max(50, 4 * k)
        # A single retriever's list is cut to k, unless hits below min_score leave room for more.
        single = k if min_score <= 0 else depth
        mask = index.mask(filters)
        keyword_rows = dense_rows = np.zeros(0, dtype=np.int64)
        keyword_scores = dense_scores = np.zeros(0, dtype=np.float32)
        if mode != "dense":
            t = time.perf_counter()
            keyword_rows, keyword_scores = index.keyword(
                query, depth if mode == "hybrid" else single, mask)
            bm25_ms = (time.perf_counter() - t) * 1000
        if mode != "bm25" and len(index):
            if index.embedder != self.embedder.name:
                raise BadRequest(f"collection {collection!r} was embedded with "
                                 f"{index.embedder}; the configured embedder is "
                                 f"{self.embedder.name}: re-ingest it, or search with mode "
                                 "\"bm25\"", param="mode")
            if query_vector is None:
                t = time.perf_counter()
                query_vector = self.embedder.embed([query])[0]
                embed_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            dense_rows, dense_scores = index.dense(
                query_vector, depth if mode == "hybrid" else single, mask)
            dense_ms = (time.perf_counter() - t) * 1000
        ranked = _fuse(mode, keyword_rows, keyword_scores, dense_rows, dense_scores)
        rows = np.asarray([row for row, *_ in ranked], dtype=np.int64)
        keywords = index.keyword_share(query, rows)
        similarity = None
        if query_vector is not None and len(rows) and index.embedder == self.embedder.name:
            similarity = np.asarray(
                index.vectors[rows] @ np.asarray(query_vector, np.float32).reshape(-1),
                dtype=np.float32)
        relevance = keywords if similarity is None else np.maximum(keywords, similarity)
        kept = [n for n in range(len(ranked)) if relevance[n] >= min_score][:k]
        t = time.perf_counter()
        found = self.store.chunks_by_id([index.ids[ranked[n][0]] for n in kept]) if kept else {}
        hits = [Hit(found[index.ids[ranked[n][0]]], *ranked[n][1:],
                    similarity=None if similarity is None else float(similarity[n]),
                    keywords=float(keywords[n]))
                for n in kept if index.ids[ranked[n][0]] in found]
        done = time.perf_counter()
        return hits, SearchTimings(
            embed_ms=embed_ms, refresh_ms=(refreshed - started) * 1000, bm25_ms=bm25_ms,
            dense_ms=dense_ms, fetch_ms=(done - t) * 1000, total_ms=(done - started) * 1000,
        )

    def refresh(self, collection: str) -> bool:
        """Check the store's generation now; load or rebuild the index if it moved. True when
        the index changed."""
        before = self._indexes.get(collection)
        self._current(collection, force=True)
        return self._indexes.get(collection) is not before

    def forget(self, collection: str) -> None:
        """Drop the in-memory index (the cached files stay)."""
        with self._guard:
            self._indexes.pop(collection, None)
            self._checked.pop(collection, None)

    def _current(self, collection: str, *, force: bool = False) -> BuiltIndex:
        index = self._indexes.get(collection)
        now = time.monotonic()
        if (index is not None and not force
                and now - self._checked.get(collection, 0.0) < self.refresh_interval):
            return index
        with self._guard:
            lock = self._locks.setdefault(collection, threading.Lock())
        with lock:  # one load or build per collection at a time; others wait for it
            info = self.store.collection(collection)
            if info is None:
                with self._guard:
                    self._indexes.pop(collection, None)
                raise NotFound(f"no memory collection {collection!r}",
                               code="collection_not_found")
            generation = self.store.generation(collection)
            index = self._indexes.get(collection)
            if index is None or index.generation != generation:
                index = self._load_or_build(collection, generation, info)
                with self._guard:
                    self._indexes[collection] = index
            self._checked[collection] = time.monotonic()
            return index

    def _load_or_build(self, collection: str, generation: int,
                       info: CollectionLike) -> BuiltIndex:
        folder = collection_folder(self.cache_dir, collection) if self.cache_dir else None
        if folder is not None:
            loaded = BuiltIndex.load(folder, collection, generation, info.embedder)
            if loaded is not None:
                return loaded
        index = BuiltIndex.build(collection, generation, info.embedder, info.dim,
                                 self.store.chunks(collection), ann_min=self.ann_min)
        # Chunks read while an ingest ran may be newer than `generation`: never save those.
        if folder is not None and self.store.generation(collection) == generation:
            index.save(folder)
        return index


def _fuse(mode: Mode, keyword_rows: Any, keyword_scores: Any, dense_rows: Any,
          dense_scores: Any) -> list[tuple[int, float, int | None, int | None]]:
    """(row, score, bm25 rank, dense rank) of every row found, best first."""
    bm25_rank = {int(row): rank for rank, row in enumerate(keyword_rows, 1)}
    dense_rank = {int(row): rank for rank, row in enumerate(dense_rows, 1)}
    if mode == "bm25":
        return [(int(r), float(s), bm25_rank[int(r)], None)
                for r, s in zip(keyword_rows, keyword_scores, strict=True)]
    if mode == "dense":
        return [(int(r), float(s), None, dense_rank[int(r)])
                for r, s in zip(dense_rows, dense_scores, strict=True)]
    fused: dict[int, float] = {}
    for rows, scores, weight in ((keyword_rows, keyword_scores, FUSION_WEIGHT),
                                 (dense_rows, dense_scores, 1.0 - FUSION_WEIGHT)):
        for row, scaled in zip(rows, _scaled(scores), strict=True):
            fused[int(row)] = fused.get(int(row), 0.0) + weight * scaled
    best = sorted(fused.items(), key=lambda item: (-item[1], min(
        bm25_rank.get(item[0], 1 << 30), dense_rank.get(item[0], 1 << 30)), item[0]))
    return [(row, score, bm25_rank.get(row), dense_rank.get(row)) for row, score in best]


def _scaled(scores: Any) -> list[float]:
    """Scores scaled to [0, 1] over their list (all 1.0 when they are all equal)."""
    values = np.asarray(scores, dtype=np.float64)
    if not len(values):
        return []
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return [1.0] * len(values)
    return [float(v) for v in (values - low) / (high - low)]
