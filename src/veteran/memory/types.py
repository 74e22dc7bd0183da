"""The words of institutional memory, shared by ingest, search, context and the cache.

A **collection** is a named body of knowledge; it holds **documents** (a file, a JSONL record
set, or a promoted trajectory), each split into **chunks**: the unit that is embedded, indexed,
searched, and put into prompts. A search returns **hits**: chunks with their fused score and
where each retriever ranked them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from veteran.types import Chunk

Vectors = npt.NDArray[np.float32]  # shape (n, dim), rows L2-normalised

__all__ = ["Chunk", "Embedder", "Hit", "Vectors"]


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # higher is better; for hybrid, the fused score in [0, 1] (search.py)
    bm25_rank: int | None = None  # 1-based rank in the keyword results, None if absent
    dense_rank: int | None = None  # 1-based rank in the vector results, None if absent
    # Absolute measures, 0-1, that `min_score` is compared with (search.py): the cosine of the
    # query's and the chunk's embeddings (None when the query was not embedded: bm25 mode),
    # and the share of the query's keyword weight the chunk holds.
    similarity: float | None = None
    keywords: float | None = None

    @property
    def relevance(self) -> float | None:
        """The larger of `similarity` and `keywords`; None when neither was measured."""
        measured = [v for v in (self.similarity, self.keywords) if v is not None]
        return max(measured) if measured else None


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str  # recorded with each collection: vectors of different embedders never mix
    dim: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def count_tokens(self, text: str) -> int: ...
