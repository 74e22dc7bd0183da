"""bench/gateway.py reads the gateway's own count of answered calls from `GET /metrics`: a
renamed metric or label would make it report "not exported" instead of failing here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from veteran.testing.server import ServerThread

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_reads_the_answered_calls_the_gateway_counted(
    gateway_server: ServerThread, http: httpx.Client
) -> None:
    spec = importlib.util.spec_from_file_location("bench_gateway", ROOT / "bench" / "gateway.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_gateway"] = bench
    spec.loader.exec_module(bench)

    port = urlsplit(gateway_server.url).port
    assert bench.counted_calls(port) is None  # no call yet: no series
    for model in ("triage", "triage", "up/gpt-x"):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    body = {"model": "triage", "messages": [{"role": "user", "content": "fault:status=400"}]}
    assert http.post("/v1/chat/completions", json=body).status_code == 400
    assert bench.counted_calls(port) == 3
