"""The climb's `sft-lora` cells on a GPU, for the speed-up against the CPU.

    python bench/gpu_sft.py --workspace WS [--sizes 50,200,1000] [--out FILE]

WS is a climb workspace after its capture (`bench/climb.py --workspace WS --train-only`): the
same store, the same curation (the latest N trajectories with `resolved = true`), the same recipe
parameters and seed as the climb, through `veteran.train.train_model`, which trains in bf16 when
CUDA is there. Each model then answers the held-out tickets on that GPU (greedy, through the chat
template the local provider uses, graded with the suite's `normalized` rule), in batches.

Prints one JSON object per size and writes them all to --out. Runs on the CPU too (slowly).
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
from veteran.providers import owned  # noqa: E402
from veteran.store import Store  # noqa: E402
from veteran.train import train_model  # noqa: E402
from veteran.train.recipes import _hf  # noqa: E402
from veteran.train.registry import Registry  # noqa: E402
from veteran.workspace import Workspace  # noqa: E402

HELDOUT = Path(__file__).parents[1] / "src" / "veteran" / "evals" / "data" / "tickets.jsonl"


def answer_all(folder: Path, system: str, tickets: list[dict[str, Any]], batch: int = 64
               ) -> tuple[float, float]:
    """Held-out accuracy of the model in `folder` and the seconds its answers took."""
    import torch

    tokenizer, model = owned.load_causal_lm(
        folder, owned.read_manifest(folder),
        lambda base: (lambda b: (b.tokenizer, b.model))(_hf.load_base(base)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    right = 0
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
        right += sum(normalize(text) == normalize(t["target"])
                     for text, t in zip(texts, chunk, strict=True))
    return right / len(tickets), time.perf_counter() - began


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    machine = torch.cuda.get_device_name(0) if cuda else f"{platform.machine()} CPU"
    print(f"device: {machine}; torch {torch.__version__}", flush=True)
    ws = Workspace(args.workspace)
    config = ws.load_config()
    system = config.functions["triage"].system or ""
    tickets = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line]
    store = Store.open(ws.database_url(config))
    results = []
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            t0 = time.perf_counter()
            record = train_model(ws, config, store, "triage", "sft-lora",
                                 filters=Filters(metric="resolved", value=True, limit=n),
                                 params={"epochs": SFT_EPOCHS.get(n, 1)}, seed=0,
                                 split={"train": 1.0})
            wall = time.perf_counter() - t0
            accuracy, answer_seconds = answer_all(Registry(ws.path).path(record.id), system,
                                                  tickets)
            row = {"n": n, "model": record.id, "device": machine, "cuda": cuda,
                   "train_seconds": record.seconds, "wall_seconds": round(wall, 1),
                   "train_loss": record.metrics.get("train_loss"),
                   "heldout_accuracy": accuracy, "heldout_calls": len(tickets),
                   "answer_seconds": round(answer_seconds, 2)}
            print(json.dumps(row), flush=True)
            results.append(row)
    finally:
        store.close()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
