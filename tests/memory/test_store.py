"""MemoryStore: collections, documents and chunks with their vectors, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from veteran.errors import IngestError, NotFound
from veteran.memory.store import MemoryStore, document_id
from veteran.memory.types import Chunk
from veteran.store import Store


@pytest.fixture
def memory(store: Store) -> MemoryStore:
    return MemoryStore(store.engine)


def make_chunks(collection: str, source: str, content_hash: str, texts: list[str]) -> list[Chunk]:
    doc = document_id(collection, source, content_hash)
    return [
        Chunk(id=f"{doc}:{n}", collection=collection, document_id=doc, source=source, ordinal=n,
              text=text, tokens=len(text.split()), metadata={"n": n, "heading": ["H"]})
        for n, text in enumerate(texts)
    ]


def vectors(n: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def put(memory: MemoryStore, source: str, texts: list[str], content_hash: str = "h1",
        collection: str = "kb") -> list[Chunk]:
    chunks = make_chunks(collection, source, content_hash, texts)
    memory.replace_document(collection, source, content_hash=content_hash, size=10,
                            metadata={"format": "text"}, chunks=chunks,
                            embeddings=vectors(len(texts)))
    return chunks


def test_collections_documents_chunks_round_trip(memory: MemoryStore) -> None:
    info = memory.ensure_collection("kb", embedder="e", dim=4, chunk_tokens=200, overlap_tokens=40)
    assert (info.name, info.embedder, info.dim, info.documents, info.chunks) == ("kb", "e", 4, 0, 0)
    assert memory.collection("missing") is None
    put(memory, "a.md", ["alpha one", "alpha two"])
    put(memory, "b.md", ["beta"])
    listed = memory.collections()
    assert [(c.name, c.documents, c.chunks) for c in listed] == [("kb", 2, 3)]
    documents = memory.documents("kb")
    assert sorted(documents) == ["a.md", "b.md"]
    assert documents["a.md"].chunks == 2
    assert documents["a.md"].metadata == {"format": "text"}
    assert documents["a.md"].id == document_id("kb", "a.md", "h1")

    streamed = list(memory.chunks("kb"))
    assert [c.id for c, _ in streamed] == sorted(c.id for c, _ in streamed)
    by_text = {c.text: (c, v) for c, v in streamed}
    chunk, vector = by_text["alpha two"]
    assert (chunk.source, chunk.ordinal, chunk.metadata) == ("a.md", 1, {"n": 1, "heading": ["H"]})
    assert vector.dtype == np.float32 and np.allclose(vector, vectors(2)[1])

    found = memory.chunks_by_id([chunk.id, "nope:0", chunk.id])
    assert found == {chunk.id: chunk}


def test_replace_swaps_a_documents_chunks_and_every_write_moves_the_generation(
    memory: MemoryStore,
) -> None:
    memory.ensure_collection("kb", embedder="e", dim=4, chunk_tokens=200, overlap_tokens=40)
    g0 = memory.generation("kb")
    old = put(memory, "a.md", ["old one", "old two", "old three"])
    g1 = memory.generation("kb")
    new = put(memory, "a.md", ["new"], content_hash="h2")
    g2 = memory.generation("kb")
    assert g0 < g1 < g2
    assert [c.text for c, _ in memory.chunks("kb")] == ["new"]
    assert memory.chunks_by_id([c.id for c in old]) == {}
    assert list(memory.chunks_by_id([new[0].id])) == [new[0].id]
    memory.delete_document("kb", "a.md")
    assert memory.generation("kb") > g2
    assert memory.documents("kb") == {} and list(memory.chunks("kb")) == []
    with pytest.raises(NotFound):
        memory.delete_document("kb", "a.md")


def test_a_collection_made_again_never_repeats_a_generation(memory: MemoryStore) -> None:
    memory.ensure_collection("kb", embedder="e", dim=4, chunk_tokens=200, overlap_tokens=40)
    for n in range(5):
        put(memory, f"{n}.md", ["text"])
    before = memory.generation("kb")
    memory.delete_collection("kb")
    assert memory.collection("kb") is None and list(memory.chunks("kb")) == []
    with pytest.raises(NotFound):
        memory.generation("kb")
    with pytest.raises(NotFound):
        memory.delete_collection("kb")
    memory.ensure_collection("kb", embedder="e", dim=4, chunk_tokens=200, overlap_tokens=40)
    put(memory, "0.md", ["other"])
    assert memory.generation("kb") > before


def test_writes_are_checked(memory: MemoryStore) -> None:
    with pytest.raises(NotFound):
        put(memory, "a.md", ["x"], collection="nowhere")
    memory.ensure_collection("kb", embedder="e", dim=4, chunk_tokens=200, overlap_tokens=40)
    chunks = make_chunks("kb", "a.md", "h1", ["x", "y"])
    with pytest.raises(ValueError, match="shape"):
        memory.replace_document("kb", "a.md", content_hash="h1", size=1, metadata={},
                                chunks=chunks, embeddings=vectors(1))
    with pytest.raises(ValueError, match="is not chunk 0 of document"):
        memory.replace_document("kb", "a.md", content_hash="other", size=1, metadata={},
                                chunks=chunks, embeddings=vectors(2))
    with pytest.raises(IngestError, match="holds vectors of embedder 'e' .dim 4."):
        memory.ensure_collection("kb", embedder="e", dim=8, chunk_tokens=200, overlap_tokens=40)
    assert memory.documents("kb") == {}


def test_an_empty_document_is_recorded(memory: MemoryStore) -> None:
    memory.ensure_collection("kb", embedder="e", dim=4, chunk_tokens=200, overlap_tokens=40)
    memory.replace_document("kb", "empty.txt", content_hash="h", size=0, metadata={},
                            chunks=[], embeddings=np.zeros((0, 4), dtype=np.float32))
    assert memory.documents("kb")["empty.txt"].chunks == 0
