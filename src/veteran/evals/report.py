"""What a run says: per variant, per grader, per slice; two variants side by side; two runs.

A sample's value for a grader is the mean over its epochs, so every statistic is over samples
(the unit that was drawn), and comparisons between variants are paired by sample.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from veteran.evals import stats
from veteran.evals.judges import render_conversation
from veteran.evals.runs import Result

MAX_SLICE_VALUES = 20  # metadata fields with more distinct values are not sliced on


@dataclass(frozen=True, slots=True)
class Paired:
    grader: str
    baseline: str
    candidate: str
    diff: float  # mean of candidate - baseline over samples both answered
    low: float
    high: float
    p_value: float
    n: int
    mcnemar_p: float | None  # pass/fail graders only

    def to_json(self) -> dict[str, Any]:
        return {"grader": self.grader, "baseline": self.baseline, "candidate": self.candidate,
                "diff": self.diff, "low": self.low, "high": self.high, "p_value": self.p_value,
                "n": self.n, "mcnemar_p": self.mcnemar_p}


def _values(results: Iterable[Result], variant: str, grader: str) -> dict[str, list[float]]:
    """sample -> the grader's values over epochs (errors and skips left out)."""
    out: dict[str, list[float]] = defaultdict(list)
    for r in results:
        score = r.scores.get(grader)
        if r.variant == variant and score is not None and "value" in score:
            out[r.sample_id].append(float(score["value"]))
    return out


def _passes(results: Iterable[Result], variant: str, grader: str) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        score = r.scores.get(grader)
        if r.variant == variant and score is not None and score.get("passed") is not None:
            out[r.sample_id].append(bool(score["passed"]))
    return out


def variants_of(results: list[Result]) -> list[str]:
    return list(dict.fromkeys(r.variant for r in results))


def graders_of(results: list[Result]) -> list[str]:
    return list(dict.fromkeys(g for r in results for g in r.scores))


def paired(results: list[Result], grader: str, baseline: str, candidate: str) -> Paired:
    """candidate - baseline on the samples both were graded on, with its 95% interval."""
    a = {s: statistics.fmean(v) for s, v in _values(results, candidate, grader).items()}
    b = {s: statistics.fmean(v) for s, v in _values(results, baseline, grader).items()}
    common = sorted(a.keys() & b.keys())
    if not common:
        raise ValueError(f"no sample was graded by {grader!r} for both {baseline!r} "
                         f"and {candidate!r}")
    cmp = stats.paired_difference([b[s] for s in common], [a[s] for s in common])  # a - b
    mcnemar_p = None
    pa, pb = _passes(results, candidate, grader), _passes(results, baseline, grader)
    both = sorted(pa.keys() & pb.keys())
    if both:
        # one epoch's verdict per sample (the first): McNemar wants paired binary outcomes
        mcnemar_p = stats.mcnemar([pa[s][0] for s in both], [pb[s][0] for s in both]).p_value
    return Paired(grader, baseline, candidate, cmp.diff, cmp.low, cmp.high, cmp.p_value,
                  len(common), mcnemar_p)


def _slices(results: list[Result], grader: str, variants: list[str]
            ) -> dict[str, dict[str, dict[str, Any]]]:
    """field -> value -> variant -> mean with interval, for low-cardinality metadata fields."""
    fields: dict[str, set[str]] = defaultdict(set)
    meta: dict[str, dict[str, Any]] = {}
    for r in results:
        meta.setdefault(r.sample_id, r.output.get("metadata") or {})
    for m in meta.values():
        for k, v in m.items():
            if isinstance(v, (str, bool, int)):
                fields[k].add(str(v))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for field_name, seen in sorted(fields.items()):
        if not 1 < len(seen) <= MAX_SLICE_VALUES:
            continue
        table: dict[str, dict[str, Any]] = {}
        for value in sorted(seen):
            row: dict[str, Any] = {}
            for variant in variants:
                vals = [statistics.fmean(v) for s, v in _values(results, variant, grader).items()
                        if str(meta.get(s, {}).get(field_name)) == value]
                if vals:
                    row[variant] = _estimate(vals)
            table[value] = row
        out[field_name] = table
    return out


def _estimate(values: list[float]) -> dict[str, Any]:
    e = stats.mean_ci(values)
    return {"mean": e.mean, "low": e.low, "high": e.high, "n": e.n}


def summarize(results: list[Result], *, baseline: str | None = None,
              variants: list[str] | None = None) -> dict[str, Any]:
    """Everything `--json` prints and the HTML report draws. `variants` is the run's order
    (the suite's); the others are compared with `baseline`, by default the first of them.
    Stored results come sorted by name, so without `variants` the first is alphabetical."""
    present = variants_of(results)
    variants = [v for v in variants or [] if v in present] + [
        v for v in present if v not in (variants or [])]
    if baseline is not None and baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not a variant of the run "
                         f"(variants: {', '.join(variants) or 'none'})")
    graders = graders_of(results)
    epochs = max((r.epoch for r in results), default=-1) + 1
    base = baseline or (variants[0] if variants else None)
    out: dict[str, Any] = {"variants": {}, "graders": graders, "epochs": epochs,
                           "baseline": base, "comparisons": [], "slices": {}}
    for variant in variants:
        mine = [r for r in results if r.variant == variant]
        latencies = [r.latency_ms for r in mine if r.latency_ms is not None]
        costs = [r.cost for r in mine if r.cost is not None]
        entry: dict[str, Any] = {
            "samples": len({r.sample_id for r in mine}), "calls": len(mine),
            "errors": sum(1 for r in mine if r.output.get("error")),
            "cost": sum(costs) if costs else None,
            "cost_per_call": statistics.fmean(costs) if costs else None,
            "latency_p50_ms": statistics.median(latencies) if latencies else None,
            "graders": {}, "pass_at_k": {},
        }
        for grader in graders:
            values = _values(results, variant, grader)
            if values:
                entry["graders"][grader] = _estimate(
                    [statistics.fmean(v) for v in values.values()])
            passes = _passes(results, variant, grader)
            if passes:
                ks = sorted({1, epochs})
                entry["pass_at_k"][grader] = {
                    str(k): statistics.fmean(
                        stats.pass_at_k(len(p), sum(p), k) for p in passes.values() if len(p) >= k)
                    for k in ks if any(len(p) >= k for p in passes.values())
                }
        out["variants"][variant] = entry
    for grader in graders:
        for candidate in variants:
            if base is None or candidate == base:
                continue
            try:
                out["comparisons"].append(paired(results, grader, base, candidate).to_json())
            except ValueError:
                continue
        out["slices"][grader] = _slices(results, grader, variants)
    return out


def _conversation(messages: list[dict[str, Any]]) -> str:
    if len(messages) == 1 and messages[0].get("role") == "user" and isinstance(
            messages[0].get("content"), str):
        return str(messages[0]["content"])  # the usual case: one question, shown as it is
    return render_conversation(messages)


def failures(results: list[Result], *, variants: list[str] | None = None
             ) -> list[dict[str, Any]]:
    """Every answer a grader failed (`passed` false) or whose call failed, sample by sample and
    in the run's variant order: the input, the expected answer and the output side by side,
    with each failing grader's reason. Runs stored before results kept their input and
    reference say so in those fields."""
    order = {v: i for i, v in enumerate(variants or variants_of(results))}
    out: list[dict[str, Any]] = []
    for r in results:
        error = r.output.get("error")
        failed = {name: str(score.get("explanation") or "")
                  for name, score in r.scores.items() if score.get("passed") is False}
        if not failed and not error:
            continue
        text = r.output.get("text") or ""
        if r.output.get("tool_calls"):
            text += f"\n[tool calls: {orjson.dumps(r.output['tool_calls']).decode()}]"
        reference = r.output.get("reference")
        out.append({
            "sample_id": r.sample_id, "variant": r.variant, "epoch": r.epoch,
            "input": _conversation(r.output["input"]) if "input" in r.output
            else "(not stored with this run)",
            "expected": "(not stored with this run)" if "reference" not in r.output
            else "-" if reference is None
            else reference if isinstance(reference, str) else orjson.dumps(reference).decode(),
            "output": text.strip(), "error": error, "failed": failed,
        })
    out.sort(key=lambda f: (f["sample_id"], order.get(f["variant"], len(order)), f["epoch"]))
    return out


def compare_runs(a: list[Result], b: list[Result], *, grader: str | None = None
                 ) -> dict[str, Any]:
    """Per (sample, variant): the score deltas from run A to run B and both outputs, for the
    samples whose scores or outputs changed (epoch 0; other epochs are repeats)."""
    index_a = {(r.sample_id, r.variant): r for r in a if r.epoch == 0}
    index_b = {(r.sample_id, r.variant): r for r in b if r.epoch == 0}
    changed: list[dict[str, Any]] = []
    for key in sorted(index_a.keys() & index_b.keys()):
        ra, rb = index_a[key], index_b[key]
        names = [grader] if grader else sorted(ra.scores.keys() | rb.scores.keys())
        deltas: dict[str, Any] = {}
        for name in names:
            va = ra.scores.get(name, {}).get("value")
            vb = rb.scores.get(name, {}).get("value")
            if va != vb:
                deltas[name] = {"a": va, "b": vb,
                                "delta": vb - va if va is not None and vb is not None else None}
        text_a, text_b = ra.output.get("text"), rb.output.get("text")
        if deltas or text_a != text_b:
            changed.append({"sample_id": key[0], "variant": key[1], "scores": deltas,
                            "output_a": text_a, "output_b": text_b})
    return {
        "compared": len(index_a.keys() & index_b.keys()),
        "only_a": len(index_a.keys() - index_b.keys()),
        "only_b": len(index_b.keys() - index_a.keys()),
        "changed": changed,
        "better": sum(1 for c in changed if _moved(c, 1)),
        "worse": sum(1 for c in changed if _moved(c, -1)),
    }


def _moved(change: dict[str, Any], sign: int) -> bool:
    return any((d["delta"] or 0) * sign > 0 for d in change["scores"].values())


GateTest = Literal["non-inferiority", "no-shown-drop"]
GATE_TESTS: tuple[GateTest, ...] = ("non-inferiority", "no-shown-drop")


@dataclass(frozen=True, slots=True)
class CacheUse:
    """How many of a variant's answers in a run came from the eval call cache, and the age of
    the oldest when it was given (None: none cached, or a run stored before ages were kept)."""

    calls: int
    cached: int
    oldest_s: float | None

    @classmethod
    def of(cls, results: Iterable[Result], variant: str) -> CacheUse:
        mine = [r for r in results if r.variant == variant]
        ages = [float(r.output["cache_age_s"]) for r in mine
                if r.cached and r.output.get("cache_age_s") is not None]
        return cls(len(mine), sum(1 for r in mine if r.cached), max(ages, default=None))

    def describe(self, role: str) -> str:
        if not self.cached:
            return f"{role}: all {self.calls} answers called fresh"
        oldest = "of unknown age" if self.oldest_s is None else f"{_age(self.oldest_s)} old"
        return (f"{role}: {self.cached} of {self.calls} answers from the eval call cache, "
                f"the oldest {oldest}")

    def to_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "cached": self.cached, "oldest_s": self.oldest_s}


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@dataclass(frozen=True, slots=True)
class GateVerdict:
    verdict: stats.Verdict
    comparison: Paired
    max_drop: float
    message: str
    test: GateTest = "non-inferiority"
    samples_to_decide: int | None = None  # inconclusive only, roughly
    baseline_cache: CacheUse | None = None
    candidate_cache: CacheUse | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "passed": self.passed, "test": self.test,
            "max_drop": self.max_drop, "samples_to_decide": self.samples_to_decide,
            "comparison": self.comparison.to_json(), "message": self.message,
            "baseline_cache": None if self.baseline_cache is None
            else self.baseline_cache.to_json(),
            "candidate_cache": None if self.candidate_cache is None
            else self.candidate_cache.to_json(),
        }


def gate(results: list[Result], grader: str, baseline: str, candidate: str, max_drop: float,
         *, test: GateTest = "non-inferiority") -> GateVerdict:
    """Judge `candidate` against `baseline` on `grader` with the interval of the paired
    difference (candidate - baseline), by a non-inferiority test (`stats.non_inferiority`):
    pass only when the whole interval is above -max_drop, fail when it is all below, and
    inconclusive otherwise, with roughly how many samples would decide it.

    `test="no-shown-drop"` is the gate before issue 13, kept for screening: fail only when the
    whole interval is below -max_drop, pass otherwise; it passes what it could not measure
    (the message says when). The message ends with where each side's answers came from."""
    if test not in GATE_TESTS:
        raise ValueError(f"unknown gate test {test!r} (tests: {', '.join(GATE_TESTS)})")
    cmp = paired(results, grader, baseline, candidate)
    judged = stats.non_inferiority(
        stats.Comparison(cmp.diff, cmp.low, cmp.high, cmp.p_value, cmp.n), max_drop)
    bound = f"-{max_drop:.4f}"
    measured = (f"{grader} {candidate} - {baseline} = {cmp.diff:+.4f} "
                f"(95% CI [{cmp.low:+.4f}, {cmp.high:+.4f}], n={cmp.n}); allowed drop "
                f"{max_drop:.4f}")
    needed = judged.samples_to_decide
    if judged.verdict == "pass":
        verdict: stats.Verdict = "pass"
        why = f"the whole interval is above {bound}"
    elif judged.verdict == "fail":
        verdict, why = "fail", f"the whole interval is below {bound}"
    elif test == "no-shown-drop":
        verdict = "pass"
        why = (f"a drop beyond {max_drop:.4f} is not shown, nor ruled out (the interval holds "
               f"{bound}; the non-inferiority test says INCONCLUSIVE)")
    else:
        verdict = "inconclusive"
        decide = (f"roughly {needed} samples would decide it, if the difference stays at "
                  f"{cmp.diff:+.4f}" if needed is not None else
                  "no number of samples would decide it: the difference is at the allowed drop")
        why = f"the interval holds {bound}, so these {cmp.n} samples cannot tell; {decide}"
    head = verdict.upper() + (" (no-shown-drop test)" if test == "no-shown-drop" else "")
    base_use, cand_use = CacheUse.of(results, baseline), CacheUse.of(results, candidate)
    message = (f"{head}: {measured}: {why}\n{base_use.describe('baseline ' + baseline)}; "
               f"{cand_use.describe('candidate ' + candidate)}")
    return GateVerdict(verdict, cmp, max_drop, message, test,
                       needed if verdict == "inconclusive" else None, base_use, cand_use)
