"""What the gateway recalls for a function's request: memory to put into the prompt, and an
earlier answer to give again (the semantic cache). Both are opt-in per function; a function
without them costs one set lookup per request.

The request's conversation is embedded once (in a worker thread, never on the event loop) and
the vector serves both the cache lookup and the dense half of the memory search.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from veteran.config import Config, FunctionConfig
from veteran.errors import NotFound
from veteran.memory import cache as semantic
from veteran.memory.context import Context, last_user_text, pack
from veteran.memory.types import Embedder, Hit, Vectors
from veteran.policies import map_request
from veteran.store import Store

if TYPE_CHECKING:
    from veteran.memory.search import MemoryIndex

log = logging.getLogger("veteran.gateway")
ORIGINS_KEPT = 10_000  # cached answers' origins remembered, so a repeated hit reads no row


@dataclass(frozen=True, slots=True)
class Origin:
    """Who first gave a cached answer: its trajectory's provider, model and variant."""

    provider: str | None
    model: str | None
    variant: str | None


@dataclass(slots=True)
class Recalled:
    """What `Recall.prepare` found for one request."""

    function: str
    cached: semantic.CacheHit | None = None
    origin: Origin | None = None  # of the cached answer, when its trajectory is found
    context: Context | None = None
    guard: str | None = None
    vector: Vectors | None = None  # the conversation's embedding, for storing in the cache
    text: str = ""  # the conversation as embedded
    timings: dict[str, float] = field(default_factory=dict)


def fingerprint(function: FunctionConfig) -> str:
    """Identifies a function's variants as configured: a change gives a new fingerprint, and
    the semantic cache drops the entries made under the old one."""
    variants = {name: v.model_dump(mode="json") for name, v in function.variants.items()}
    payload = orjson.dumps([function.system, variants], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:16]


class Recall:
    def __init__(self, config: Config, store: Store, memory_dir: Path | None) -> None:
        self._functions: dict[str, FunctionConfig] = {}
        self._fingerprints: dict[str, str] = {}
        self._config = config
        self.reconfigure(config)
        self._store = store
        self._memory_dir = memory_dir
        self._embedder: Embedder | None = None
        self._index: Any = None
        self._ensure_lock = threading.Lock()
        self._cache = semantic.SemanticCache(store.engine)
        self._missing: set[str] = set()
        self._origins: dict[str, Origin] = {}  # by trajectory id: a trajectory never changes

    def reconfigure(self, config: Config) -> None:
        """Follow a new config (live reload): the functions' memory and cache settings. The
        embedder and the indexes stay (the embedder is a setting that needs a restart); the
        cache entries of a function whose variants changed are no longer found (their
        fingerprint differs) and are retired when the gateway next starts."""
        functions = {name: f for name, f in config.functions.items() if f.memory or f.cache}
        # Fingerprints first, and kept for functions that go: a call in a worker thread that
        # read the functions before this swap still finds its function's.
        self._fingerprints = {**self._fingerprints,
                              **{name: fingerprint(f) for name, f in functions.items()}}
        self._functions = functions

    def wants(self, function: str | None) -> bool:
        return function is not None and function in self._functions

    async def start(self) -> None:
        """Drop cache entries made under other variants, and warm the embedder when needed."""
        for name, function in self._functions.items():
            if function.cache is not None:
                await asyncio.to_thread(self._cache.retire, name, self._fingerprints[name])
        if self._functions:
            await asyncio.to_thread(self._ensure)

    def embedder(self) -> Embedder:
        """The memory embedder (`[memory] embedder`), made on first use (call it from a worker
        thread); shared with few-shot selection (gateway/fewshot.py)."""
        self._ensure()
        assert self._embedder is not None
        return self._embedder

    def memory(self) -> tuple[Embedder, MemoryIndex]:
        """The embedder and the search index, made on first use (call it from a worker thread:
        it may load the model); shared with `/v1/kb/{collection}/search` and `/v1/embeddings`."""
        self._ensure()
        assert self._embedder is not None and self._index is not None
        return self._embedder, self._index

    def _ensure(self) -> None:
        if self._index is None:
            with self._ensure_lock:  # worker threads race here on the first requests
                if self._index is not None:
                    return
                from veteran.memory.embed import default_embedder
                from veteran.memory.search import MemoryIndex
                from veteran.memory.store import MemoryStore

                embedder = default_embedder(self._config)
                self._index = MemoryIndex(MemoryStore(self._store.engine), embedder,
                                          cache_dir=self._memory_dir)
                self._embedder = embedder

    async def prepare(self, function: str, body: dict[str, Any],
                      hide: Callable[[str], str] | None = None) -> Recalled:
        """`hide`: a text as the store may keep it (the company's storage redaction). The
        semantic cache embeds and keeps the conversation so hidden: it holds no value the
        trajectory does not. Its guard (a hash) still reads the numbers as asked, so two
        requests that differ only in a hidden number never share an answer."""
        return await asyncio.to_thread(self._prepare, function, body, hide)

    def _prepare(self, function: str, body: dict[str, Any],
                 hide: Callable[[str], str] | None) -> Recalled:
        self._ensure()
        assert self._embedder is not None
        out = Recalled(function)
        spec = self._functions.get(function)
        if spec is None:  # a reload took the function's recall away since `wants`
            return out
        messages = body.get("messages") or []
        started = time.perf_counter()
        if spec.cache is not None:
            out.guard = semantic.guard(self._fingerprints[function], body)
            kept = messages if hide is None else map_request(body, hide)["messages"]
            out.text = semantic.request_text(kept)
            out.vector = self._embedder.embed([out.text])[0]
            out.timings["embed_ms"] = (time.perf_counter() - started) * 1000
            out.cached = self._cache.lookup(function, out.guard, out.vector,
                                            spec.cache.threshold, out.text)
            if out.cached is not None:
                out.origin = self._origin(out.cached.trajectory_id)
                return out
        if spec.memory is not None:
            query = last_user_text(messages)
            hits: list[Hit] = []
            if query.strip():
                for collection in spec.memory.collections:
                    try:
                        hits.extend(self._index.search(
                            collection, query, k=spec.memory.k,
                            filters=dict(spec.memory.filters) or None, mode=spec.memory.mode,
                            min_score=(self._config.memory.min_score
                                       if spec.memory.min_score is None
                                       else spec.memory.min_score),
                        ))
                    except NotFound:  # not ingested yet: answer without it, say so once
                        if collection not in self._missing:
                            log.warning("function %s: memory collection %r does not exist",
                                        function, collection)
                            self._missing.add(collection)
            out.context = pack(hits, spec.memory.max_tokens, self._embedder.count_tokens,
                               spec.memory.collections)
            out.timings["memory_ms"] = (time.perf_counter() - started) * 1000
        return out

    def _origin(self, trajectory_id: str | None) -> Origin | None:
        """Who first gave a cached answer, read from its trajectory once (called from a worker
        thread); None when it cannot be read: not committed yet, erased, or the store away."""
        if not trajectory_id:
            return None
        found = self._origins.get(trajectory_id)
        if found is None:
            try:
                first = self._store.trajectory(trajectory_id)
            except Exception as exc:  # the answer is still good: it is recorded without
                log.debug("origin of cached answer %s not read (%s)", trajectory_id,
                          type(exc).__name__)
                return None
            found = Origin(first.provider, first.model, first.variant)
            if len(self._origins) >= ORIGINS_KEPT:
                self._origins.clear()
            self._origins[trajectory_id] = found
        return found

    def remember(self, recalled: Recalled, answer: dict[str, Any], trajectory_id: str) -> None:
        """Keep an answer in the semantic cache (called off the event loop, after capture)."""
        function = self._functions.get(recalled.function)
        spec = function.cache if function is not None else None
        if spec is None or recalled.guard is None or recalled.vector is None:
            return
        choices = answer.get("choices") or []
        if len(choices) != 1 or choices[0].get("finish_reason") not in ("stop", "tool_calls"):
            return  # partial, cut or multiple answers are not worth repeating
        self._cache.store(recalled.function, recalled.guard, recalled.vector, answer,
                          ttl_seconds=spec.ttl_seconds, text=recalled.text,
                          fingerprint=self._fingerprints[recalled.function],
                          trajectory_id=trajectory_id)
