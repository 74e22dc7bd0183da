"""The memory benchmark cannot rot: its data is what the generator makes, and a tiny run of
bench/memory.py's logic works end to end."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "memory"
FILES = ("passages.jsonl", "queries.jsonl", "cache_stream.jsonl")


def load(path: Path, name: str) -> ModuleType:
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_shipped_data_is_what_the_generator_makes(tmp_path: Path) -> None:
    builder = load(ROOT / "bench" / "data" / "build_memory_set.py", "build_memory_set")
    builder.build(tmp_path)
    for name in FILES:
        made = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        shipped = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        assert made == shipped, f"{name} differs: run bench/data/build_memory_set.py"


def test_labelled_set_meets_the_counts() -> None:
    passages = rows(DATA / "passages.jsonl")
    queries = rows(DATA / "queries.jsonl")
    ids = {p["id"] for p in passages}
    assert len(passages) >= 2000 and len(ids) == len(passages)
    assert all(40 <= len(p["text"].split()) <= 150 for p in passages)
    assert len(queries) >= 300
    assert {q["kind"] for q in queries} == {"keyword", "paraphrase", "mixed"}
    for query in queries:
        assert 1 <= len(query["relevant"]) <= 3
        assert set(query["relevant"]) <= ids


def test_cache_stream_labels_point_back() -> None:
    stream = rows(DATA / "cache_stream.jsonl")
    seen: dict[str, str] = {}
    for request in stream:
        if request["paraphrase_of"] is not None:
            assert seen[request["paraphrase_of"]] == request["intent"]
        seen[request["id"]] = request["intent"]
    paraphrases = sum(1 for r in stream if r["paraphrase_of"])
    assert 100 <= paraphrases < len(stream) / 2


@pytest.mark.slow
def test_quick_run_of_the_bench(tmp_path: Path) -> None:
    bench = load(ROOT / "bench" / "memory.py", "bench_memory")
    args = argparse.Namespace(data=DATA, limit=6, sizes=[400], skip_100k=False, repeat=1,
                              thresholds=[0.9])
    figures = {name: value for name, value, _ in bench.run(args, tmp_path)}
    passages, chunks = figures["(c) ingest: passages -> chunks"].split(" -> ")
    assert passages == chunks
    assert any(name.startswith("(a) hybrid, all") for name in figures)
    assert "(b) hybrid search at 400 chunks, p50 / p99 (query vector given)" in figures
    assert any(name.startswith("(d) threshold 0.92 (default)") for name in figures)
    assert any(name.startswith("(e) min_score 0.25 (default)") for name in figures)
