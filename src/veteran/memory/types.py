"""The words of institutional memory, shared by ingest, search, context and the cache.

A **collection** is a named body of knowledge; it holds **documents** (a file, a JSONL record
set, or a promoted trajectory), each split into **chunks**: the unit that is embedded, indexed,
searched, and put into prompts. A search returns **hits**: chunks with their fused score and
where each retriever ranked them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]  # shape (n, dim), rows L2-normalised


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str  # stable across re-ingests of unchanged content: f"{document_id}:{ordinal}"
    collection: str
    document_id: str
    source: str  # a path relative to what was ingested, or "trajectory:ID" for promoted memory
    ordinal: int  # position within its document, from 0
    text: str
    tokens: int  # counted with the embedder's tokenizer
    # heading path, page, char offsets, record fields, trajectory link...: filterable
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # higher is better; for hybrid, the fused score in [0, 1] (search.py)
    bm25_rank: int | None = None  # 1-based rank in the keyword results, None if absent
    dense_rank: int | None = None  # 1-based rank in the vector results, None if absent


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str  # recorded with each collection: vectors of different embedders never mix
    dim: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def count_tokens(self, text: str) -> int: ...
