"""The learning curve: owned models trained on a teacher's captured trajectories, against the
teacher, on held-out tickets.

    .venv/bin/python bench/climb.py [--sizes 50,200,1000] [--recipes fewshot,classifier,sft-lora]

The shipped company task (bench/data/tickets.py): route support tickets to one of four queues.
1. A "teacher" variant answers 1,000 tickets through the gateway (the official OpenAI SDK
   against `veteran serve`'s app on loopback). Where no frontier model is configured, the teacher
   is a scripted stand-in (the mock provider's ordered keyword rules), priced and delayed like a
   frontier API (PRICE_IN/PRICE_OUT per million tokens, TEACHER_DELAY_MS).
2. The business outcome arrives as feedback through POST /v1/feedback: `resolved` (was the
   ticket routed to the right queue), and for the misrouted ones a `demonstration` (the queue
   an agent moved it to).
3. Each recipe trains on the latest N trajectories with `resolved = true`, for N in --sizes,
   with `veteran.train.train_model` (what `veteran train` runs), and is registered.
4. Every model and the teacher answer the held-out set (the shipped eval set,
   src/veteran/evals/data/tickets.jsonl, 340 tickets never sent during capture) in one eval
   run: each score with its 95% interval and the paired difference against the teacher. Then
   each answers LATENCY_CALLS held-out tickets one at a time through the gateway for its p50.

Cost per 1,000 calls: the teacher's from the captured token counts at its price; an owned
model's is the compute it holds: its p50 latency on a MACHINE_HOUR-priced 2-vCPU machine.
Writes bench/climb.png (score versus trajectories, one line per recipe) and appends the figures
to bench/RESULTS.md.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tickets import SFT_EPOCHS, TEACHER_RULES, generate  # noqa: E402

from veteran.datasets import Filters  # noqa: E402
from veteran.evals.report import paired  # noqa: E402
from veteran.evals.runner import run_suite  # noqa: E402
from veteran.evals.runs import Runs  # noqa: E402
from veteran.evals.stats import mean_ci  # noqa: E402
from veteran.evals.suite import load_suite  # noqa: E402
from veteran.gateway import Gateway, create_app, running  # noqa: E402
from veteran.gateway.server import UVICORN_OPTIONS  # noqa: E402
from veteran.models import Registry  # noqa: E402
from veteran.store import Store  # noqa: E402
from veteran.testing.server import ServerThread  # noqa: E402
from veteran.train import train_model  # noqa: E402
from veteran.workspace import Workspace  # noqa: E402

HERE = Path(__file__).parent
HELDOUT = Path(__file__).parents[1] / "src" / "veteran" / "evals" / "data" / "tickets.jsonl"
PRICE_IN, PRICE_OUT = 2.50, 10.00  # per million tokens: a frontier model's list price
TEACHER_DELAY_MS = 400  # a frontier API's typical latency for a one-word answer
MACHINE_HOUR = 0.085  # a 2-vCPU cloud machine, per hour
LATENCY_CALLS = 50
SYSTEM = ("Route the support ticket to one queue. Answer with one word: billing, technical, "
          "account or shipping.")

CONFIG = """
[providers.teacher]
kind = "mock"
delay_ms = {delay}
rules = {rules}
[providers.teacher.models.frontier-stand-in]
input_per_mtok = {price_in}
output_per_mtok = {price_out}

[providers.local]
kind = "local"
preload = false
max_new_tokens = 8

[functions.triage]
system = {system}
[functions.triage.variants.teacher]
model = "teacher/frontier-stand-in"

[metrics.resolved]
type = "boolean"
[metrics.demonstration]
type = "demonstration"
"""
SUITE = """
description = "Held-out tickets: the shipped eval set, never sent during capture"
variants = {variants}
concurrency = 4
[dataset]
file = "evals/heldout.jsonl"
[graders.label]
type = "normalized"
"""


@dataclass
class Estimate:
    mean: float
    low: float
    high: float


@dataclass
class Model:
    id: str
    seconds: float


async def _run_suite(ws: Workspace, config: Any, store: Store, suite: Any) -> Any:
    """The held-out suite through a running gateway, calling every model (cache off)."""
    async with running(config, store, ws) as gateway:
        return await run_suite(gateway, ws, suite, use_cache=False)


def toml_str(value: str) -> str:
    return json.dumps(value)


def toml_table(rules: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{toml_str(k)} = {toml_str(v)}" for k, v in rules.items()) + " }"


async def capture(url: str, tickets: list[dict[str, Any]], concurrency: int = 32) -> int:
    """Send every ticket to the teacher through the gateway; post the business outcome."""
    gate = asyncio.Semaphore(concurrency)
    wrong = 0
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0,
                                  timeout=60) as client, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        async def one(ticket: dict[str, Any]) -> None:
            nonlocal wrong
            async with gate:
                raw = await client.chat.completions.with_raw_response.create(
                    model="triage", messages=[{"role": "user", "content": ticket["input"]}])
                answer = (raw.parse().choices[0].message.content or "").strip().lower()
                trajectory = raw.headers["x-veteran-trajectory-id"]
                resolved = answer == ticket["target"]
                feedback = [{"trajectory_id": trajectory, "metric": "resolved",
                             "value": resolved}]
                if not resolved:
                    wrong += 1
                    feedback.append({"trajectory_id": trajectory, "metric": "demonstration",
                                     "value": ticket["target"]})
                for item in feedback:
                    response = await http.post("/v1/feedback", json=item)
                    response.raise_for_status()

        await asyncio.gather(*(one(t) for t in tickets))
    return wrong


def variant_config(record: Any, models_dir: Path) -> str:
    """The veteran.toml lines that serve a registered model as a variant of `triage`."""
    name = record.id
    if record.kind == "fewshot":
        return (f'[functions.triage.variants.{name}]\nmodel = "local/smollm2-135m-instruct"\n'
                f'weight = 0\nfewshot = {{ model = "{name}", k = 4 }}\n')
    return (f'[functions.triage.variants.{name}]\nmodel = "local/{name}"\nweight = 0\n')


def local_paths(records: list[Any]) -> str:
    owned = [r for r in records if r.kind != "fewshot"]
    if not owned:
        return ""
    return "paths = { " + ", ".join(f'"{r.id}" = "models/{r.id}"' for r in owned) + " }\n"


def write_config(ws: Workspace, records: list[Any]) -> None:
    text = CONFIG.format(delay=TEACHER_DELAY_MS, rules=toml_table(TEACHER_RULES),
                         price_in=PRICE_IN, price_out=PRICE_OUT, system=toml_str(SYSTEM))
    text = text.replace("max_new_tokens = 8\n", "max_new_tokens = 8\n" + local_paths(records))
    text += "".join(variant_config(r, ws.path / "models") for r in records)
    ws.config_path.write_text(text, encoding="utf-8")


async def one_at_a_time(url: str, variant: str, tickets: list[dict[str, Any]]) -> list[str]:
    """Call `variant` (pinned) once per ticket, one call at a time; the trajectory ids."""
    ids = []
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0,
                                  timeout=120) as client:
        for ticket in tickets:
            raw = await client.chat.completions.with_raw_response.create(
                model="triage", messages=[{"role": "user", "content": ticket["input"]}],
                extra_headers={"x-veteran-variant": variant})
            ids.append(raw.headers["x-veteran-trajectory-id"])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--recipes", default="fewshot,classifier,sft-lora")
    parser.add_argument("--workspace", default=None, help="keep everything here (default: tmp)")
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--skip", default="", help="RECIPE:N cells not to train, e.g. "
                        "sft-lora:1000 (reported as not run)")
    parser.add_argument("--train-only", action="store_true",
                        help="capture and train into --workspace, then stop (no eval, no report)")
    parser.add_argument("--report-only", action="store_true",
                        help="report bench/climb.json (the last run's figures) again")
    args = parser.parse_args()
    if args.report_only:
        report(args, json.loads((HERE / "climb.json").read_text()))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    args.skip = set(filter(None, args.skip.split(",")))
    recipes = [r for r in args.recipes.split(",") if r]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.workspace or tmp)
        path.mkdir(parents=True, exist_ok=True)
        ws = Workspace(path)
        write_config(ws, [])
        (path / "evals").mkdir(exist_ok=True)
        heldout = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line]
        (path / "evals" / "heldout.jsonl").write_text(HELDOUT.read_text())
        pool = generate(max(sizes) + max(sizes) // 10 + 50, seed=7)
        config = ws.load_config()
        store = Store.open(ws.database_url(config))
        try:
            # 1-2. capture and feedback
            captured = path / "captured.json"  # a rerun in the same --workspace reuses it
            if captured.exists():
                wrong = json.loads(captured.read_text())["wrong"]
            else:
                gateway = Gateway(config, store, spool_dir=path / "spool",
                                  memory_dir=path / "memory")
                t0 = time.perf_counter()
                with ServerThread(create_app(gateway), **UVICORN_OPTIONS) as server:
                    wrong = asyncio.run(capture(server.url, pool))
                captured.write_text(json.dumps({"wrong": wrong, "tickets": len(pool)}))
                print(f"captured {len(pool)} teacher trajectories in "
                      f"{time.perf_counter() - t0:.1f}s; {wrong} misrouted (corrected by a "
                      f"demonstration)", flush=True)
            registry = Registry(path)
            # 3. train
            records: list[Any] = []
            trained: dict[str, dict[int, Any]] = {r: {} for r in recipes}
            for n in sizes:
                for recipe in recipes:
                    if f"{recipe}:{n}" in args.skip:
                        continue
                    done = [r for r in registry.list("triage") if r.recipe == recipe
                            and r.lineage.dataset["filters"].get("limit") == n]
                    if done:  # trained by an earlier run in this --workspace
                        records.append(done[-1])
                        trained[recipe][n] = done[-1]
                        continue
                    params: dict[str, Any] = {}
                    if recipe in ("sft-lora", "dpo"):
                        params = {"epochs": SFT_EPOCHS.get(n, 1)}
                    t0 = time.perf_counter()
                    record = train_model(
                        ws, config, store, "triage", recipe,
                        filters=Filters(metric="resolved", value=True, limit=n),
                        params=params, seed=0, split={"train": 1.0},
                    )
                    print(f"{recipe} on {n}: {record.id} in {time.perf_counter() - t0:.1f}s "
                          f"{record.metrics}", flush=True)
                    records.append(record)
                    trained[recipe][n] = record
            if args.train_only:
                return
            # 4. held-out eval of the teacher and every model, in one run
            write_config(ws, records)
            config = ws.load_config()
            variants = ["triage:teacher"] + [f"triage:{r.id}" for r in records]
            (path / "evals" / "heldout.toml").write_text(
                SUITE.format(variants=json.dumps(variants)))
            suite = load_suite(path, "heldout", config)
            t0 = time.perf_counter()
            outcome = asyncio.run(_run_suite(ws, config, store, suite))
            print(f"held-out run {outcome.run_id}: {outcome.ran} calls in "
                  f"{time.perf_counter() - t0:.1f}s, {outcome.errors} errors", flush=True)
            results = Runs(store.engine).results(outcome.run_id)
            scores: dict[str, Any] = {}
            for variant in variants:
                values = [float(r.scores["label"]["value"]) for r in results
                          if r.variant == variant and "label" in r.scores]
                scores[variant] = mean_ci(values)
            diffs = {v: paired(results, "label", "triage:teacher", v) for v in variants[1:]}
            # latency, one call at a time, and cost
            gateway = Gateway(config, store, spool_dir=path / "spool", memory_dir=path / "memory")
            timing: dict[str, dict[str, float]] = {}
            with ServerThread(create_app(gateway), **UVICORN_OPTIONS) as server:
                for variant in variants:
                    name = variant.split(":", 1)[1]
                    ids = asyncio.run(one_at_a_time(server.url, name,
                                                heldout[:LATENCY_CALLS]))
                    rows = [store.trajectory(i) for i in ids]
                    p50 = statistics.median(t.latency_ms or 0.0 for t in rows)
                    cost = statistics.fmean(t.cost or 0.0 for t in rows) * 1000
                    if name != "teacher":
                        cost = p50 / 1000 / 3600 * MACHINE_HOUR * 1000
                    timing[variant] = {"p50_ms": p50, "cost_per_1k": cost}
        finally:
            store.close()
        summary = {
            "sizes": sizes, "recipes": recipes, "wrong": wrong, "captured": len(pool),
            "seconds": time.perf_counter() - started, "timing": timing,
            "scores": {v: [e.mean, e.low, e.high] for v, e in scores.items()},
            "diffs": {v: [d.diff, d.low, d.high] for v, d in diffs.items()},
            "trained": {r: {str(n): {"id": rec.id, "seconds": rec.seconds}
                            for n, rec in by_n.items()} for r, by_n in trained.items()},
        }
        (HERE / "climb.json").write_text(json.dumps(summary, indent=1))
    report(args, summary)


def report(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    sizes, recipes = summary["sizes"], summary["recipes"]
    timing, wrong, captured = summary["timing"], summary["wrong"], summary["captured"]
    seconds = summary["seconds"]
    scores = {v: Estimate(*e) for v, e in summary["scores"].items()}
    diffs = {v: Estimate(*d) for v, d in summary["diffs"].items()}
    trained = {r: {int(n): Model(**m) for n, m in by_n.items()}
               for r, by_n in summary["trained"].items()}
    teacher = scores["triage:teacher"]
    lines = [
        "| model | trajectories | held-out accuracy (95% CI) | vs teacher (95% CI) | "
        "share of teacher | cost / 1,000 calls | p50 latency | training time |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |",
        f"| teacher (scripted stand-in) | – | {teacher.mean:.3f} [{teacher.low:.3f}, "
        f"{teacher.high:.3f}] | – | 100% | ${timing['triage:teacher']['cost_per_1k']:.4f} | "
        f"{timing['triage:teacher']['p50_ms']:.1f} ms | – |",
    ]
    best: tuple[float, str] = (0.0, "")
    for recipe in recipes:
        for n in sizes:
            if n not in trained[recipe]:
                lines.append(f"| {recipe} | {n} | not run (see the note below) | | | | | |")
                continue
            record = trained[recipe][n]
            variant = f"triage:{record.id}"
            s, d, t = scores[variant], diffs[variant], timing[variant]
            share = s.mean / teacher.mean if teacher.mean else float("nan")
            best = max(best, (share, f"{recipe} on {n}"))
            lines.append(
                f"| {recipe} | {n} | {s.mean:.3f} [{s.low:.3f}, {s.high:.3f}] | "
                f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | {share:.1%} | "
                f"${t['cost_per_1k']:.4f} | {t['p50_ms']:.1f} ms | {record.seconds:.1f} s |")
    table = "\n".join(lines)
    print(table)
    print(f"best owned model: {best[1]} at {best[0]:.1%} of the teacher's score")
    plot(sizes, recipes, trained, scores, teacher)
    if args.no_append:
        return
    cmd = "python bench/climb.py " + " ".join(sys.argv[1:])
    with (HERE / "RESULTS.md").open("a", encoding="utf-8") as f:
        f.write(
            f"\n## Learning curve (bench/climb.py), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Command: `{cmd.strip()}`. Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, no GPU. {captured} teacher trajectories "
            f"captured through the gateway, {wrong} misrouted and corrected by feedback; "
            f"each recipe trained on the latest N with `resolved = true`; held-out: the 340 "
            f"shipped tickets. Teacher: scripted stand-in priced ${PRICE_IN}/${PRICE_OUT} per "
            f"million tokens, {TEACHER_DELAY_MS} ms. Owned models' cost: p50 latency on a "
            f"${MACHINE_HOUR}/hour 2-vCPU machine. Latency: {LATENCY_CALLS} calls one at a "
            f"time through the gateway. Whole run {seconds / 60:.1f} min. Plot: "
            f"bench/climb.png.\n\n{table}\n\nBest owned model: {best[1]}, "
            f"{best[0]:.1%} of the teacher's score.\n")


def plot(sizes: list[int], recipes: list[str], trained: dict[str, dict[int, Any]],
         scores: dict[str, Any], teacher: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe in recipes:
        done = [n for n in sizes if n in trained[recipe]]
        points = [scores[f"triage:{trained[recipe][n].id}"] for n in done]
        ax.errorbar(done, [p.mean for p in points],
                    yerr=[[p.mean - p.low for p in points], [p.high - p.mean for p in points]],
                    marker="o", capsize=3, label=recipe)
    ax.axhline(teacher.mean, color="black", linestyle="-", label="teacher")
    ax.axhspan(teacher.low, teacher.high, color="black", alpha=0.08)
    ax.axhline(0.95 * teacher.mean, color="gray", linestyle="--", label="95% of teacher")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("teacher trajectories trained on (resolved = true)")
    ax.set_ylabel("held-out accuracy (340 tickets, 95% CI)")
    ax.set_title("veteran: owned models learning from captured trajectories")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(HERE / "climb.png", dpi=120)


if __name__ == "__main__":
    main()
