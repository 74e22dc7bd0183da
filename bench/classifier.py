"""Latency of an owned `classifier` model served by the `local` provider, on the CPU.

    .venv/bin/python bench/classifier.py [--model-dir DIR] [--calls 300]

Trains a classifier on 1,000 generated tickets (bench/data/tickets.py) with the `classifier`
recipe, or takes an existing model folder, then times `LocalProvider.complete()` one call at a
time on the 340 held-out tickets (cycled): MiniLM embedding of the ticket + the head. Reports
p50/p90/p99 for 1 and 2 threads (target: p50 under 10 ms). In the same run, the embedding alone
is timed three ways: ONNX Runtime int8 (the recipe's default embedder) and float (the vectors
memory and fewshot use), and eager torch (transformers' `AutoModel`, what the embedder ran
before), for the ratios. Appends to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tickets import generate  # noqa: E402

from veteran.datasets.types import Example  # noqa: E402
from veteran.models import MANIFEST  # noqa: E402
from veteran.providers.base import ModelRequest  # noqa: E402
from veteran.providers.local import LocalProvider, LocalSettings  # noqa: E402
from veteran.train.recipes.classifier import ClassifierRecipe  # noqa: E402
from veteran.train.types import TrainJob  # noqa: E402

HERE = Path(__file__).parent
HELDOUT = Path(__file__).parents[1] / "src" / "veteran" / "evals" / "data" / "tickets.jsonl"
SYSTEM = "Answer with one word: billing, technical, account or shipping."


def train(folder: Path) -> float:
    examples = [
        Example(id=str(row["id"]), episode_id=str(row["id"]),
                prompt=[{"role": "system", "content": SYSTEM},
                        {"role": "user", "content": str(row["input"])}],
                completion={"role": "assistant", "content": str(row["target"])})
        for row in generate(1000, seed=3)
    ]
    job = TrainJob(function="triage", recipe="classifier", train=examples, eval=[],
                   output_dir=folder, checkpoint_dir=folder / "checkpoints")
    started = time.perf_counter()
    ClassifierRecipe().train(job)
    (folder / MANIFEST).write_text(json.dumps({
        "version": 1, "id": "bench-classifier", "function": "triage", "recipe": "classifier",
        "kind": "classifier", "base_model": "all-MiniLM-L6-v2"}))
    return time.perf_counter() - started


async def timings(folder: Path, threads: int | None, calls: int) -> list[float]:
    settings = LocalSettings(kind="local", preload=False, threads=threads,
                             paths={"clf": str(folder)})
    provider = LocalProvider("local", settings)
    tickets = [json.loads(line)["input"] for line in HELDOUT.read_text().splitlines() if line]
    out: list[float] = []
    try:
        for i in range(calls + 20):
            body = {"model": "clf", "messages": [{"role": "system", "content": SYSTEM},
                                                 {"role": "user", "content": tickets[i % 340]}]}
            started = time.perf_counter()
            await provider.complete(ModelRequest(model="clf", body=body))
            if i >= 20:  # the first calls load and warm the model
                out.append((time.perf_counter() - started) * 1000)
    finally:
        await provider.close()
    return out


def embedding_ms(calls: int) -> dict[str, float]:
    """p50 of one ticket's embedding: ONNX Runtime int8 and float (MiniLMEmbedder), eager
    torch."""
    import torch
    from transformers import AutoModel

    from veteran.memory.embed import MiniLMEmbedder, minilm_dir

    tickets = [json.loads(line)["input"] for line in HELDOUT.read_text().splitlines() if line]
    embedder = MiniLMEmbedder(threads=1)
    int8 = MiniLMEmbedder(threads=1, int8=True)
    tokenizer = embedder._tokenizer()
    tokenizer.no_padding()
    model = AutoModel.from_pretrained(str(minilm_dir()), local_files_only=True).eval()
    torch.set_num_threads(1)

    def eager(text: str) -> None:
        encoded = tokenizer.encode(text)
        ids = torch.tensor([encoded.ids])
        mask = torch.tensor([encoded.attention_mask])
        with torch.inference_mode():
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            torch.nn.functional.normalize(hidden.mean(1), dim=1)

    ways = (("int8", lambda t: int8.embed([t])), ("float", lambda t: embedder.embed([t])),
            ("torch", eager))
    times: dict[str, list[float]] = {name: [] for name, _ in ways}
    # Blocks of 25 calls each way, alternating, so that both see the same machine.
    for block in range(0, calls + 25, 25):
        for name, embed in ways:
            for i in range(block, block + 25):
                started = time.perf_counter()
                embed(tickets[i % len(tickets)])
                if block:  # the first block warms both up
                    times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model_dir or tmp)
        trained = "" if args.model_dir else f"; trained in {train(folder):.1f} s"
        lines = []
        for threads in (1, 2):
            ms = asyncio.run(timings(folder, threads, args.calls))
            lines.append(f"| {threads} | {statistics.median(ms):.2f} ms | {pct(ms, 0.9):.2f} ms"
                         f" | {pct(ms, 0.99):.2f} ms |")
    ms = embedding_ms(args.calls)
    table = ("| threads | p50 | p90 | p99 |\n| ---: | ---: | ---: | ---: |\n"
             + "\n".join(lines)
             + f"\n\nEmbedding one ticket alone, 1 thread, p50 (same run): ONNX Runtime int8 "
               f"{ms['int8']:.2f} ms, ONNX Runtime float {ms['float']:.2f} ms, eager torch "
               f"{ms['torch']:.2f} ms (int8 {ms['torch'] / ms['int8']:.1f}x and float "
               f"{ms['torch'] / ms['float']:.1f}x faster than torch).")
    print(table)
    if args.no_append:
        return
    with (HERE / "RESULTS.md").open("a", encoding="utf-8") as f:
        f.write(
            f"\n## classifier latency (bench/classifier.py), {datetime.now(UTC):%Y-%m-%d %H:%M}"
            f" UTC\n\nCommand: `python bench/classifier.py {' '.join(sys.argv[1:])}`. Machine: "
            f"{platform.machine()}, {os.cpu_count()} cores, load {load:.2f} at start{trained}. "
            f"`LocalProvider.complete()` one call at a time on the held-out tickets, "
            f"{args.calls} calls after 20 warm-up (target: p50 under 10 ms).\n\n{table}\n")


if __name__ == "__main__":
    main()
