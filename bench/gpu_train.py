"""The climb's LoRA recipes on a GPU: `sft-lora` for the speed-up against the CPU, `grpo` for the
real run that the CPU only smoke-tests.

    python bench/gpu_train.py --workspace WS [--recipe sft-lora] [--sizes 50,200,1000]
    python bench/gpu_train.py --workspace WS --recipe grpo --sizes 400 [--steps 100]

WS is a climb workspace after its capture (`bench/climb.py --workspace WS --train-only`): the
same store and curation (the latest N trajectories with `resolved = true`) as the climb, through
`veteran.train.train_model`, which trains in bf16 where CUDA is.
- `sft-lora`: the climb's parameters and seed (epochs by size, tickets.SFT_EPOCHS).
- `grpo`: from the base model, rewarded by the graders of suite `route` (written into WS): the
  exact queue (`normalized`, 1) plus the queue named somewhere in the answer (`contains`, 1), so
  an answer that names every queue earns less than the right one alone.
Every model then answers the held-out tickets on that device (greedy, through the chat template
the local provider uses), in batches: `exact` is the suite's `normalized` rule, `mentions` the
`contains` one; for grpo the base model answers first, for the before/after.

Prints one JSON object per model and writes them all to --out. Runs on the CPU too (slowly).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tickets import SFT_EPOCHS  # noqa: E402

from veteran.datasets import Filters  # noqa: E402
from veteran.evals.graders import normalize  # noqa: E402
from veteran.models import Registry  # noqa: E402
from veteran.store import Store  # noqa: E402
from veteran.train import train_model  # noqa: E402
from veteran.train.recipes import _hf  # noqa: E402
from veteran.train.types import Progress  # noqa: E402
from veteran.workspace import Workspace  # noqa: E402

HELDOUT = Path(__file__).parents[1] / "src" / "veteran" / "evals" / "data" / "tickets.jsonl"
ROUTE_SUITE = """
description = "GRPO rewards for the shipped task: the exact queue, and the queue named"
variants = ["triage:teacher"]
[dataset]
file = "evals/heldout.jsonl"
[graders.exact]
type = "normalized"
[graders.mentions]
type = "contains"
ignore_case = true
"""


def answer_all(tokenizer: Any, model: Any, system: str, tickets: list[dict[str, Any]],
               batch: int = 64) -> dict[str, float]:
    """How often the model's greedy answer is the queue (`exact`) or names it (`mentions`),
    and the seconds the answers took."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    tokenizer.padding_side = "left"
    exact = mentions = 0
    began = time.perf_counter()
    for start in range(0, len(tickets), batch):
        chunk = tickets[start:start + batch]
        chats = [[{"role": "system", "content": system}, {"role": "user", "content": t["input"]}]
                 for t in chunk]
        inputs = tokenizer.apply_chat_template(chats, add_generation_prompt=True, padding=True,
                                               return_tensors="pt", return_dict=True).to(device)
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=8, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(ids[:, inputs["input_ids"].shape[1]:],
                                       skip_special_tokens=True)
        for text, ticket in zip(texts, chunk, strict=True):
            exact += normalize(text) == normalize(ticket["target"])
            mentions += ticket["target"].casefold() in text.casefold()
    return {"exact": exact / len(tickets), "mentions": mentions / len(tickets),
            "answer_seconds": round(time.perf_counter() - began, 2)}


def report(progress: Progress) -> None:
    if progress.step % 10 == 0 or progress.step == progress.total:
        figures = {k: round(v, 4) for k, v in progress.metrics.items()
                   if k in ("loss", "reward", "reward_std")}
        print(json.dumps({"step": progress.step, "of": progress.total, **figures}), flush=True)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--recipe", choices=("sft-lora", "grpo"), default="sft-lora")
    parser.add_argument("--sizes", default=None, help="default: 50,200,1000 (sft-lora), 400")
    parser.add_argument("--steps", type=int, default=100, help="grpo optimizer steps")
    parser.add_argument("--param", action="append", default=[], metavar="K=V",
                        help="grpo parameters over the defaults below")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    machine = torch.cuda.get_device_name(0) if cuda else f"{platform.machine()} CPU"
    print(f"device: {machine}; torch {torch.__version__}", flush=True)
    ws = Workspace(args.workspace)
    config = ws.load_config()
    system = config.functions["triage"].system or ""
    tickets = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line]
    sizes = [int(s) for s in (args.sizes or ("50,200,1000" if args.recipe == "sft-lora"
                                               else "400")).split(",")]
    results: list[dict[str, Any]] = []
    if args.recipe == "grpo":
        (ws.path / "evals" / "route.toml").write_text(ROUTE_SUITE)
        base = _hf.load_base(None)
        results.append({"model": "base (zero-shot)", "device": machine,
                        **answer_all(base.tokenizer, base.model, system, tickets)})
        print(json.dumps(results[-1]), flush=True)
    store = Store.open(ws.database_url(config))
    try:
        for n in sizes:
            params: dict[str, Any] = {"epochs": SFT_EPOCHS.get(n, 1)}
            suite = None
            if args.recipe == "grpo":
                params = {"max_steps": args.steps, "batch_size": 32, "num_generations": 8,
                          "max_completion_length": 16, "learning_rate": 1e-4,
                          "save_steps": 1000, **dict(p.split("=", 1) for p in args.param)}
                suite = "route"
            t0 = time.perf_counter()
            record = train_model(ws, config, store, "triage", args.recipe,
                                 filters=Filters(metric="resolved", value=True, limit=n),
                                 params=params, seed=0, split={"train": 1.0}, suite=suite,
                                 progress=report)
            wall = time.perf_counter() - t0
            # A registered model loads as a recipe's base does: its adapter merged.
            trained = _hf.load_base(str(Registry(ws.path).path(record.id)))
            row = {"recipe": args.recipe, "n": n, "model": record.id, "device": machine,
                   "cuda": cuda, "params": record.params, "train_seconds": record.seconds,
                   "wall_seconds": round(wall, 1), "metrics": record.metrics,
                   **answer_all(trained.tokenizer, trained.model, system, tickets)}
            if args.recipe == "grpo":
                row["reward_curve"] = [
                    (h["step"], round(h["reward"], 3))
                    for h in Registry(ws.path).history(record.id) if "reward" in h]
            print(json.dumps(row), flush=True)
            results.append(row)
    finally:
        store.close()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
