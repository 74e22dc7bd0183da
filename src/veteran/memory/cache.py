"""The semantic cache: a request close enough to an earlier answered one gets that answer.

Opt-in per function (`[functions.NAME.cache]`). Two requests match when

- their **guard** is identical: a hash of everything that must be equal for the answer to
  carry over: the function's variants as configured (so changing a variant invalidates its
  entries), the system prompts, every request parameter other than the messages (temperature,
  tools, response_format, max_tokens, ...), every token of the conversation that carries a
  digit (part numbers, amounts, dates, order ids: "refund order 4471" must never be answered
  with what was said about order 4417, however similar the sentences look to an embedding),
  and its **polarity**: whether it negates (not, never, without, don't ...) and which extreme
  it asks about (maximum/highest/upper versus minimum/lowest/lower). Embeddings place a
  question and its opposite side by side (measured: cosine >= 0.95 for "which add-ons work with
  X" and "which add-ons don't work with X"), so these must match exactly too;
- and they are not the same words in another order ("convert 30 euros to dollars" is not
  "convert 30 dollars to euros", at cosine 0.99): a swap of roles, not a rephrasing;
- and the embeddings of their conversations (`request_text`) have a cosine similarity at or
  above the function's `threshold`.

Entries live in the store (`semantic_cache`, kept by `veteran.store.semantic_cache`), expire
after `ttl_seconds`, and are searched in memory: one matrix of vectors per function and guard,
loaded lazily. Lookups and inserts are thread-safe (the gateway calls them through
`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from veteran.memory.types import Vectors
from veteran.store.engine import StoreEngine
from veteran.store.ids import new_id
from veteran.store.semantic_cache import CacheEntry, SemanticCacheTable

DIGITS = re.compile(r"\S*\d\S*")
EDGE_PUNCTUATION = ".,;:!?()[]{}\"'`"
WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")
NEGATION = frozenset({"not", "no", "never", "without", "none", "nothing", "nor", "cannot",
                      "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't",
                      "won't", "wouldn't", "shouldn't", "mustn't", "excluding", "except"})
EXTREMES = {
    "max": frozenset({"max", "maximum", "highest", "most", "upper", "largest", "greatest",
                      "longest", "top", "ceiling"}),
    "min": frozenset({"min", "minimum", "lowest", "least", "lower", "smallest", "shortest",
                      "bottom", "floor"}),
}
# Request fields that do not change what the answer should be.
NOT_GUARDED = frozenset({"messages", "stream", "stream_options", "user", "metadata",
                         "veteran_tags", "model"})


def request_text(messages: Sequence[Any]) -> str:
    """The conversation as one text (system prompts excluded: they are in the guard)."""
    parts = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") in ("system", "developer"):
            continue
        parts.append(f"{message.get('role')}: {_content_text(message.get('content'))}")
    return "\n".join(parts)


def guard(fingerprint: str, body: dict[str, Any]) -> str:
    """What must be identical for two requests to share an answer (see the module docstring)."""
    messages = body.get("messages") or []
    system = [_content_text(m.get("content")) for m in messages
              if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    params = {k: v for k, v in body.items() if k not in NOT_GUARDED}
    text = request_text(messages).lower()
    exact = sorted({token.strip(EDGE_PUNCTUATION) for token in DIGITS.findall(text)})
    payload = orjson.dumps([fingerprint, system, params, exact, polarity(text)],
                           option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


def polarity(text: str) -> list[str]:
    """Whether `text` negates, and which extremes it asks about (see the module docstring)."""
    words = set(WORDS.findall(text.lower()))
    found = ["negated"] if words & NEGATION or any(w.endswith("n't") for w in words) else []
    found += [name for name, members in EXTREMES.items() if words & members]
    return found


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


@dataclass(frozen=True, slots=True)
class CacheHit:
    entry_id: str
    similarity: float
    response: dict[str, Any]
    trajectory_id: str | None


@dataclass(slots=True)
class _Bucket:
    """The entries of one (function, guard): vectors side by side for one matrix product."""

    ids: list[str] = field(default_factory=list)
    vectors: list[Vectors] = field(default_factory=list)
    expires: list[float] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    trajectories: list[str | None] = field(default_factory=list)
    words: list[list[str]] = field(default_factory=list)
    matrix: Vectors | None = None


class SemanticCache:
    def __init__(self, engine: StoreEngine, *, clock: Callable[[], float] = time.time,
                 max_entries: int = 10_000) -> None:
        self._table = SemanticCacheTable(engine)
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._loaded: set[str] = set()  # functions read from the store
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def lookup(self, function: str, guard_hash: str, vector: Vectors, threshold: float,
               text: str = "") -> CacheHit | None:
        """The most similar live entry at or above `threshold` that is not `text`'s words in
        another order, if any."""
        words = WORDS.findall(text.lower())
        with self._lock:
            self._load(function)
            bucket = self._buckets.get((function, guard_hash))
            if bucket is None or not bucket.ids:
                return None
            if bucket.matrix is None:
                bucket.matrix = np.vstack(bucket.vectors).astype(np.float32)
            scores = bucket.matrix @ vector.reshape(-1).astype(np.float32)
            now = self._clock()
            for i in np.argsort(-scores):
                if scores[i] < threshold:
                    return None
                if bucket.expires[i] > now and not _reordered(words, bucket.words[i]):
                    return CacheHit(bucket.ids[i], float(scores[i]), bucket.responses[i],
                                    bucket.trajectories[i])
            return None

    def store(self, function: str, guard_hash: str, vector: Vectors, response: dict[str, Any],
              *, ttl_seconds: float, text: str = "", fingerprint: str = "",
              trajectory_id: str | None = None) -> str:
        """Keep an answer; returns the entry id."""
        now = self._clock()
        entry = new_id(now)
        self._table.add(CacheEntry(
            id=entry, function=function, guard=guard_hash, fingerprint=fingerprint,
            embedding=np.asarray(vector, dtype="<f4").reshape(-1).tobytes(), text=text,
            response=response, trajectory_id=trajectory_id, created_at=now,
            expires_at=now + ttl_seconds,
        ))
        with self._lock:
            if function in self._loaded:
                self._add(function, guard_hash, entry, np.asarray(vector, np.float32),
                          now + ttl_seconds, response, trajectory_id, text)
        return entry

    def retire(self, function: str, fingerprint: str) -> int:
        """Delete a function's expired entries and those made under other variants (another
        `fingerprint`): called when the gateway starts, so a changed function starts afresh."""
        gone = self._table.retire(function, self._clock(), fingerprint)
        self._forget(function)
        return gone

    def invalidate(self, function: str) -> int:
        """Forget every entry of a function."""
        gone = self._table.clear(function)
        self._forget(function)
        return gone

    def _forget(self, function: str) -> None:
        with self._lock:
            self._loaded.discard(function)
            for key in [k for k in self._buckets if k[0] == function]:
                del self._buckets[key]

    def _load(self, function: str) -> None:
        if function in self._loaded:
            return
        for entry in self._table.live(function, self._clock(), limit=self._max_entries):
            vector = np.frombuffer(entry.embedding, dtype="<f4").astype(np.float32)
            self._add(function, entry.guard, entry.id, vector, entry.expires_at,
                      entry.response, entry.trajectory_id, entry.text)
        self._loaded.add(function)

    def _add(self, function: str, guard_hash: str, entry: str, vector: Vectors,
             expires: float, response: dict[str, Any], trajectory_id: str | None,
             text: str) -> None:
        bucket = self._buckets.setdefault((function, guard_hash), _Bucket())
        bucket.ids.append(entry)
        bucket.vectors.append(vector.reshape(-1))
        bucket.expires.append(expires)
        bucket.responses.append(response)
        bucket.trajectories.append(trajectory_id)
        bucket.words.append(WORDS.findall(text.lower()))
        bucket.matrix = None


def _reordered(a: list[str], b: list[str]) -> bool:
    """The same words in another order: a swap of roles ("A to B" against "B to A")."""
    return a != b and sorted(a) == sorted(b)
