"""Promotion: a registered model becomes a variant of its function, after its eval gate.

`promote` adds the variant `MODEL_ID` to the function (with `weight` of the traffic) in an
in-memory copy of veteran.toml, runs the function's gate suite on the main variant (the one
with the most weight) and the candidate through that copy, and writes veteran.toml only when
the gate passes. The gate is a non-inferiority test (`veteran.evals.report.gate`): the model
passes only when the interval of its paired difference from the main variant is all above
`-max_drop`; an inconclusive gate refuses it too, unless `accept_inconclusive` (the CLI's
`--accept-inconclusive`). The candidate is always called fresh; the main variant's answers may
come from the eval call cache within `[evals] cache_ttl`, and the verdict says how many did.
How the model is served depends on its kind:

- "causal-lm", "classifier": `model = "LOCAL/MODEL_ID"` on the first provider of kind "local",
  which gets `paths.MODEL_ID = "models/MODEL_ID"` (the workspace's model folder);
- "fewshot": the main variant's model, system prompt and parameters, plus
  `fewshot = { model = "MODEL_ID" }`: the same model, shown similar examples first.

The candidate's share is exact: its weight is `weight / (1 - weight)` times the other variants'
sum (`weight = 1` sets the others to 0 instead). Promoting a model that is already a variant
re-weights it (a ramp: 0.1, then 0.5, then 1). Each promotion is logged with the weights it
replaced in `models/promotions.jsonl`; `rollback` undoes the latest one standing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import tomlkit

from veteran.config import Config, FunctionConfig, parse_config
from veteran.errors import PromotionRefused as PromotionRefused  # defined with the whole tree
from veteran.errors import VeteranError
from veteran.evals import report
from veteran.evals.report import GateVerdict
from veteran.evals.runner import RunOutcome, run_suite
from veteran.evals.runs import Runs
from veteran.evals.suite import load_suite
from veteran.gateway import running
from veteran.models import ModelRecord, Registry
from veteran.store import Store
from veteran.tomledit import add_entry, function_table, remove_entry, toml_number, write_config
from veteran.workspace import Workspace

PROMOTION_VERSION = 1


@dataclass(frozen=True)
class Promotion:
    function: str
    model: str
    weight: float  # the candidate's share of the function's traffic
    weights: dict[str, float]  # every variant's weight after
    previous: dict[str, float]  # the weights it replaced (what rollback restores)
    added: bool  # the variant was added (False: an existing one was re-weighted)
    provider: str | None  # the local provider given `paths.MODEL_ID` by this promotion
    gate: dict[str, Any] | None  # the gate's scores; None with skip_gate
    at: float
    version: int = PROMOTION_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"action": "promote", **asdict(self)}


@dataclass(frozen=True)
class Rollback:
    function: str
    model: str
    weights: dict[str, float]  # restored
    removed: bool  # the variant was removed (False: its earlier weight restored)
    at: float
    version: int = PROMOTION_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"action": "rollback", **asdict(self)}


def main_variant(function: FunctionConfig, *, besides: str | None = None) -> str:
    """The variant with the most weight (the first declared among equals)."""
    names = [n for n in function.variants if n != besides]
    if not names:
        raise VeteranError("the function has no other variant to compare with")
    return max(names, key=lambda n: (function.variants[n].weight, -names.index(n)))


def local_provider(config: Config) -> str:
    """The first provider of kind "local", which serves owned causal-lm and classifier models."""
    for name, settings in config.providers.items():
        if settings.kind == "local":
            return name
    raise VeteranError('no provider with kind = "local" in veteran.toml to serve an owned '
                       'model; add one: [providers.local] kind = "local"')


def new_weights(weights: dict[str, float], candidate: str, share: float) -> dict[str, float]:
    """Weights giving `candidate` exactly `share` (0 < share <= 1) of the traffic."""
    if not 0 < share <= 1:
        raise VeteranError(f"--weight must be above 0 and at most 1, not {share}")
    others = {n: w for n, w in weights.items() if n != candidate}
    total = sum(others.values())
    if share == 1:
        return {**{n: 0.0 for n in others}, candidate: total if total > 0 else 1.0}
    if total <= 0:
        raise VeteranError("no other variant has traffic to share with the candidate")
    return {**others, candidate: share / (1 - share) * total}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update({k: _plain(v) for k, v in value.items()})
        return table
    return value


def _edit(doc: Any, config: Config, function: str, record: ModelRecord, share: float
          ) -> tuple[dict[str, float], dict[str, float], bool, str | None]:
    """Put the candidate into `doc`: (previous weights, new weights, added, provider)."""
    fconfig = config.functions[function]
    table = function_table(doc, function)
    variants = table["variants"]
    previous = {n: v.weight for n, v in fconfig.variants.items()}
    added = record.id not in fconfig.variants
    provider: str | None = None
    if added:
        variant = tomlkit.table()
        if record.kind == "fewshot":
            main = main_variant(fconfig)
            for key, value in variants[main].unwrap().items():
                if key not in ("weight", "fewshot"):
                    variant[key] = _plain(value)
            variant["fewshot"] = _plain({"model": record.id})
        else:
            name = local_provider(config)
            variant["model"] = f"{name}/{record.id}"
            paths = config.providers[name].model_dump().get("paths", {})
            relative = f"models/{record.id}"
            if record.id not in paths:
                provider_table = doc["providers"][name]
                if "paths" not in provider_table:
                    add_entry(provider_table, "paths", tomlkit.inline_table())
                add_entry(provider_table["paths"], record.id, relative)
                provider = name
        variant["weight"] = 0
        variant.add(tomlkit.nl())
        add_entry(variants, record.id, variant)
    weights = new_weights({**previous, record.id: previous.get(record.id, 0.0)}, record.id,
                          share)
    for name, weight in weights.items():
        if name not in previous or weight != previous[name]:
            variants[name]["weight"] = toml_number(weight)
    return previous, weights, added, provider


def promote(workspace: Workspace, config: Config, store: Store, function: str, model_id: str,
            *, weight: float, skip_gate: bool = False, accept_inconclusive: bool = False,
            progress: Callable[[int, int], None] | None = None) -> Promotion:
    """Give `model_id` `weight` of `function`'s traffic once it passes the function's gate;
    `PromotionRefused` (with the scores recorded and veteran.toml untouched) when it fails, or
    when the gate is inconclusive and `accept_inconclusive` is not given."""
    fconfig = config.functions.get(function)
    if fconfig is None:
        raise VeteranError(f"no function {function!r} in veteran.toml "
                           f"(functions: {', '.join(config.functions) or 'none'})")
    registry = Registry(workspace.path)
    record = registry.get(model_id)
    if record.function != function:
        raise VeteranError(f"model {model_id!r} was trained for {record.function!r}, "
                           f"not {function!r}")
    gate = fconfig.gate
    if gate is None and not skip_gate:
        raise VeteranError(f"function {function!r} has no eval gate: add [functions.{function}"
                           ".gate] (suite, grader, max_drop) to veteran.toml, or promote "
                           "without one with --skip-gate")
    path = workspace.config_path
    original = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(original)
    previous, weights, added, provider = _edit(doc, config, function, record, weight)
    candidate_config = parse_config(doc.unwrap(), str(path), folder=workspace.path)
    scores = None
    if gate is not None and not skip_gate:
        scores, verdict = _run_gate(workspace, candidate_config, store, function, record.id,
                                    progress)
        accepted = verdict.verdict == "inconclusive" and accept_inconclusive
        scores["accepted_inconclusive"] = accepted
        registry.set_scores(record.id, gate.suite, scores)
        if not (verdict.passed or accepted):
            registry.set_status(record.id, "refused")
            advice = ("\npromote it anyway with --accept-inconclusive, or give suite "
                      f"{gate.suite!r} more samples" if verdict.verdict == "inconclusive" else "")
            raise PromotionRefused(f"{model_id} not promoted: {verdict.message}{advice}",
                                   verdict)
    write_config(path, doc, expected=original)
    promotion = Promotion(function, record.id, weight, weights, previous, added, provider,
                          scores, time.time())
    registry.log_promotion(promotion.to_json())
    registry.set_status(record.id, "promoted")
    return promotion


def _run_gate(workspace: Workspace, config: Config, store: Store, function: str,
              model_id: str, progress: Callable[[int, int], None] | None
              ) -> tuple[dict[str, Any], GateVerdict]:
    fconfig = config.functions[function]
    gate = fconfig.gate
    assert gate is not None
    suite = load_suite(workspace.path, gate.suite, config)
    grader = gate.grader or next(iter(suite.config.graders))
    if grader not in suite.config.graders:
        raise VeteranError(f"[functions.{function}.gate] grader {grader!r} is not a grader "
                           f"of suite {suite.name!r} ({', '.join(suite.config.graders)})")
    baseline = f"{function}:{main_variant(fconfig, besides=model_id)}"
    candidate = f"{function}:{model_id}"
    async def run() -> RunOutcome:
        async with running(config, store, workspace) as gateway:
            return await run_suite(gateway, workspace, suite, variants=[baseline, candidate],
                                   fresh=[candidate], progress=progress)

    outcome = asyncio.run(run())
    results = Runs(store.engine).results(outcome.run_id)
    try:
        verdict = report.gate(results, grader, baseline, candidate, gate.max_drop)
    except ValueError as exc:
        raise VeteranError(f"the gate cannot judge run {outcome.run_id}: {exc}") from None
    variants = report.summarize(results)["variants"]
    scores = {
        "suite": suite.name, "run": outcome.run_id, "grader": grader, "baseline": baseline,
        "max_drop": gate.max_drop, "passed": verdict.passed, "verdict": verdict.verdict,
        "message": verdict.message, "samples_to_decide": verdict.samples_to_decide,
        "comparison": verdict.comparison.to_json(),
        "baseline_cache": verdict.baseline_cache.to_json() if verdict.baseline_cache else None,
        "candidate_cache": verdict.candidate_cache.to_json() if verdict.candidate_cache
        else None,
        "candidate_scores": variants.get(candidate, {}).get("graders", {}),
        "baseline_scores": variants.get(baseline, {}).get("graders", {}),
        "left_out": outcome.left_out.to_json(),  # evaluation calls, rows models trained on
        "at": time.time(),
    }
    return scores, verdict


def rollback(workspace: Workspace, function: str) -> Rollback:
    """Undo `function`'s latest promotion still standing: remove the variant it added (or
    restore the weight it had) and restore the weights the promotion replaced."""
    registry = Registry(workspace.path)
    entry = registry.active_promotion(function)
    if entry is None:
        raise VeteranError(f"no promotion of {function!r} to roll back")
    model_id = str(entry["model"])
    previous: dict[str, float] = entry["previous"]
    path = workspace.config_path
    original = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(original)
    table = function_table(doc, function)
    variants = table["variants"]
    if model_id not in variants:
        raise VeteranError(f"[functions.{function}.variants.{model_id}] is no longer in {path}; "
                           "nothing to roll back")
    removed = bool(entry["added"])
    if removed:
        remove_entry(variants, model_id)
        if "fallbacks" in table and model_id in table["fallbacks"]:
            table["fallbacks"] = [f for f in table["fallbacks"] if f != model_id]
        provider = entry.get("provider")
        if provider is not None:
            paths = doc["providers"][provider].get("paths")
            if paths is not None and model_id in paths:
                del paths[model_id]
                if not paths:
                    del doc["providers"][provider]["paths"]
    restored: dict[str, float] = {}
    for name, weight in previous.items():
        if name in variants and not (removed and name == model_id):
            variants[name]["weight"] = toml_number(weight)
            restored[name] = weight
    write_config(path, doc, expected=original)
    done = Rollback(function, model_id, restored, removed, time.time())
    registry.log_promotion(done.to_json())
    if removed:
        registry.set_status(model_id, "rolled-back")
    return done
