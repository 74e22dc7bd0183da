"""Eval runner throughput: samples per second against the fake upstream, exact-match grading.

    .venv/bin/python bench/evals.py [--samples 5000] [--concurrency 32]

A fresh workspace (SQLite store, durable capture), a suite of N samples whose answer is the
fake upstream's echo, one variant (a function's, pinned), concurrency 32. Everything a real run
does is timed: the gateway path (routing, retries bookkeeping, the HTTP call), trajectory
capture, grading, result batches and the call cache. Then the same suite again, answered from
the call cache. Prints the figures (target: at least 500 samples/s uncached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from veteran.config import Config
from veteran.evals.runner import RunOutcome, run_suite
from veteran.evals.suite import Suite, load_suite
from veteran.gateway import running
from veteran.store import Store
from veteran.testing.fake_upstream import FakeUpstream
from veteran.workspace import Workspace

CONFIG = """
[providers.up]
kind = "openai"
base_url = "{url}"
[functions.echo.variants.up]
model = "up/fake-model"
"""
SUITE = """
variants = ["echo:up"]
concurrency = {concurrency}
[dataset]
file = "evals/bench.jsonl"
[graders.exact]
type = "exact"
"""



async def _run_suite(ws: Workspace, config: Config, store: Store, suite: Suite) -> RunOutcome:
    async with running(config, store, ws) as gateway:
        return await run_suite(gateway, ws, suite)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream() as upstream:
        path = Path(tmp)
        (path / "veteran.toml").write_text(CONFIG.format(url=upstream.url))
        (path / "evals").mkdir()
        (path / "evals" / "bench.toml").write_text(SUITE.format(concurrency=args.concurrency))
        with (path / "evals" / "bench.jsonl").open("w") as f:
            for i in range(args.samples):
                f.write(json.dumps({"id": f"s{i}", "input": f"question {i}",
                                    "target": f"echo: question {i}"}) + "\n")
        ws = Workspace(path)
        config = ws.load_config()
        store = Store.open(ws.database_url(config))
        suite = load_suite(path, "bench", config)
        try:
            for label in ("uncached", "cached"):
                started = time.perf_counter()
                outcome = asyncio.run(_run_suite(ws, config, store, suite))
                seconds = time.perf_counter() - started
                assert outcome.ran == args.samples and outcome.errors == 0
                rates[label] = args.samples / seconds
                print(f"eval run ({label}): {args.samples} samples, concurrency "
                      f"{args.concurrency}: {rates[label]:,.0f} samples/s "
                      f"({seconds:.2f} s, {outcome.cached} from cache)")
        finally:
            store.close()
    if not args.no_append:
        append(args, rates, load)


def append(args: argparse.Namespace, rates: dict[str, float], load: float) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from gateway import machine  # the same machine line as the gateway benchmark

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    ok = "✓" if rates["uncached"] >= 500 else "✗"
    section = (
        f"\n## eval runner throughput, {now}\n\n"
        f"- command: `.venv/bin/python bench/evals.py --samples {args.samples} "
        f"--concurrency {args.concurrency}`\n"
        f"- machine: {machine(load)}\n"
        "- a suite of exact-match samples against the fake upstream on loopback, one pinned "
        "variant, through the gateway code path with trajectory capture (durable, SQLite)\n\n"
        "| figure | value | target |\n| --- | --- | --- |\n"
        f"| samples/s, model calls made | {rates['uncached']:,.0f} | ≥ 500 {ok} |\n"
        f"| samples/s, answered from the call cache | {rates['cached']:,.0f} |  |\n"
    )
    results = Path(__file__).parent / "RESULTS.md"
    with results.open("a", encoding="utf-8") as f:
        f.write(section)
    print(f"appended to {results}")


if __name__ == "__main__":
    main()
