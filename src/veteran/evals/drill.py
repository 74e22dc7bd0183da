"""Outage drill: what if PROVIDER disappeared now?

For every function with a variant on the provider, `plan_drill` finds the best remaining variant
by the latest eval scores and says what moving the lost traffic there would cost in quality:

- A variant's score is its mean over samples (each sample's value is the mean over its epochs)
  in the latest finished run that graded it, by `grader`, else by that run's first grader.
- The function's current expected quality is the traffic-weighted mean of its scored variants.
- The best remaining variant is the highest-scoring variant not on the provider. When none is
  scored, the remaining variant with the most traffic (then the first fallback, then the first
  declared) is chosen and the change is unknown; with no remaining variant the function fails.
- The expected change is the best remaining variant's quality minus the lost variants'
  traffic-weighted quality. Its 95% interval is *paired* when one finished run graded the best
  variant and every lost variant with traffic on common samples: `paired_difference` on the
  per-sample values (the lost side weighted per sample), from the latest such run, whose
  difference is also the reported change. Otherwise it is *independent*: the difference of the
  latest means, with each side's lower and upper half-widths combined in quadrature (a lost
  side of several variants combines theirs, scaled by traffic share, the same way): a normal
  approximation to two independent bootstrap intervals, wider than a paired one would be.
- The expected quality after is the current one plus the lost share times the change, or, when
  the change is unknown, the traffic-weighted mean of the variants with traffic once it is moved.
- A figure that cannot be computed is None, and `missing` says why, naming the variants without
  eval scores: the change needs the best remaining variant's score and every lost variant's
  with traffic; the expected quality after needs the scores of the variants with traffic once it
  is moved (not the lost ones'). The quality now leaves out the variants with traffic but no
  scores (`unscored` lists them).
- The config change: each lost variant gets `weight = 0`, the chosen variant receives their
  weight, and lost variants leave `fallbacks` (they would fail); nothing else is touched.

`apply_drill` writes that change into veteran.toml with `tomlkit`, keeping comments and layout,
through `tomledit.write_config`: the new text is validated (it loads, and says what the plan
meant) before it atomically replaces the file, so a refused edit leaves the file as it was.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from veteran.config import Config, FunctionConfig, load_config
from veteran.errors import VeteranError
from veteran.evals import stats
from veteran.evals.runs import Result, RunInfo, Runs
from veteran.tomledit import function_table as _function_table
from veteran.tomledit import toml_number as _toml_number
from veteran.tomledit import write_config

RUNS_SCANNED = 1000  # finished runs looked at, newest first


@dataclass(frozen=True, slots=True)
class Score:
    """A variant's latest score: mean over samples with its 95% interval."""

    variant: str
    run_id: str
    grader: str
    mean: float
    low: float
    high: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, "run": self.run_id, "grader": self.grader,
                "mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


@dataclass(frozen=True, slots=True)
class Change:
    """One key of `[functions.FUNCTION]` set from `old` to `new`; `variant` None: the function's
    own key (`fallbacks`)."""

    function: str
    variant: str | None
    key: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "variant": self.variant, "key": self.key,
                "old": self.old, "new": self.new}

    def describe(self) -> str:
        where = f"functions.{self.function}" + (
            f".variants.{self.variant}" if self.variant else "")
        return f"{where}.{self.key}: {_show(self.old)} -> {_show(self.new)}"


@dataclass(frozen=True, slots=True)
class Expected:
    """The best remaining variant minus the lost traffic's quality, with a 95% interval."""

    diff: float
    low: float
    high: float
    method: str  # "paired" | "independent"
    run_id: str | None  # the run the paired samples come from
    n: int | None  # paired samples

    def to_json(self) -> dict[str, Any]:
        return {"diff": self.diff, "low": self.low, "high": self.high, "method": self.method,
                "run": self.run_id, "n": self.n}


@dataclass(frozen=True, slots=True)
class FunctionDrill:
    function: str
    lost: list[str]  # variants on the provider
    lost_weight: float  # their traffic share (0..1)
    scores: dict[str, Score]  # variant -> latest score (scored variants only)
    current: float | None  # traffic-weighted expected quality now
    best: str | None  # the variant that takes the lost traffic; None: nothing remains
    best_scored: bool  # False: chosen without scores (change unknown)
    change: Expected | None
    after: float | None  # expected quality once moved (current + lost share x change)
    changes: list[Change] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)  # with traffic, left out of `current`
    # "current" | "change" | "after" -> why that figure is None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def fails(self) -> bool:
        return self.best is None

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function, "lost": self.lost, "lost_weight": self.lost_weight,
            "scores": {k: v.to_json() for k, v in self.scores.items()},
            "current": self.current, "best": self.best, "best_scored": self.best_scored,
            "fails": self.fails, "change": self.change.to_json() if self.change else None,
            "after": self.after, "changes": [c.to_json() for c in self.changes],
            "unscored": self.unscored, "missing": self.missing,
        }


@dataclass(frozen=True, slots=True)
class DrillPlan:
    provider: str
    grader: str | None
    functions: list[FunctionDrill]

    @property
    def changes(self) -> list[Change]:
        return [c for f in self.functions for c in f.changes]

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "grader": self.grader,
                "functions": [f.to_json() for f in self.functions]}


class _Scores:
    """Latest finished runs' results, loaded lazily, newest first."""

    def __init__(self, runs: Runs, grader: str | None) -> None:
        self.runs = runs
        self.grader = grader
        self.infos: list[RunInfo] = [
            r for r in runs.list(limit=RUNS_SCANNED) if r.status == "finished"]
        self._results: dict[str, list[Result]] = {}

    def results(self, run_id: str) -> list[Result]:
        if run_id not in self._results:
            self._results[run_id] = self.runs.results(run_id)
        return self._results[run_id]

    def grader_of(self, info: RunInfo) -> str | None:
        if self.grader is not None:
            return self.grader
        graders = (info.config.get("suite") or {}).get("graders") or {}
        if graders:
            return str(next(iter(graders)))
        names = [g for r in self.results(info.id) for g in r.scores]
        return names[0] if names else None

    def values(self, info: RunInfo, variant: str) -> tuple[str, dict[str, float]] | None:
        """(grader, sample -> mean over epochs) of `variant` in this run, or None."""
        grader = self.grader_of(info)
        if grader is None:
            return None
        per: dict[str, list[float]] = defaultdict(list)
        for r in self.results(info.id):
            score = r.scores.get(grader)
            if r.variant == variant and score is not None and score.get("value") is not None:
                per[r.sample_id].append(float(score["value"]))
        if not per:
            return None
        return grader, {s: statistics.fmean(v) for s, v in per.items()}

    def latest(self, variant: str) -> Score | None:
        for info in self.infos:
            found = self.values(info, variant)
            if found is not None:
                grader, values = found
                e = stats.mean_ci(list(values.values()))
                return Score(variant, info.id, grader, e.mean, e.low, e.high, e.n)
        return None

    def paired(self, lost: dict[str, float], best: str) -> Expected | None:
        """best - weighted lost on the samples one run graded them all on (latest such run)."""
        for info in self.infos:
            found = self.values(info, best)
            if found is None:
                continue
            grader, best_values = found
            sides: list[tuple[float, dict[str, float]]] = []
            for variant, weight in lost.items():
                other = self.values(info, variant)
                if other is None or other[0] != grader:
                    break
                sides.append((weight, other[1]))
            else:
                common = set(best_values)
                for _, values in sides:
                    common &= set(values)
                if not common:
                    continue
                total = sum(w for w, _ in sides)
                samples = sorted(common)
                lost_side = [sum(w * v[s] for w, v in sides) / total for s in samples]
                cmp = stats.paired_difference(lost_side, [best_values[s] for s in samples])
                return Expected(cmp.diff, cmp.low, cmp.high, "paired", info.id, cmp.n)
        return None


def _independent(lost: dict[str, float], scores: dict[str, Score], best: Score) -> Expected:
    total = sum(lost.values())
    shares = {v: w / total for v, w in lost.items()}
    mean = sum(shares[v] * scores[v].mean for v in lost)
    below = math.sqrt(sum((shares[v] * (scores[v].mean - scores[v].low)) ** 2 for v in lost))
    above = math.sqrt(sum((shares[v] * (scores[v].high - scores[v].mean)) ** 2 for v in lost))
    diff = best.mean - mean
    low = diff - math.hypot(best.mean - best.low, above)
    high = diff + math.hypot(best.high - best.mean, below)
    return Expected(diff, low, high, "independent", None, None)


def _pick_unscored(function: FunctionConfig, remaining: list[str]) -> str:
    def rank(name: str) -> tuple[float, int, int]:
        order = list(function.variants)
        fallback = (function.fallbacks.index(name) if name in function.fallbacks
                    else len(function.fallbacks))
        return (-function.variants[name].weight, fallback, order.index(name))

    return min(remaining, key=rank)


def _drill_function(name: str, function: FunctionConfig, provider: str,
                    scores_of: _Scores) -> FunctionDrill:
    variants = function.variants
    lost = [v for v, c in variants.items() if c.provider == provider]
    remaining = [v for v in variants if v not in lost]
    total = sum(c.weight for c in variants.values())
    lost_weights = {v: variants[v].weight for v in lost if variants[v].weight > 0}
    moved = sum(lost_weights.values())
    scores: dict[str, Score] = {}
    for v in variants:
        score = scores_of.latest(f"{name}:{v}")
        if score is not None and not math.isnan(score.mean):
            scores[v] = score
    weighted = [(c.weight, scores[v].mean) for v, c in variants.items()
                if c.weight > 0 and v in scores]
    current = (sum(w * m for w, m in weighted) / sum(w for w, _ in weighted)
               if weighted else None)
    scored_remaining = [v for v in remaining if v in scores]
    best: str | None
    if scored_remaining:
        best = max(scored_remaining, key=lambda v: scores[v].mean)
    elif remaining:
        best = _pick_unscored(function, remaining)
    else:
        best = None
    change: Expected | None = None
    if best is not None and best in scores and lost_weights and all(
            v in scores for v in lost_weights):
        change = scores_of.paired(
            {f"{name}:{v}": w for v, w in lost_weights.items()}, f"{name}:{best}"
        ) or _independent(lost_weights, scores, scores[best])
    share = moved / total if total > 0 else 0.0
    # The traffic once moved: what `after` is the quality of.
    live = {v: c.weight + (moved if v == best else 0.0) for v, c in variants.items()
            if v not in lost_weights and (c.weight > 0 or (v == best and moved > 0))}
    after = (current + share * change.diff
             if current is not None and change is not None else None)
    if after is None and best is not None and live and all(v in scores for v in live):
        # Without the lost variants' scores the change is unknown, not the quality after.
        after = sum(w * scores[v].mean for v, w in live.items()) / sum(live.values())
    if best is not None and not lost_weights and current is not None:
        after = current  # no traffic on the provider: quality stays
    changes: list[Change] = []
    if best is not None:
        for v, w in lost_weights.items():
            changes.append(Change(name, v, "weight", w, 0.0))
        if moved > 0:
            old = variants[best].weight
            changes.append(Change(name, best, "weight", old, old + moved))
        kept = [f for f in function.fallbacks if f not in lost]
        if kept != function.fallbacks:
            changes.append(Change(name, None, "fallbacks", list(function.fallbacks), kept))
    with_traffic = [v for v, c in variants.items() if c.weight > 0]
    unscored = [v for v in with_traffic if v not in scores]
    missing = _missing(name, with_traffic, list(live), scores, lost_weights, best, current,
                       change, after, scores_of.grader)
    return FunctionDrill(name, lost, share, scores, current, best,
                         best is not None and best in scores, change, after, changes,
                         unscored, missing)


def _missing(name: str, with_traffic: list[str], live: list[str], scores: dict[str, Score],
             lost_weights: dict[str, float], best: str | None, current: float | None,
             change: Expected | None, after: float | None, grader: str | None
             ) -> dict[str, str]:
    """Why each figure of a function's drill that is None could not be computed."""
    by = f" by grader {grader!r}" if grader else ""

    def no_scores(parts: list[str], unscored: list[str]) -> str:
        graded = " or ".join(f"{name}:{v}" for v in unscored)
        return (f"no eval scores for {' and '.join(parts)}: no finished eval run graded "
                f"{graded}{by}; score with `veteran eval run SUITE --variant {name}:"
                f"{unscored[0]}`")

    missing: dict[str, str] = {}
    if best is None:
        return missing
    if current is None:
        missing["current"] = (no_scores([f"variant {', '.join(with_traffic)} with traffic"],
                                        with_traffic) if with_traffic
                              else "no variant has traffic")
    if change is None and lost_weights:
        lost = [v for v in lost_weights if v not in scores]
        parts = [f"the lost variant {', '.join(lost)}"] if lost else []
        if best not in scores:
            parts.append(f"{best}, which takes the moved traffic")
        missing["change"] = no_scores(parts, [*lost, *([best] if best not in scores else [])])
    if after is None:
        unscored = [v for v in live if v not in scores]
        missing["after"] = (no_scores([f"{', '.join(unscored)}, with traffic after the move"],
                                      unscored) if unscored
                            else "no variant has traffic after the move")
    return missing


def plan_drill(config: Config, runs: Runs, provider: str, *,
               grader: str | None = None) -> DrillPlan:
    """The plan for losing `provider`: per affected function, see the module docstring."""
    if provider not in config.providers:
        known = ", ".join(sorted(config.providers)) or "none"
        raise VeteranError(f"no provider {provider!r} in veteran.toml (providers: {known})")
    scores_of = _Scores(runs, grader)
    functions = [
        _drill_function(name, function, provider, scores_of)
        for name, function in config.functions.items()
        if any(v.provider == provider for v in function.variants.values())
    ]
    return DrillPlan(provider, grader, functions)


def apply_drill(path: Path, plan: DrillPlan) -> list[Change]:
    """Write the plan's changes into `path` (comments and layout kept) once the new text loads and
    holds the planned values; refuses, leaving `path` as it was, when it does not, or when the
    file no longer holds the values the plan started from. Returns what was applied."""
    changes = plan.changes
    if not changes:
        return []
    original = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(original)
    before = load_config(path)
    for c in changes:
        if _current(before, c) != c.old:
            raise VeteranError(f"{path} changed since the drill was planned "
                               f"({c.describe()} no longer holds); run the drill again")
    for c in changes:
        table = _function_table(doc, c.function)
        if c.variant is None:
            if c.new:
                table[c.key] = c.new
            else:
                del table[c.key]
        else:
            table["variants"][c.variant][c.key] = _toml_number(c.new)

    def holds_the_plan(after: Config) -> None:
        for c in changes:
            if (got := _current(after, c)) != c.new:
                raise VeteranError(f"{path} not changed: the edit did not take: "
                                   f"{c.describe()}, read {got!r}")

    try:
        write_config(path, doc, expected=original, check=holds_the_plan)
    except VeteranError as exc:
        raise VeteranError(f"drill not applied: {exc.message}") from None
    return changes


def _current(config: Config, change: Change) -> Any:
    """What `config` holds at the key `change` sets; None when its function or variant is gone."""
    function = config.functions.get(change.function)
    if function is None:
        return None
    if change.variant is None:
        return function.fallbacks
    return getattr(function.variants.get(change.variant), change.key, None)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{_toml_number(value)}"
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return repr(value)
