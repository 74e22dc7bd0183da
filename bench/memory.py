"""Institutional memory: retrieval quality, search latency, ingest throughput, semantic cache.

    .venv/bin/python bench/memory.py [--quick] [--skip-100k] [--no-append]

(a) recall@5, MRR@10 and nDCG@10 of BM25 alone, dense alone and hybrid on the labelled set in
bench/data/memory/ (how it is made: its README), overall and per query kind; (b) search p50/p99
at 10k and 100k chunks with the query vector given (query embedding timed apart); (c) ingest
throughput through `veteran.memory.ingest.ingest`, embedding and storage apart; (d) hit and
false-hit rates of the semantic cache's decision on bench/data/memory/cache_stream.jsonl; (e) what
`[memory] min_score` keeps: the share of the relevant hits among each labelled query's top 8
hybrid hits at or above it, and how many hits of 30 off-topic questions (`OFF_TOPIC`) reach it.
Prints a table and appends a dated section to bench/RESULTS.md.

Filler chunks for (b) are sentences of the labelled passages recombined with fresh numbers;
their vectors are the MiniLM vectors of the real passages plus small noise, renormalised
(`PoolEmbedder`): embedding 100k chunks on 2 CPU cores would take most of an hour, and search
time does not depend on what the vectors say.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from veteran.memory.embed import MiniLMEmbedder
from veteran.memory.ingest import IngestReport, ingest
from veteran.memory.search import MODES, MemoryIndex
from veteran.memory.store import MemoryStore
from veteran.memory.types import Embedder, Vectors
from veteran.store.engine import create_store_engine
from veteran.store.migrate import migrate

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data" / "memory"
RESULTS = BENCH / "RESULTS.md"
KINDS = ("keyword", "paraphrase", "mixed")
TARGET_SEARCH_P50_MS = 5.0
TARGET_FALSE_HIT = 0.01
COLLECTION = "bench"
MEMORY_K = 8  # [functions.NAME.memory] k's default: the hits a function's search gets
MIN_SCORES = (0.2, 0.25, 0.3, 0.35)
# Questions the company's knowledge has nothing to say about: what min_score must keep out.
OFF_TOPIC = (
    "What's a good recipe for banana bread?", "Who won the 1998 football world cup?",
    "How do I tie a bowline knot?", "Tell me a joke about cats.",
    "What is the capital of Australia?", "Recommend a sci-fi novel for the weekend.",
    "How many moons does Jupiter have?", "Translate 'good morning' into Italian.",
    "What's the weather like in Lisbon in May?", "How do I make sourdough starter?",
    "Explain the rules of cricket.", "Best way to learn the guitar as an adult?",
    "hi", "thanks!", "Can you write a haiku about autumn?", "What time is it in Tokyo?",
    "How do vaccines work?", "Which planet is closest to the sun?",
    "What is the plot of Hamlet?", "How do I change a bicycle tyre?",
    "Who painted the Mona Lisa?", "How long should I boil an egg?",
    "What's the difference between a crocodile and an alligator?",
    "Suggest a name for my puppy.", "How do I center a div in CSS?",
    "What is a monad in Haskell?", "How tall is Mount Everest?", "What do pandas eat?",
    "Plan a 3-day trip to Rome.", "Why is the sky blue?",
)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


# ---- metrics ---------------------------------------------------------------------------------


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return next((1.0 / i for i, pid in enumerate(ranked[:k], 1) if pid in relevant), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary gains: each relevant passage counts 1, wherever the set lists it."""
    dcg = sum(1.0 / math.log2(i + 1) for i, pid in enumerate(ranked[:k], 1) if pid in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


@dataclass
class Quality:
    recall5: float
    mrr10: float
    ndcg10: float
    queries: int


def quality(runs: Sequence[tuple[Sequence[str], set[str]]]) -> Quality:
    n = len(runs)
    return Quality(sum(recall_at(r, rel, 5) for r, rel in runs) / n,
                   sum(mrr_at(r, rel, 10) for r, rel in runs) / n,
                   sum(ndcg_at(r, rel, 10) for r, rel in runs) / n, n)


def percentile(values: Sequence[float], pct: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), pct))


# ---- embedders -------------------------------------------------------------------------------


class TimedEmbedder:
    """The real embedder, with the time spent embedding added up (ingest's own split)."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.seconds = 0.0

    def embed(self, texts: Sequence[str]) -> Vectors:
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


class PoolEmbedder:
    """Stands in for the real embedder when filling big collections: a text's vector is a pool
    vector picked by the text's hash, plus gaussian noise, renormalised. Same name and
    dimension as the real one, so the index serves dense search over it."""

    def __init__(self, real: Embedder, pool: Vectors, noise: float = 0.02) -> None:
        self.real = real
        self.name = real.name
        self.dim = real.dim
        self.pool = pool
        self.noise = noise

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            rng = np.random.default_rng(seed)
            out[i] = self.pool[seed % len(self.pool)] + rng.normal(0, self.noise, self.dim)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)


# ---- the workspace ---------------------------------------------------------------------------


def open_memory(folder: Path) -> MemoryStore:
    engine = create_store_engine(f"sqlite:///{folder / 'veteran.db'}")
    migrate(engine)
    return MemoryStore(engine)


def passage_id(metadata: dict[str, Any]) -> str:
    return str(metadata["id"])


def filler(passages: Sequence[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` passage-like records: sentences of the labelled passages recombined, every
    number replaced by random digits so no filler names a real code."""
    rng = random.Random(seed)
    sentences = [s for p in passages for s in re.split(r"(?<=\.) ", p["text"]) if s]

    def renumber(match: re.Match[str]) -> str:
        return "".join(rng.choice("0123456789") for _ in match[0])

    return [{"id": f"f{seed}-{i}", "topic": "filler",
             "text": re.sub(r"\d+", renumber, " ".join(rng.sample(sentences, 4)))}
            for i in range(count)]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


# ---- (a) quality and (c) ingest --------------------------------------------------------------


@dataclass
class Ingested:
    report: IngestReport
    embed_s: float


def ingest_set(memory: MemoryStore, embedder: TimedEmbedder, passages_file: Path) -> Ingested:
    embedder.embed(["load the model before the clock starts"])
    embedder.seconds = 0.0
    report = ingest(memory, embedder, COLLECTION, [passages_file], text_field="text")
    return Ingested(report, embedder.seconds)


def evaluate(index: MemoryIndex, queries: Sequence[dict[str, Any]], vectors: Vectors,
             ) -> dict[tuple[str, str], Quality]:
    """Quality per (mode, kind), kind "all" included."""
    runs: dict[tuple[str, str], list[tuple[list[str], set[str]]]] = {}
    for mode in MODES:
        for query, vector in zip(queries, vectors, strict=True):
            hits = index.search(COLLECTION, query["query"], k=10, mode=mode, query_vector=vector)
            ranked = [passage_id(h.chunk.metadata) for h in hits]
            run = (ranked, set(query["relevant"]))
            runs.setdefault((mode, "all"), []).append(run)
            runs.setdefault((mode, query["kind"]), []).append(run)
    return {key: quality(value) for key, value in runs.items()}


# ---- (e) the minimum score ------------------------------------------------------------------


@dataclass
class Floors:
    relevant: list[tuple[float, float]]  # (relevance, similarity) of each relevant hit
    off_topic: list[tuple[float, float]]  # the same for every hit of an off-topic question


def floors(index: MemoryIndex, queries: Sequence[dict[str, Any]], vectors: Vectors,
           off_topic_vectors: Vectors) -> Floors:
    """Relevance of the hits a function's search gets (hybrid, k = 8, no floor)."""
    def measured(query: str, vector: Vectors, keep: Callable[[str], bool]
                 ) -> list[tuple[float, float]]:
        hits = index.search(COLLECTION, query, k=MEMORY_K, query_vector=vector)
        return [(h.relevance or 0.0, h.similarity or 0.0) for h in hits
                if keep(passage_id(h.chunk.metadata))]

    relevant = [m for q, v in zip(queries, vectors, strict=True)
                for m in measured(q["query"], v, set(q["relevant"]).__contains__)]
    off = [m for q, v in zip(OFF_TOPIC, off_topic_vectors, strict=True)
           for m in measured(q, v, lambda _: True)]
    return Floors(relevant, off)


def default_min_score() -> float:
    from veteran.config import MemoryConfig

    return float(MemoryConfig().min_score)


def floor_rows(found: Floors, default: float) -> list[tuple[str, str, str]]:
    rows = []
    for floor in sorted({default, *MIN_SCORES}):
        name = f"min_score {floor:g}{' (default)' if floor == default else ''}"
        kept = sum(r >= floor for r, _ in found.relevant)
        through = sum(r >= floor for r, _ in found.off_topic)
        rows.append((f"(e) {name}: relevant hits kept / off-topic hits let through",
                     f"{kept / max(len(found.relevant), 1):.1%} ({kept}/{len(found.relevant)}) "
                     f"/ {through} of {len(found.off_topic)}", ""))
    kept = sum(s >= default for _, s in found.relevant)
    through = sum(s >= default for _, s in found.off_topic)
    rows.append((f"(e) similarity alone at {default:g}: relevant kept / off-topic through",
                 f"{kept / max(len(found.relevant), 1):.1%} ({kept}/{len(found.relevant)}) "
                 f"/ {through} of {len(found.off_topic)}", ""))
    return rows


# ---- (b) latency -----------------------------------------------------------------------------


@dataclass
class Latency:
    chunks: int
    fill_s: float  # ingesting the filler through the real path (pool vectors)
    build_s: float  # the first search: index build from the store
    p50: dict[str, float]
    p99: dict[str, float]
    parts: dict[str, str]  # mode -> median bm25 / dense / fetch ms


def time_searches(index: MemoryIndex, queries: Sequence[dict[str, Any]], vectors: Vectors,
                  chunks: int, fill_s: float, repeat: int) -> Latency:
    """Each query in each mode in turn, so the machine's noise falls on every mode alike."""
    started = time.perf_counter()
    index.refresh(COLLECTION)
    build_s = time.perf_counter() - started
    for query, vector in zip(queries[:20], vectors[:20], strict=True):  # warm-up
        for mode in MODES:
            index.search(COLLECTION, query["query"], k=10, mode=mode, query_vector=vector)
    samples: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in MODES}
    for _ in range(repeat):
        for query, vector in zip(queries, vectors, strict=True):
            for mode in MODES:
                _, t = index.search_timed(COLLECTION, query["query"], k=10, mode=mode,
                                          query_vector=vector)
                samples[mode].append((t.search_ms, t.bm25_ms, t.dense_ms, t.fetch_ms))
    p50 = {m: percentile([s[0] for s in samples[m]], 50) for m in MODES}
    p99 = {m: percentile([s[0] for s in samples[m]], 99) for m in MODES}
    parts = {m: " / ".join(f"{statistics.median(s[i] for s in samples[m]):.2f}"
                           for i in (1, 2, 3)) for m in MODES}
    return Latency(chunks, fill_s, build_s, p50, p99, parts)


def grow(memory: MemoryStore, pool: PoolEmbedder, passages: Sequence[dict[str, Any]],
         folder: Path, target: int, seed: int) -> float:
    """Add filler records (as JSONL files of 10k) until the collection holds `target` chunks;
    seconds spent."""
    info = memory.collection(COLLECTION)
    have = info.chunks if info else 0
    started = time.perf_counter()
    part = 0
    while have < target:
        count = min(10_000, target - have)
        path = folder / f"filler-{target}-{part}.jsonl"
        write_jsonl(path, filler(passages, count, seed + part))
        ingest(memory, pool, COLLECTION, [path], text_field="text")
        have += count
        part += 1
    return time.perf_counter() - started


def time_query_embedding(embedder: MiniLMEmbedder, queries: Sequence[dict[str, Any]],
                         ) -> tuple[float, float]:
    embedder.embed([queries[0]["query"]])
    times = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed([query["query"]])
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50), percentile(times, 99)


# ---- (d) the semantic cache ------------------------------------------------------------------


class CacheUnderTest(Protocol):
    """What the stream needs from a cache: the answer stored for a close-enough earlier
    request, or None; and a way to store one."""

    def lookup(self, text: str, vector: Vectors) -> str | None: ...

    def store(self, text: str, vector: Vectors, answer: str) -> None: ...


class VeteranCache:
    """`veteran.memory.cache.SemanticCache` as the gateway drives it: one function, the
    request's guard (digit-bearing tokens, parameters), cosine threshold."""

    def __init__(self, folder: Path, threshold: float) -> None:
        from veteran.memory import cache

        self.module = cache
        engine = create_store_engine(f"sqlite:///{folder / f'cache-{threshold}.db'}")
        migrate(engine)
        self.cache = cache.SemanticCache(engine)
        self.threshold = threshold

    def _guard(self, text: str) -> str:
        body = {"model": "bench", "messages": [{"role": "user", "content": text}]}
        return str(self.module.guard("bench-fingerprint", body))

    def lookup(self, text: str, vector: Vectors) -> str | None:
        hit = self.cache.lookup("bench", self._guard(text), vector, self.threshold,
                                cache_text(text))
        return None if hit is None else str(hit.response["answer"])

    def store(self, text: str, vector: Vectors, answer: str) -> None:
        self.cache.store("bench", self._guard(text), vector, {"answer": answer},
                         ttl_seconds=1e9, text=cache_text(text))


class ReferenceCache:
    """The decision `veteran.memory.cache` documents (same guard, cosine at or above the
    threshold), held in memory: used while the store has no `semantic_cache` table yet."""

    def __init__(self, folder: Path, threshold: float) -> None:
        from veteran.memory import cache

        self.module = cache
        self.threshold = threshold
        self.entries: dict[str, tuple[list[Vectors], list[str]]] = {}

    def _guard(self, text: str) -> str:
        body = {"model": "bench", "messages": [{"role": "user", "content": text}]}
        return str(self.module.guard("bench-fingerprint", body))

    def lookup(self, text: str, vector: Vectors) -> str | None:
        vectors, answers = self.entries.get(self._guard(text), ([], []))
        if not vectors:
            return None
        scores = np.vstack(vectors) @ vector
        best = int(np.argmax(scores))
        return answers[best] if scores[best] >= self.threshold else None

    def store(self, text: str, vector: Vectors, answer: str) -> None:
        vectors, answers = self.entries.setdefault(self._guard(text), ([], []))
        vectors.append(vector)
        answers.append(answer)


def cache_under_test(folder: Path, threshold: float) -> CacheUnderTest:
    """The real cache when the store has its table, else the reference decision."""
    from veteran.store import schema

    if hasattr(schema, "semantic_cache"):
        return VeteranCache(folder, threshold)
    return ReferenceCache(folder, threshold)


def cache_text(request: str) -> str:
    """What the cache embeds for a one-message request (its `request_text`)."""
    from veteran.memory.cache import request_text

    return str(request_text([{"role": "user", "content": request}]))


@dataclass
class CacheRun:
    threshold: float
    paraphrases: int
    hits: int  # paraphrases answered with their own intent's answer
    must_miss: int
    false_hits: int  # requests answered with another intent's answer
    false_by_change: Counter[str]


def difference(asked: str, answered: str) -> str:
    """How the intent answered differs from the one asked ("family/variant/slots")."""
    a, b = asked.split("/", 2), answered.split("/", 2)
    if a[0] != b[0]:
        return "another family"
    if a[1] != b[1]:
        return "opposite question"  # negation, antonym, direction, option
    return "another code or number" if re.search(r"\d", a[2] + b[2]) else "another entity"


def run_stream(stream: Sequence[dict[str, Any]], vectors: Vectors,
               cache: CacheUnderTest, threshold: float) -> CacheRun:
    intent: dict[str, str] = {}  # first request id of an intent -> the intent
    hits = false_hits = 0
    false_by: Counter[str] = Counter()
    for request, vector in zip(stream, vectors, strict=True):
        mine = request["paraphrase_of"] or request["id"]
        intent.setdefault(mine, request["intent"])
        answer = cache.lookup(request["request"], vector)
        if answer is None:
            cache.store(request["request"], vector, mine)
        elif answer == mine:
            hits += 1
        else:
            false_hits += 1
            false_by[difference(request["intent"], intent[answer])] += 1
            if request["paraphrase_of"]:
                false_by["of which on paraphrases"] += 1
    paraphrases = sum(1 for r in stream if r["paraphrase_of"])
    return CacheRun(threshold, paraphrases, hits, len(stream) - paraphrases, false_hits,
                    false_by)


def bench_cache(stream: Sequence[dict[str, Any]], embedder: MiniLMEmbedder, folder: Path,
                thresholds: Sequence[float],
                make: Callable[[Path, float], CacheUnderTest] = cache_under_test) -> list[CacheRun]:
    vectors = embedder.embed([cache_text(r["request"]) for r in stream])
    return [run_stream(stream, vectors, make(folder, t), t) for t in thresholds]


def default_threshold() -> float:
    from veteran.config import FunctionCacheConfig

    return float(FunctionCacheConfig().threshold)


# ---- the run ---------------------------------------------------------------------------------


def machine(load: float) -> str:
    sys.path.insert(0, str(BENCH))
    from gateway import machine as gateway_machine

    return str(gateway_machine(load))


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def run(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str]]:
    passages = read_jsonl(args.data / "passages.jsonl")
    queries = read_jsonl(args.data / "queries.jsonl")
    stream = read_jsonl(args.data / "cache_stream.jsonl")
    if args.limit:
        keep = {pid for q in queries[:args.limit] for pid in q["relevant"]}
        passages = [p for p in passages if p["id"] in keep] + [
            p for p in passages if p["id"] not in keep][:args.limit * 4]
        queries, stream = queries[:args.limit], stream[:args.limit * 2]
    passages_file = work / "passages.jsonl"
    write_jsonl(passages_file, passages)
    rows: list[tuple[str, str, str]] = []
    real = MiniLMEmbedder()
    embedder = TimedEmbedder(real)
    memory = open_memory(work)

    print(f"(c) ingesting {len(passages):,} passages ...", flush=True)
    done = ingest_set(memory, embedder, passages_file)
    total, chunks = done.report.seconds, done.report.chunks
    rows += [
        ("(c) ingest: passages -> chunks", f"{len(passages):,} -> {chunks:,}", ""),
        ("(c) ingest throughput, embedding included (MiniLM, CPU)",
         f"{chunks / total:,.0f} chunks/s ({total:.1f} s)", ""),
        ("(c) of which embedding", f"{done.embed_s:.1f} s ({chunks / done.embed_s:,.0f} "
         "chunks/s)", ""),
        ("(c) of which parse, chunk and store", f"{total - done.embed_s:.2f} s "
         f"({chunks / max(total - done.embed_s, 1e-9):,.0f} chunks/s)", ""),
    ]

    print(f"(a) {len(queries)} queries x {len(MODES)} modes ...", flush=True)
    index = MemoryIndex(memory, real, work / "index")
    qvectors = real.embed([q["query"] for q in queries])
    scores = evaluate(index, queries, qvectors)
    for kind in ("all", *KINDS):
        if ("hybrid", kind) not in scores:  # a --quick subset may lack a kind
            continue
        label = "all" if kind == "all" else kind
        count = scores["hybrid", kind].queries
        for mode in MODES:
            q = scores[mode, kind]
            goal = ""
            if kind == "all" and mode == "hybrid":
                best_single = max(scores["bm25", "all"].ndcg10, scores["dense", "all"].ndcg10)
                goal = f"nDCG@10 > BM25 and > dense {mark(q.ndcg10 > best_single)}"
            rows.append((f"(a) {mode}, {label} ({count} queries): recall@5 / MRR@10 / nDCG@10",
                         f"{q.recall5:.3f} / {q.mrr10:.3f} / {q.ndcg10:.3f}", goal))

    print(f"(e) min_score over {len(queries)} + {len(OFF_TOPIC)} off-topic queries ...",
          flush=True)
    found = floors(index, queries, qvectors, real.embed(list(OFF_TOPIC)))
    rows += floor_rows(found, default_min_score())

    qp50, qp99 = time_query_embedding(real, queries[:100])
    rows.append(("(b) query embedding p50 / p99 (one query, MiniLM, CPU)",
                 f"{qp50:.2f} / {qp99:.2f} ms", ""))
    pool = PoolEmbedder(real, real.embed([p["text"] for p in passages[:2000]])
                        if args.limit else index_vectors(index))
    sizes = [s for s in args.sizes if not (args.skip_100k and s > 10_000)]
    for size in sizes:
        print(f"(b) growing the collection to {size:,} chunks ...", flush=True)
        fill_s = grow(memory, pool, passages, work, size, seed=size)
        latency = time_searches(index, queries, qvectors, size, fill_s, args.repeat)
        for mode in MODES:
            goal = ""
            if size >= 100_000:
                goal = f"p50 ≤ {TARGET_SEARCH_P50_MS:g} ms {mark(latency.p50[mode] <= 5.0)}"
            rows.append((f"(b) {mode} search at {size:,} chunks, p50 / p99 (query vector given)",
                         f"{latency.p50[mode]:.2f} / {latency.p99[mode]:.2f} ms", goal))
            rows.append((f"(b) {mode} at {size:,}: median bm25 / dense / fetch ms",
                         latency.parts[mode], ""))
        rows.append((f"(b) filler ingest to {size:,} (pool vectors: parse, chunk, store)",
                     f"{latency.fill_s:.1f} s", ""))
        rows.append((f"(b) index build at {size:,} chunks (first search)",
                     f"{latency.build_s:.1f} s", ""))

    threshold = default_threshold()
    sweep = sorted({threshold, *args.thresholds})
    print(f"(d) cache stream of {len(stream)} requests at thresholds {sweep} ...", flush=True)
    which = type(cache_under_test(work, threshold)).__name__
    rows.append(("(d) cache under test", {"VeteranCache": "veteran.memory.cache.SemanticCache",
                 "ReferenceCache": "reference decision (guard + cosine, in memory): the store "
                 "has no semantic_cache table yet"}[which], ""))
    for result in bench_cache(stream, real, work, sweep):
        at_default = result.threshold == threshold
        rate = result.false_hits / max(result.must_miss, 1)
        goal = f"≤ {TARGET_FALSE_HIT:.0%} {mark(rate <= TARGET_FALSE_HIT)}" if at_default else ""
        name = f"threshold {result.threshold:g}{' (default)' if at_default else ''}"
        rows.append((f"(d) {name}: hit rate on paraphrases",
                     f"{result.hits / max(result.paraphrases, 1):.1%} "
                     f"({result.hits}/{result.paraphrases})", ""))
        kinds = ", ".join(f"{k} {v}" for k, v in result.false_by_change.most_common())
        rows.append((f"(d) {name}: false-hit rate on requests that must miss",
                     f"{rate:.1%} ({result.false_hits}/{result.must_miss}"
                     f"{'; ' + kinds if kinds else ''})", goal))
    return rows


def index_vectors(index: MemoryIndex) -> Vectors:
    built = index._current(COLLECTION)  # noqa: SLF001 (the bench reuses the embedded vectors)
    return np.asarray(built.vectors, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark institutional memory.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 40 queries, a small collection, 3k chunks for latency")
    parser.add_argument("--skip-100k", action="store_true", help="latency at 10k chunks only")
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--data", type=Path, default=DATA)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.limit = 40 if args.quick else 0
    args.sizes = [3_000] if args.quick else [10_000, 100_000]
    args.repeat = 1 if args.quick else 3
    args.thresholds = [0.9] if args.quick else [0.85, 0.9, 0.95, 0.97]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="veteran-bench-memory-") as tmp:
        rows = run(args, Path(tmp))
    rows.append(("wall time", f"{time.perf_counter() - started:.0f} s", ""))
    section = format_section(argv, load, rows)
    print("\n" + section)
    if not args.no_append:
        with RESULTS.open("a") as out:
            out.write("\n" + section)
        print(f"appended to {RESULTS}")
    return 0


def format_section(argv: Sequence[str], load: float, rows: Sequence[tuple[str, str, str]]) -> str:
    command = shlex.join([".venv/bin/python", "bench/memory.py", *argv])
    return "\n".join([
        f"## institutional memory, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
        f"- command: `{command}`",
        f"- machine: {machine(load)}",
        "- data: bench/data/memory/ (see its README); filler chunks for (b) carry pool vectors "
        "(see bench/memory.py)",
        "- (d) false-hit rate: requests answered with another intent's answer, over the "
        "requests with no earlier request of the same intent; the breakdown says how the "
        "answered intent differed",
        "", "| figure | value | target |", "| --- | --- | --- |",
        *(f"| {name} | {value} | {goal} |" for name, value, goal in rows),
    ]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
