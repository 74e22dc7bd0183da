"""Variant against variant with a pairwise judge: the verdicts mapped back through the shown
order, and the win rate with its interval."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from tests.conftest import write_workspace
from veteran.cli import cli

CONFIG = """
[providers.a]
kind = "mock"
reply = "alpha answer"
[providers.o]
kind = "mock"
reply = "omega answer"
[providers.judge]
kind = "mock"
[providers.judge.rules]
"Response 1\\\\s+alpha" = '{"winner": "1"}'
"Response 2\\\\s+alpha" = '{"winner": "2"}'

[functions.f.variants.alpha]
model = "a/x"
[functions.f.variants.omega]
model = "o/x"
"""

SUITE = """
variants = ["f:alpha", "f:omega"]
[dataset]
file = "evals/data.jsonl"
[graders.exact]
type = "exact"
[graders.prefer]
type = "pairwise"
model = "judge/x"
rubric = "Which answer is better?"
"""


def test_the_judge_prefers_one_variant_whatever_the_order_shown(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    (ws.path / "evals").mkdir()
    (ws.path / "evals" / "pair.toml").write_text(SUITE)
    (ws.path / "evals" / "data.jsonl").write_text("".join(
        json.dumps({"id": f"s{i}", "input": f"question {i}", "target": "alpha answer"}) + "\n"
        for i in range(30)))
    runner = CliRunner()
    ran = runner.invoke(cli, ["eval", "run", "pair", "-w", str(ws.path), "--json"],
                        catch_exceptions=False)
    assert ran.exit_code == 0, ran.output

    def judged(baseline: str, candidate: str) -> dict[str, object]:
        result = runner.invoke(cli, ["eval", "pairwise", "pair", "--grader", "prefer",
                                     "--baseline", baseline, "--candidate", candidate,
                                     "--json", "-w", str(ws.path)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        found: dict[str, object] = json.loads(result.output)
        return found

    better = judged("f:omega", "f:alpha")
    assert better["win_rate"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 30}
    assert (better["wins"], better["losses"], better["ties"]) == (30, 0, 0)
    worse = judged("f:alpha", "f:omega")
    assert worse["win_rate"]["mean"] == 0.0  # type: ignore[index]

    engine = sa.create_engine(f"sqlite:///{ws.path / 'veteran.db'}")
    with engine.connect() as conn:
        judge_calls = conn.execute(sa.text(
            "SELECT count(*) FROM trajectory_tags WHERE key = 'eval_role' AND value = 'judge'"
        )).scalar_one()
    engine.dispose()
    assert judge_calls == 60 + 60  # the run's 2 x 30 gradings, then 2 x 30 verdicts


def test_a_grader_that_is_not_pairwise_is_refused(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    (ws.path / "evals").mkdir()
    (ws.path / "evals" / "pair.toml").write_text(SUITE)
    (ws.path / "evals" / "data.jsonl").write_text(
        json.dumps({"id": "s", "input": "q", "target": "alpha answer"}) + "\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["eval", "run", "pair", "-w", str(ws.path)]).exit_code == 0
    refused = runner.invoke(cli, ["eval", "pairwise", "pair", "--grader", "exact",
                                  "--baseline", "f:omega", "--candidate", "f:alpha",
                                  "-w", str(ws.path)])
    assert refused.exit_code != 0
    assert "graders.exact is not a pairwise grader" in str(refused.exception)
