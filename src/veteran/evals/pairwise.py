"""Variant against variant: a pairwise judge over two variants' stored outputs of one run.

For every sample both variants answered (epoch 0), the suite's `pairwise` grader is asked which
answer is better, the order shown drawn per sample from its seed (`PairwiseJudge.compare`), and
the verdict mapped back. The result is the candidate's win rate over the baseline (ties count
half) with a 95% bootstrap interval: above 0.5 with the interval clear of it means the judge
prefers the candidate. Judge calls go through the gateway path like the run's own calls
(trajectories tagged `eval_run`, `eval_role=judge`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from veteran.evals import stats
from veteran.evals.errors import EvalError, Skip
from veteran.evals.judges import PairwiseJudge
from veteran.evals.runner import judge_complete, load_samples
from veteran.evals.runs import Runs
from veteran.evals.suite import Suite
from veteran.evals.types import Output
from veteran.gateway import Gateway
from veteran.workspace import Workspace


@dataclass(frozen=True, slots=True)
class PairwiseResult:
    run_id: str
    grader: str
    baseline: str
    candidate: str
    win_rate: stats.Estimate  # the candidate's, ties counted half
    wins: int
    losses: int
    ties: int
    skipped: int

    def to_json(self) -> dict[str, Any]:
        e = self.win_rate
        return {"run": self.run_id, "grader": self.grader, "baseline": self.baseline,
                "candidate": self.candidate,
                "win_rate": {"mean": e.mean, "low": e.low, "high": e.high, "n": e.n},
                "wins": self.wins, "losses": self.losses, "ties": self.ties,
                "skipped": self.skipped}


def _output(stored: dict[str, Any]) -> Output:
    return Output(text=str(stored.get("text") or ""),
                  tool_calls=list(stored.get("tool_calls") or []),
                  error=stored.get("error"))


async def pairwise(gateway: Gateway, workspace: Workspace, suite: Suite, run_id: str, *,
                   grader: str, baseline: str, candidate: str, concurrency: int = 8
                   ) -> PairwiseResult:
    """Judge `candidate` against `baseline` on run `run_id`'s outputs, the judge's calls
    through the running `gateway`."""
    store = gateway.store
    table = suite.config.graders.get(grader)
    if table is None or table.spec().get("type") != "pairwise":
        raise EvalError(f"{suite.shown}: graders.{grader} is not a pairwise grader")
    results = await asyncio.to_thread(Runs(store.engine).results, run_id)
    outputs = {(r.sample_id, r.variant): _output(r.output) for r in results if r.epoch == 0}
    for variant in (baseline, candidate):
        if not any(v == variant for _, v in outputs):
            raise EvalError(f"run {run_id} has no results for variant {variant!r}")
    samples = {s.id: s for s in await asyncio.to_thread(load_samples, suite, workspace.path,
                                                         store)}
    shared = sorted(s for s in samples
                    if (s, baseline) in outputs and (s, candidate) in outputs)
    judge = PairwiseJudge(grader, table.spec(), judge_complete(gateway, lambda: run_id))
    gate = asyncio.Semaphore(concurrency)

    async def one(sample_id: str) -> float | None:
        async with gate:
            try:
                return await judge.compare(samples[sample_id], outputs[sample_id, candidate],
                                           outputs[sample_id, baseline])
            except Skip:
                return None

    verdicts = await asyncio.gather(*(one(s) for s in shared))
    judged = [v for v in verdicts if v is not None]
    return PairwiseResult(
        run_id=run_id, grader=grader, baseline=baseline, candidate=candidate,
        win_rate=stats.mean_ci(judged), wins=sum(1 for v in judged if v > 0.5),
        losses=sum(1 for v in judged if v < 0.5), ties=sum(1 for v in judged if v == 0.5),
        skipped=len(verdicts) - len(judged),
    )
