"""Institutional memory in the store: collections, documents and embedded chunks.

Memory code uses it as `veteran.memory.store.MemoryStore`; chunks are `veteran.types.Chunk`.
The same tables serve SQLite (the embedded default) and PostgreSQL.
Embeddings are stored as float32 little-endian bytes, not as a vector type: search builds its
own index from them (see `veteran.memory.search`), and PostgreSQL needs no extension.

A chunk's text and metadata (headings, record fields) and a document's metadata (its title) are
payload: they pass the store's codec. Names, sources, hashes and counts stay plain. Embeddings
stay plain too, for now: search loads every one, and whether they are sealed (they can leak
their text to a determined attacker) is the encryption issue's decision.

A collection's `generation` changes with every write. It starts at the creation time in
milliseconds and each change moves it to max(generation + 1, now in ms), so a collection
deleted and created again never repeats a generation an index was built for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import Connection, Engine, case, delete, func, insert, select, update

from veteran.errors import IngestError, NotFound
from veteran.store.codec import codec_for
from veteran.store.schema import kb_chunks, kb_collections, kb_documents
from veteran.types import Chunk, now

_DTYPE = np.dtype("<f4")
_BATCH = 500  # rows per IN (...) lookup or insert
Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    name: str
    embedder: str
    dim: int
    chunk_tokens: int
    overlap_tokens: int
    generation: int
    created_at: float
    updated_at: float
    documents: int = 0
    chunks: int = 0


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    id: str
    collection: str
    source: str
    content_hash: str
    size: int
    metadata: dict[str, Any]
    ingested_at: float
    chunks: int = 0


def document_id(collection: str, source: str, content_hash: str) -> str:
    """Stable for the same content at the same place, new when either changes: a chunk id
    (f"{document_id}:{ordinal}") never names two different texts."""
    key = orjson.dumps([collection, source, content_hash])
    return hashlib.sha256(key).hexdigest()[:32]


def _ms() -> int:
    return int(now() * 1000)


class MemoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.codec = codec_for(engine)

    # collections

    def ensure_collection(
        self, name: str, *, embedder: str, dim: int, chunk_tokens: int, overlap_tokens: int
    ) -> CollectionInfo:
        """The collection, created if new. Vectors of different embedders never mix: a collection
        built with another embedder (or dimension) is refused. Chunk settings are updated to
        the latest used (each document records the settings it was chunked with)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(kb_collections).where(kb_collections.c.name == name)
            ).first()
            stamp = now()
            if row is None:
                conn.execute(insert(kb_collections).values(
                    name=name, embedder=embedder, dim=dim, chunk_tokens=chunk_tokens,
                    overlap_tokens=overlap_tokens, generation=_ms(), created_at=stamp,
                    updated_at=stamp,
                ))
            else:
                if (row.embedder, row.dim) != (embedder, dim):
                    raise IngestError(
                        f"collection {name!r} holds vectors of embedder {row.embedder!r} "
                        f"(dim {row.dim}), not {embedder!r} (dim {dim}): remove it with "
                        f"`veteran kb remove {name}` and add its files again, or use another "
                        "collection"
                    )
                if (row.chunk_tokens, row.overlap_tokens) != (chunk_tokens, overlap_tokens):
                    conn.execute(
                        update(kb_collections).where(kb_collections.c.name == name)
                        .values(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
                    )
        found = self.collection(name)
        assert found is not None
        return found

    def collection(self, name: str) -> CollectionInfo | None:
        found = self._collections(name)
        return found[0] if found else None

    def collections(self) -> list[CollectionInfo]:
        return self._collections(None)

    def _collections(self, name: str | None) -> list[CollectionInfo]:
        c, d, k = kb_collections.c, kb_documents.c, kb_chunks.c
        documents = (
            select(func.count()).where(d.collection == c.name).scalar_subquery()
        )
        chunks = select(func.count()).where(k.collection == c.name).scalar_subquery()
        stmt = select(kb_collections, documents.label("n_documents"),
                      chunks.label("n_chunks")).order_by(c.name)
        if name is not None:
            stmt = stmt.where(c.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            CollectionInfo(
                name=r.name, embedder=r.embedder, dim=r.dim, chunk_tokens=r.chunk_tokens,
                overlap_tokens=r.overlap_tokens, generation=r.generation,
                created_at=r.created_at, updated_at=r.updated_at, documents=r.n_documents,
                chunks=r.n_chunks,
            )
            for r in rows
        ]

    def generation(self, collection: str) -> int:
        """`NotFound` for an unknown collection."""
        return int(self._collection_value(kb_collections.c.generation, collection))

    def _collection_value(self, column: Any, collection: str) -> Any:
        """One column of a collection's row; `NotFound` for an unknown collection."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(column).where(kb_collections.c.name == collection)
            ).scalar()
        if value is None:
            raise NotFound(f"no collection {collection!r}", param="collection")
        return value

    def delete_collection(self, name: str) -> None:
        """Remove the collection with its documents and chunks; `NotFound` when unknown."""
        with self.engine.begin() as conn:
            # explicit deletes: SQLite cascades only with foreign_keys on, which a foreign
            # connection may lack
            ids = select(kb_documents.c.id).where(kb_documents.c.collection == name)
            conn.execute(delete(kb_chunks).where(kb_chunks.c.document_id.in_(ids)))
            conn.execute(delete(kb_documents).where(kb_documents.c.collection == name))
            gone = conn.execute(
                delete(kb_collections).where(kb_collections.c.name == name)
            ).rowcount
        if not gone:
            raise NotFound(f"no collection {name!r}", param="collection")

    # documents

    def documents(self, collection: str) -> dict[str, DocumentInfo]:
        """The collection's documents by source."""
        d, k = kb_documents.c, kb_chunks.c
        chunks = select(func.count()).where(k.document_id == d.id).scalar_subquery()
        stmt = (
            select(kb_documents, chunks.label("n_chunks"))
            .where(d.collection == collection).order_by(d.source)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return {
            r.source: DocumentInfo(
                id=r.id, collection=r.collection, source=r.source,
                content_hash=r.content_hash, size=r.size,
                metadata=self.codec.decode_json(r.metadata),
                ingested_at=r.ingested_at, chunks=r.n_chunks,
            )
            for r in rows
        }

    def replace_document(
        self,
        collection: str,
        source: str,
        *,
        content_hash: str,
        size: int,
        metadata: dict[str, Any],
        chunks: Sequence[Chunk],
        embeddings: Vectors,
    ) -> None:
        """Store a document's chunks in place of the old ones, in one transaction. The chunks'
        `document_id` must be `document_id(collection, source, content_hash)`."""
        doc_id = document_id(collection, source, content_hash)
        dim = self._collection_value(kb_collections.c.dim, collection)
        vectors = np.asarray(embeddings, dtype=_DTYPE)
        if vectors.shape != (len(chunks), dim):
            raise ValueError(
                f"embeddings have shape {vectors.shape}, expected ({len(chunks)}, {dim})"
            )
        for n, chunk in enumerate(chunks):
            if (chunk.document_id, chunk.ordinal, chunk.id) != (doc_id, n, f"{doc_id}:{n}"):
                raise ValueError(f"chunk {chunk.id!r} is not chunk {n} of document {doc_id}")
        rows = [
            {
                "id": chunk.id, "collection": collection, "document_id": doc_id,
                "ordinal": chunk.ordinal, "text": self.codec.encode(chunk.text),
                "tokens": chunk.tokens, "metadata": self.codec.encode_json(chunk.metadata),
                "embedding": vectors[n].tobytes(),
            }
            for n, chunk in enumerate(chunks)
        ]
        with self.engine.begin() as conn:
            self._delete_document(conn, collection, source)
            conn.execute(insert(kb_documents).values(
                id=doc_id, collection=collection, source=source, content_hash=content_hash,
                size=size, metadata=self.codec.encode_json(metadata), ingested_at=now(),
            ))
            for start in range(0, len(rows), _BATCH):
                conn.execute(insert(kb_chunks), rows[start:start + _BATCH])
            self._bump(conn, collection)

    def delete_document(self, collection: str, source: str) -> None:
        """Remove one document and its chunks; `NotFound` when it is not there."""
        with self.engine.begin() as conn:
            if not self._delete_document(conn, collection, source):
                raise NotFound(f"no document {source!r} in collection {collection!r}",
                               param="source")
            self._bump(conn, collection)

    def _delete_document(self, conn: Connection, collection: str, source: str) -> bool:
        d = kb_documents.c
        old = conn.execute(
            select(d.id).where(d.collection == collection, d.source == source)
        ).scalar()
        if old is None:
            return False
        conn.execute(delete(kb_chunks).where(kb_chunks.c.document_id == old))
        conn.execute(delete(kb_documents).where(d.id == old))
        return True

    def _bump(self, conn: Connection, collection: str) -> None:
        c = kb_collections.c
        stamp = _ms()
        conn.execute(
            update(kb_collections).where(c.name == collection).values(
                generation=case((c.generation + 1 > stamp, c.generation + 1), else_=stamp),
                updated_at=now(),
            )
        )

    # chunks

    def chunks(self, collection: str) -> Iterator[tuple[Chunk, np.ndarray]]:
        """Every chunk of the collection with its embedding row, ordered by id, streamed."""
        k, d = kb_chunks.c, kb_documents.c
        stmt = (
            select(k.id, k.document_id, k.ordinal, k.text, k.tokens, k.metadata, k.embedding,
                   d.source)
            .join_from(kb_chunks, kb_documents, k.document_id == d.id)
            .where(k.collection == collection)
            .order_by(k.id)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(stmt):
                yield (self._chunk(row, collection),
                       np.frombuffer(row.embedding, dtype=_DTYPE))

    def chunks_by_id(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """The chunks of these ids that exist, by id (text and metadata, no embeddings)."""
        k, d = kb_chunks.c, kb_documents.c
        found: dict[str, Chunk] = {}
        unique = list(dict.fromkeys(ids))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), _BATCH):
                stmt = (
                    select(k.id, k.collection, k.document_id, k.ordinal, k.text, k.tokens,
                           k.metadata, d.source)
                    .join_from(kb_chunks, kb_documents, k.document_id == d.id)
                    .where(k.id.in_(unique[start:start + _BATCH]))
                )
                for row in conn.execute(stmt):
                    found[row.id] = self._chunk(row, row.collection)
        return found

    def _chunk(self, row: Any, collection: str) -> Chunk:
        return Chunk(
            id=row.id, collection=collection, document_id=row.document_id, source=row.source,
            ordinal=row.ordinal, text=self.codec.decode(row.text), tokens=row.tokens,
            metadata=self.codec.decode_json(row.metadata),
        )
