from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.evals.workspaces import TICKETS, eval_workspace
from veteran.cli import cli
from veteran.evals.report import gate
from veteran.evals.runs import Result


def _gate(ws: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", "gate", "tickets", "-w", str(ws), "-q", *args])
    return result.exit_code, result.output + repr(result.exception)


def test_the_gate_fails_a_worse_candidate_and_passes_a_better_one(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path, suites={"tickets": TICKETS})
    code, out = _gate(ws.path, "--baseline", "triage:strong", "--candidate", "triage:weak")
    assert code == 1, out
    assert "FAIL" in out and "below -0.0200" in out
    code, out = _gate(ws.path, "--baseline", "triage:weak", "--candidate", "triage:strong")
    assert code == 0, out
    assert "PASS" in out
    code, out = _gate(ws.path, "--baseline", "triage:strong", "--candidate", "triage:weak",
                      "--max-drop", "0.9")  # a drop this large is allowed
    assert code == 0, out
    code, out = _gate(ws.path, "--baseline", "triage:strong", "--candidate", "triage:weak",
                      "--grader", "nope")
    assert code == 2 and "no grader 'nope'" in out


def _results(base: list[float], cand: list[float]) -> list[Result]:
    out = []
    for i, (b, c) in enumerate(zip(base, cand, strict=True)):
        out.append(Result(f"s{i}", "base", 0, {"text": ""}, {"g": {"value": b, "passed": None}}))
        out.append(Result(f"s{i}", "cand", 0, {"text": ""}, {"g": {"value": c, "passed": None}}))
    return out


def test_a_drop_within_the_allowance_or_not_shown_with_confidence_passes() -> None:
    base = [1.0] * 100
    small_drop = [1.0] * 99 + [0.0]  # -0.01: within a 0.02 allowance
    assert gate(_results(base, small_drop), "g", "base", "cand", 0.02).passed
    # five samples, one worse: a drop of 0.2, but the interval reaches 0: not shown, passes
    unsure = gate(_results([1.0] * 5, [1.0] * 4 + [0.0]), "g", "base", "cand", 0.02)
    assert unsure.passed and unsure.comparison.diff < -0.02 <= unsure.comparison.high
    big_drop = [0.0] * 50 + [1.0] * 50
    verdict = gate(_results(base, big_drop), "g", "base", "cand", 0.02)
    assert not verdict.passed and verdict.comparison.high < -0.02
    assert abs(verdict.comparison.diff + 0.5) < 1e-9
