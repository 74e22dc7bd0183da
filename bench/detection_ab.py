"""The detector's throughput at an earlier commit and now, alternating (issue 14).

    .venv/bin/python bench/detection_ab.py REV [--runs 6]

This machine's speed drifts by 20% from one minute to the next, so two single runs of
bench/detection.py taken minutes apart can show a change that is not there, or hide one that
is. This checks REV out in a temporary git worktree and times `Detector.find` over the labelled
corpus (bench/data/policy_corpus.jsonl, with bench/detection.py's company dictionaries and
pattern, every memo cleared; the best of 5 passes by CPU time) in a fresh process for each,
REV's source then this one's, `--runs` times, and prints each run and the medians. Nothing is
appended to bench/RESULTS.md: copy the table there with the command and the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent

TIMING = """
import sys, time, orjson
sys.path.insert(0, {bench!r})
from detection import forget
from policy_corpus import company
from veteran.policies.detect import Detector
from veteran.policy_settings import DictionaryConfig, PatternConfig
texts = [orjson.loads(line)["text"] for line in open({corpus!r}, encoding="utf-8")]
size = sum(len(t.encode()) for t in texts)
config = company(14)
detector = Detector(
    dictionaries={{k: DictionaryConfig(**v) for k, v in config["dictionaries"].items()}},
    patterns={{k: PatternConfig(**v) for k, v in config["patterns"].items()}})
best = float("inf")
for _ in range(5):
    forget()
    started = time.process_time()
    for text in texts:
        detector.find(text)
    best = min(best, time.process_time() - started)
print(size / best / 1e6)
"""


def throughput(source: Path) -> float:
    """MB/s of the detector whose package lies in `source` (a `src` folder)."""
    code = TIMING.format(bench=str(HERE), corpus=str(HERE / "data" / "policy_corpus.jsonl"))
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the earlier commit (any git revision)")
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                        args.rev], check=True, capture_output=True)
        try:
            before, after = [], []
            for run in range(1, args.runs + 1):
                before.append(throughput(tree / "src"))
                after.append(throughput(ROOT / "src"))
                print(f"run {run}: before {before[-1]:.2f} MB/s, after {after[-1]:.2f} MB/s",
                      flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True)
    b, a = statistics.median(before), statistics.median(after)
    wins = sum(x > y for x, y in zip(after, before, strict=True))
    print(f"| before ({args.rev}), MB/s | " + " | ".join(f"{x:.2f}" for x in before)
          + f" | {b:.2f} |")
    print("| after, MB/s | " + " | ".join(f"{x:.2f}" for x in after) + f" | {a:.2f} |")
    print(f"after / before (medians): {a / b:.2f}; after faster in {wins} of {args.runs} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
