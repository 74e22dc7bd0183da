"""`MemoryStore`: collections, documents and embedded chunks, as memory code sees them.

The tables and their SQL live in the store (`veteran.store.memory`, the one home of every byte
written, where the generation rule and the embedding format are described); this class adds
what the store cannot know, being below the memory room: its chunks come back as `Chunk`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from veteran.memory.types import Chunk
from veteran.store.memory import (
    CollectionInfo,
    DocumentInfo,
    MemoryTables,
    StoredChunk,
    document_id,
)

__all__ = ["CollectionInfo", "DocumentInfo", "MemoryStore", "document_id"]


class MemoryStore(MemoryTables):
    def chunks(self, collection: str) -> Iterator[tuple[Chunk, np.ndarray]]:
        """Every chunk of the collection with its embedding row, ordered by id, streamed."""
        for stored, vector in self.stored_chunks(collection):
            yield _chunk(stored), vector

    def chunks_by_id(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """The chunks of these ids that exist, by id (text and metadata, no embeddings)."""
        return {id: _chunk(stored) for id, stored in self.stored_chunks_by_id(ids).items()}


def _chunk(stored: StoredChunk) -> Chunk:
    return Chunk(
        id=stored.id, collection=stored.collection, document_id=stored.document_id,
        source=stored.source, ordinal=stored.ordinal, text=stored.text, tokens=stored.tokens,
        metadata=stored.metadata,
    )
