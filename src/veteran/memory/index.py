"""One collection's search index at one store generation: BM25 + dense vectors + filters.

The store is the source of truth; a built index is a cache, saved under the workspace's
`memory/COLLECTION/` keyed by the store's generation and the embedder, and rebuilt from
`MemoryStore.chunks` when either differs (so SQLite and PostgreSQL stores behave alike).

- Keywords: `bm25s` (Lucene BM25 over a sparse matrix), English stopwords and Snowball stemming
  (PyStemmer). A query scores every chunk in one sparse pass, which also makes filtered
  keyword search exact.
- Vectors: the normalised float32 matrix (memory-mapped from the cache) searched exactly by
  one matmul while the collection is small; from `ANN_MIN` chunks on, an HNSW graph (`usearch`,
  int8 codes) finds candidates and the float32 rows rescore them. Measured on the 2-core
  machine at 100k x 384: exact 2.6 ms per query, HNSW 0.5-1.7 ms (docs/design.md).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import shutil
import threading
import uuid
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from veteran.memory.types import Chunk, Vectors

FORMAT_VERSION = 1
ANN_MIN = 200_000  # chunks from which dense search uses the HNSW graph instead of a matmul
ANN_CONNECTIVITY = 32
ANN_EXPANSION_ADD = 128
ANN_EXPANSION_SEARCH = 256
Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

_local = threading.local()  # PyStemmer objects are not thread-safe: one per thread


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(texts: list[str]) -> list[list[str]]:
    """Keyword tokens: lower-cased words of 2+ characters, English stopwords out, stemmed."""
    import bm25s

    tokens: list[list[str]] = bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return tokens


@functools.lru_cache(maxsize=256)
def query_terms(query: str) -> tuple[str, ...]:
    """`tokenize` of one query, remembered: a search tokenizes it for BM25 and again for
    `keyword_share`, and a gateway sees the same questions again."""
    return tuple(tokenize([query])[0])


def _value_key(value: Any) -> Hashable | None:
    """Metadata values compared by equality across JSON types: 3 == 3.0, True != 1."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return None  # objects are not filterable


def _top(scores: Scores, n: int) -> Rows:
    """Indices of the n highest scores, best first (ties by row, for stable results)."""
    if n <= 0 or scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n] if n < scores.size else np.arange(scores.size)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


@dataclass
class BuiltIndex:
    collection: str
    generation: int
    embedder: str
    ids: list[str]
    metadata: list[dict[str, Any]]
    vectors: Vectors  # (n, dim), rows normalised; memory-mapped when loaded from the cache
    bm25: Any  # bm25s.BM25, or None for an empty collection
    ann: Any = None  # usearch.index.Index, or None: exact search
    _postings: dict[str, dict[Hashable, Rows]] = field(default_factory=dict)
    _columns: tuple[Rows, Rows] | None = None  # BM25's term -> rows, rows sorted (keyword_share)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        return len(self.ids)

    # -- building and the cache -------------------------------------------------------------

    @classmethod
    def build(cls, collection: str, generation: int, embedder: str, dim: int,
              rows: Iterable[tuple[Chunk, npt.NDArray[Any]]], *, ann_min: int = ANN_MIN,
              ) -> BuiltIndex:
        ids: list[str] = []
        metadata: list[dict[str, Any]] = []
        texts: list[str] = []
        vectors: list[npt.NDArray[Any]] = []
        for chunk, vector in rows:
            ids.append(chunk.id)
            metadata.append(chunk.metadata)
            texts.append(chunk.text)
            vectors.append(vector)
        matrix = (np.asarray(vectors, dtype=np.float32).reshape(len(ids), dim) if ids
                  else np.zeros((0, dim), dtype=np.float32))
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.maximum(norms, 1e-12)
        bm25 = None
        if ids:
            import bm25s

            bm25 = bm25s.BM25()
            bm25.index(tokenize(texts), show_progress=False)
        ann = None
        if len(ids) >= ann_min:
            from usearch.index import Index

            ann = Index(ndim=dim, metric="cos", dtype="i8", connectivity=ANN_CONNECTIVITY,
                        expansion_add=ANN_EXPANSION_ADD, expansion_search=ANN_EXPANSION_SEARCH)
            ann.add(np.arange(len(ids), dtype=np.uint64), matrix, threads=os.cpu_count() or 1)
        return cls(collection, generation, embedder, ids, metadata, matrix, bm25, ann)

    @staticmethod
    def folder_name(generation: int, embedder: str) -> str:
        return f"g{generation}-{hashlib.sha256(embedder.encode()).hexdigest()[:12]}"

    def save(self, parent: Path) -> None:
        """Write under `parent/g{generation}-{embedder hash}/`, atomically (a temporary folder
        renamed into place), then remove older generations. Another process may save the same
        generation at the same time: the first rename wins, the other copy is dropped."""
        parent.mkdir(parents=True, exist_ok=True)
        name = self.folder_name(self.generation, self.embedder)
        tmp = parent / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            np.save(tmp / "vectors.npy", np.asarray(self.vectors))
            (tmp / "chunks.json").write_bytes(
                orjson.dumps({"ids": self.ids, "metadata": self.metadata}))
            if self.bm25 is not None:
                self.bm25.save(str(tmp / "bm25"), show_progress=False)
            if self.ann is not None:
                self.ann.save(str(tmp / "ann.usearch"))
            manifest = {"version": FORMAT_VERSION, "collection": self.collection,
                        "generation": self.generation, "embedder": self.embedder,
                        "count": len(self.ids), "dim": int(self.vectors.shape[1]),
                        "ann": self.ann is not None}
            (tmp / "manifest.json").write_bytes(orjson.dumps(manifest))
            try:
                os.rename(tmp, parent / name)
            except OSError:  # already saved by another process
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in parent.iterdir():
            if old.name != name and old.name.startswith("g") and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, parent: Path, collection: str, generation: int,
             embedder: str) -> BuiltIndex | None:
        """The saved index for this generation and embedder, or None (absent or unreadable)."""
        folder = parent / cls.folder_name(generation, embedder)
        try:
            manifest = orjson.loads((folder / "manifest.json").read_bytes())
            if (manifest.get("version") != FORMAT_VERSION or manifest["generation"] != generation
                    or manifest["embedder"] != embedder):
                return None
            chunks = orjson.loads((folder / "chunks.json").read_bytes())
            vectors = np.load(folder / "vectors.npy", mmap_mode="r")
            bm25 = ann = None
            if manifest["count"]:
                import bm25s

                bm25 = bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
            if manifest["ann"]:
                from usearch.index import Index

                ann = Index.restore(str(folder / "ann.usearch"))
                if ann is None:
                    return None
                ann.expansion_search = ANN_EXPANSION_SEARCH  # type: ignore[misc]  # has a setter
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if len(chunks["ids"]) != manifest["count"] or vectors.shape[0] != manifest["count"]:
            return None
        return cls(collection, generation, embedder, chunks["ids"], chunks["metadata"],
                   vectors, bm25, ann)

    # -- filters ---------------------------------------------------------------------------

    def _postings_for(self, key: str) -> dict[Hashable, Rows]:
        postings = self._postings.get(key)
        if postings is None:
            with self._lock:
                postings = self._postings.get(key)
                if postings is None:
                    found: dict[Hashable, list[int]] = {}
                    for row, meta in enumerate(self.metadata):
                        if key not in meta:
                            continue
                        value = meta[key]
                        values = value if isinstance(value, list) else [value]
                        for item in values:
                            vkey = _value_key(item)
                            if vkey is not None:
                                found.setdefault(vkey, []).append(row)
                    postings = {k: np.unique(np.asarray(v, dtype=np.int64))
                                for k, v in found.items()}
                    self._postings[key] = postings
        return postings

    def mask(self, filters: Mapping[str, Any] | None) -> Mask | None:
        """Rows whose metadata equals every filter (a list-valued field: contains the value)."""
        if not filters:
            return None
        mask = np.ones(len(self.ids), dtype=np.bool_)
        for key, value in filters.items():
            vkey = _value_key(value)
            rows = self._postings_for(key).get(vkey) if vkey is not None else None
            keep = np.zeros(len(self.ids), dtype=np.bool_)
            if rows is not None:
                keep[rows] = True
            mask &= keep
        return mask

    # -- retrieval -------------------------------------------------------------------------

    def keyword(self, query: str, n: int, mask: Mask | None) -> tuple[Rows, Scores]:
        """Up to n rows that contain a query term, best BM25 first."""
        if self.bm25 is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids = self.bm25.get_tokens_ids(list(query_terms(query)))
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float32)
        if mask is not None:
            scores = np.where(mask, scores, np.float32(0))
        top = _top(scores, n)
        top = top[scores[top] > 0]
        return top, scores[top]

    def keyword_share(self, query: str, rows: Rows) -> Scores:
        """For each row, the share of the query's keyword weight that its chunk contains: the
        summed IDF (BM25's, Lucene's formula) of the query's distinct terms found in the chunk
        over that of all of them, in [0, 1]. A term no chunk holds weighs the most (document
        frequency 0): a query about something the collection never mentions scores low.

        Unlike a BM25 score it has a fixed scale, so one threshold holds for every collection
        and query: 1.0 when the chunk holds every term, most of it when it holds the one rare
        code of "What does E-4172 mean?" (search.py, `min_score`)."""
        out = np.zeros(len(rows), dtype=np.float32)
        terms = set(query_terms(query)) - {""}
        if self.bm25 is None or not terms or not len(rows):
            return out
        indptr, indices = self._sorted_columns()
        vocabulary: dict[str, int] = self.bm25.vocab_dict
        total = len(self.ids)
        weights = 0.0
        for term in terms:
            column = vocabulary.get(term)
            found = (indices[indptr[column]:indptr[column + 1]] if column is not None
                     else indices[:0])
            weight = math.log(1 + (total - len(found) + 0.5) / (len(found) + 0.5))
            weights += weight
            if len(found):
                at = np.minimum(np.searchsorted(found, rows), len(found) - 1)
                out += np.float32(weight) * (found[at] == rows)
        return out / np.float32(weights)

    def _sorted_columns(self) -> tuple[Rows, Rows]:
        """BM25's sparse matrix (term columns of row indices), each column's rows in order for
        `searchsorted`: bm25s builds them so; should a version not, they are sorted once."""
        columns = self._columns
        if columns is None:
            with self._lock:
                columns = self._columns
                if columns is None:
                    indptr = np.asarray(self.bm25.scores["indptr"], dtype=np.int64)
                    indices = np.asarray(self.bm25.scores["indices"], dtype=np.int64)
                    rising = np.diff(indices) > 0
                    rising[indptr[1:-1][(indptr[1:-1] > 0) & (indptr[1:-1] < len(indices))]
                           - 1] = True  # a column's first row follows another column's last
                    if not rising.all():
                        owner = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
                        indices = indices[np.lexsort((indices, owner))]
                    columns = self._columns = (indptr, indices)
        return columns

    def dense(self, vector: Vectors, n: int, mask: Mask | None) -> tuple[Rows, Scores]:
        """Up to n rows nearest to `vector` (cosine), best first."""
        total = len(self.ids)
        if total == 0 or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        matches = int(mask.sum()) if mask is not None else total
        if matches == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        n = min(n, matches)
        if self.ann is not None:
            # Oversample by the filter's selectivity; when too few candidates pass, go exact.
            want = 2 * n if mask is None else math.ceil(2 * n * total / matches)
            if want <= 2 * ANN_EXPANSION_SEARCH:
                keys = self.ann.search(query, want).keys.astype(np.int64)
                if mask is not None:
                    keys = keys[mask[keys]]
                if len(keys) >= n:
                    scores = np.asarray(self.vectors[keys] @ query, dtype=np.float32)
                    order = _top(scores, n)
                    return keys[order], scores[order]
        scores = np.asarray(np.asarray(self.vectors) @ query, dtype=np.float32)
        if mask is not None:
            scores = np.where(mask, scores, np.float32(-np.inf))
        top = _top(scores, n)
        return top, scores[top]


def collection_folder(cache_dir: Path, collection: str) -> Path:
    """`cache_dir/COLLECTION`, or a hash when the name is not a safe folder name."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", collection) and ".." not in collection:
        return cache_dir / collection
    return cache_dir / ("_" + hashlib.sha256(collection.encode()).hexdigest()[:24])
