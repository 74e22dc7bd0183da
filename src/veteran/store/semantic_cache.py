"""The semantic cache's entries in the store (`semantic_cache`); matching them is
`veteran.memory.cache`'s work. An entry's conversation (`text`) and answer (`response`) are
payload and pass the store's codec; the function, hashes, times and the embedding stay plain
(the embedding like memory's: see store/memory.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select

from veteran.store.codec import codec_for
from veteran.store.schema import semantic_cache


@dataclass(frozen=True, slots=True)
class CacheEntry:
    id: str
    function: str
    guard: str  # the hash of what must match exactly
    fingerprint: str  # names the function's variants when the entry was made
    embedding: bytes  # float32 little-endian
    text: str  # the conversation as embedded
    response: dict[str, Any]
    trajectory_id: str | None
    created_at: float
    expires_at: float


class SemanticCacheTable:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.codec = codec_for(engine)

    def add(self, entry: CacheEntry) -> None:
        row = {
            "id": entry.id, "function": entry.function, "guard": entry.guard,
            "fingerprint": entry.fingerprint, "embedding": entry.embedding,
            "text": self.codec.encode(entry.text),
            "response": self.codec.encode_json(entry.response),
            "trajectory_id": entry.trajectory_id, "created_at": entry.created_at,
            "expires_at": entry.expires_at,
        }
        with self.engine.begin() as conn:
            conn.execute(semantic_cache.insert(), row)

    def live(self, function: str, now: float, *, limit: int) -> Iterator[CacheEntry]:
        """A function's entries not expired at `now`, newest first, at most `limit`."""
        c = semantic_cache.c
        stmt = (select(semantic_cache).where(c.function == function, c.expires_at > now)
                .order_by(c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            for row in conn.execute(stmt):
                yield CacheEntry(
                    id=row.id, function=row.function, guard=row.guard,
                    fingerprint=row.fingerprint, embedding=row.embedding,
                    text=self.codec.decode(row.text),
                    response=self.codec.decode_json(row.response),
                    trajectory_id=row.trajectory_id, created_at=row.created_at,
                    expires_at=row.expires_at,
                )

    def retire(self, function: str, now: float, fingerprint: str) -> int:
        """Delete a function's entries expired at `now` or made under another `fingerprint`."""
        c = semantic_cache.c
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(semantic_cache).where(c.function == function)
                .where((c.expires_at <= now) | (c.fingerprint != fingerprint))
            ).rowcount
        return int(gone or 0)

    def clear(self, function: str) -> int:
        """Delete every entry of a function."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(semantic_cache).where(semantic_cache.c.function == function)
            ).rowcount
        return int(gone or 0)
