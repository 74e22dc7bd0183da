"""`veteran eval gate`: a non-inferiority test (pass, fail or inconclusive), the candidate
called fresh, and the baseline's use of the eval call cache stated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from click.testing import Result as Result_

from tests.evals.workspaces import TICKETS, echo_dataset, eval_workspace
from veteran.cli import cli
from veteran.evals.report import gate
from veteran.evals.runs import Result
from veteran.testing.fake_upstream import FakeUpstream

TICKETS_24 = TICKETS.replace('file = "evals/tickets.jsonl"',
                             'file = "evals/tickets.jsonl"\nlimit = 24')
PAIR = """
variants = ["echo:slow", "echo:up"]
[dataset]
file = "evals/echo.jsonl"
[graders.exact]
type = "exact"
"""


def _invoke(ws: Path, suite: str, *args: str) -> Result_:
    return CliRunner().invoke(cli, ["eval", "gate", suite, "-w", str(ws), "-q", *args])


def _gate(ws: Path, suite: str, *args: str) -> tuple[int, str, str]:
    """(exit code, all output, stderr)"""
    result = _invoke(ws, suite, *args)
    return result.exit_code, result.output + repr(result.exception), result.stderr


def _gate_json(ws: Path, suite: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = _invoke(ws, suite, *args, "--json")
    assert result.exit_code in (0, 1), result.output + repr(result.exception)
    return result.exit_code, json.loads(result.stdout)


def test_the_gate_fails_a_worse_candidate_and_passes_a_better_one(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path, suites={"tickets": TICKETS})
    code, out, _ = _gate(ws.path, "tickets", "--baseline", "triage:strong",
                         "--candidate", "triage:weak")
    assert code == 1, out
    assert "FAIL" in out and "below -0.0200" in out
    code, out, _ = _gate(ws.path, "tickets", "--baseline", "triage:weak",
                         "--candidate", "triage:strong")
    assert code == 0, out
    assert "PASS" in out and "above -0.0200" in out
    code, out, _ = _gate(ws.path, "tickets", "--baseline", "triage:strong",
                         "--candidate", "triage:weak", "--max-drop", "0.9")  # allowed
    assert code == 0, out


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path, suites={"tickets": TICKETS})
    pair = ("--baseline", "triage:strong", "--candidate", "triage:weak")
    code, out, _ = _gate(ws.path, "tickets", *pair, "--grader", "nope")
    assert code == 2 and "no grader 'nope'" in out
    code, out, _ = _gate(ws.path, "tickets", *pair, "--test", "vibes")
    assert code == 2 and "--test" in out
    code, out, _ = _gate(ws.path, "tickets", *pair, "--run", "r1", "--no-cache")
    assert code == 2 and "--no-cache" in out
    code, out, _ = _gate(ws.path, "tickets", "--baseline", "triage:weak",
                         "--candidate", "triage:weak")
    assert code == 2 and "the same variant" in out


def test_an_inconclusive_gate_exits_1_unless_accepted(tmp_path: Path) -> None:
    """24 tickets: the weak model is 0.5 worse, 95% CI [-0.71, -0.29]. An allowed drop of 0.4
    lies inside it: neither shown within nor beyond."""
    ws = eval_workspace(tmp_path, suites={"t24": TICKETS_24})
    pair = ("--baseline", "triage:strong", "--candidate", "triage:weak", "--max-drop", "0.4")
    code, out, err = _gate(ws.path, "t24", *pair)
    assert code == 1, out
    assert "INCONCLUSIVE" in out and "holds -0.4000" in out
    assert "roughly 105 samples would decide it" in out
    code, verdict = _gate_json(ws.path, "t24", *pair)
    assert code == 1
    assert verdict["verdict"] == "inconclusive" and verdict["passed"] is False
    assert verdict["samples_to_decide"] == 105 and verdict["test"] == "non-inferiority"
    assert verdict["accepted_inconclusive"] is False
    code, out, err = _gate(ws.path, "t24", *pair, "--accept-inconclusive")
    assert code == 0, out
    assert "INCONCLUSIVE" in out and "warning: the gate is inconclusive" in err
    code, verdict = _gate_json(ws.path, "t24", *pair, "--accept-inconclusive")
    assert code == 0 and verdict["accepted_inconclusive"] is True
    # the gate before issue 13, by name: passes what it could not measure, and says so
    code, out, _ = _gate(ws.path, "t24", *pair, "--test", "no-shown-drop")
    assert code == 0, out
    assert "PASS (no-shown-drop test)" in out
    assert "not shown, nor ruled out" in out


def test_the_gate_calls_the_candidate_fresh_and_says_how_old_the_baseline_is(
        tmp_path: Path, upstream: FakeUpstream) -> None:
    """The candidate (on the fake upstream) is called on every gate, cache or not; the
    baseline (the mock) comes from the cache the second time, and the verdict says so."""
    ws = eval_workspace(tmp_path, upstream=upstream.url, suites={"pair": PAIR})
    echo_dataset(tmp_path / "evals" / "echo.jsonl", 4)
    pair = ("--baseline", "echo:slow", "--candidate", "echo:up")
    code, first = _gate_json(ws.path, "pair", *pair)
    assert code == 0 and first["verdict"] == "pass"
    assert len(upstream.requests) == 4
    assert first["baseline_cache"] == {"calls": 4, "cached": 0, "oldest_s": None}
    code, out, _ = _gate(ws.path, "pair", *pair)
    assert code == 0, out
    assert len(upstream.requests) == 8  # the candidate again, not from the cache
    assert "baseline echo:slow: 4 of 4 answers from the eval call cache, the oldest" in out
    assert "candidate echo:up: all 4 answers called fresh" in out
    code, second = _gate_json(ws.path, "pair", *pair)
    assert len(upstream.requests) == 12
    cache = second["baseline_cache"]
    assert (cache["calls"], cache["cached"]) == (4, 4) and cache["oldest_s"] >= 0
    assert second["candidate_cache"]["cached"] == 0
    code, out, _ = _gate(ws.path, "pair", *pair, "--no-cache")
    assert code == 0 and "baseline echo:slow: all 4 answers called fresh" in out


def _results(base: list[float], cand: list[float]) -> list[Result]:
    out = []
    for i, (b, c) in enumerate(zip(base, cand, strict=True)):
        out.append(Result(f"s{i}", "base", 0, {"text": ""}, {"g": {"value": b, "passed": None}}))
        out.append(Result(f"s{i}", "cand", 0, {"text": ""}, {"g": {"value": c, "passed": None}}))
    return out


def test_the_issue_case_is_inconclusive_not_a_pass() -> None:
    """Issue 13: 24 samples, one worse (-0.0417, 95% CI [-0.1250, +0.0000]) with an allowed
    drop of 0.02 passed. Nothing shows it within 0.02 of the baseline."""
    verdict = gate(_results([1.0] * 24, [1.0] * 23 + [0.0]), "g", "base", "cand", 0.02)
    cmp = verdict.comparison
    assert (round(cmp.diff, 4), round(cmp.low, 4), round(cmp.high, 4)) == (-0.0417, -0.125, 0.0)
    assert verdict.verdict == "inconclusive" and not verdict.passed
    # the upper half-width 0.0417 must shrink to the 0.0217 between the mean and -0.02
    assert verdict.samples_to_decide == 89
    assert verdict.message.startswith("INCONCLUSIVE: g cand - base = -0.0417 (95% CI "
                                      "[-0.1250, +0.0000], n=24)")
    assert "roughly 89 samples would decide it" in verdict.message
    old = gate(_results([1.0] * 24, [1.0] * 23 + [0.0]), "g", "base", "cand", 0.02,
               test="no-shown-drop")
    assert old.passed and old.samples_to_decide is None


@pytest.mark.parametrize(("base", "cand", "verdict"), [
    ([1.0] * 100, [1.0] * 100, "pass"),  # the same answers: [0, 0], above -0.02
    ([1.0] * 1000, [1.0] * 990 + [0.0] * 10, "pass"),  # -0.01 on 1000: within 0.02, shown
    ([1.0] * 100, [1.0] * 99 + [0.0], "inconclusive"),  # -0.01 on 100: not shown either way
    ([1.0] * 100, [0.0] * 50 + [1.0] * 50, "fail"),  # -0.5: shown beyond
    ([0.0] * 50 + [1.0] * 50, [1.0] * 100, "pass"),  # better
])
def test_the_verdicts(base: list[float], cand: list[float], verdict: str) -> None:
    got = gate(_results(base, cand), "g", "base", "cand", 0.02)
    cmp = got.comparison
    assert got.verdict == verdict
    assert (cmp.low > -0.02) == (verdict == "pass")
    assert (cmp.high < -0.02) == (verdict == "fail")
    assert (got.samples_to_decide is not None) == (verdict == "inconclusive")
    assert got.message.startswith(verdict.upper() + ":")


def test_no_shown_drop_fails_only_what_is_shown_worse() -> None:
    big_drop = gate(_results([1.0] * 100, [0.0] * 50 + [1.0] * 50), "g", "base", "cand", 0.02,
                    test="no-shown-drop")
    assert big_drop.verdict == "fail" and abs(big_drop.comparison.diff + 0.5) < 1e-9
    with pytest.raises(ValueError, match="unknown gate test"):
        gate(_results([1.0], [1.0]), "g", "base", "cand", 0.02, test="vibes")  # type: ignore[arg-type]
