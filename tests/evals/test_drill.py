"""`veteran drill --without PROVIDER`: the plan from stored eval runs, and `--apply`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from veteran.cli import cli
from veteran.config import load_config
from veteran.errors import VeteranError
from veteran.evals.drill import DrillPlan, FunctionDrill, apply_drill, plan_drill
from veteran.evals.runs import Result, Runs
from veteran.store import Store
from veteran.workspace import Workspace

CONFIG = """
# two providers; triage runs mostly on `a`
[providers.a]
kind = "mock"
[providers.b]
kind = "mock"

[functions.triage]
fallbacks = ["big", "small"]  # tried in this order

[functions.triage.variants.big]
model = "a/big"  # the strong one
weight = 3

[functions.triage.variants.small]
model = "b/small"
weight = 1

[functions.triage.variants.spare]
model = "b/spare"
weight = 0

[functions.only_a.variants.one]
model = "a/one"
"""


def _run(runs: Runs, values: dict[str, list[float]], *, grader: str = "label",
         status: str = "finished") -> str:
    run_id = runs.create("tickets", {"suite": {"graders": {grader: {"type": "exact"}}}})
    runs.add(run_id, [
        Result(sample_id=f"s{i}", variant=variant, epoch=0, output={"text": "x"},
               scores={grader: {"value": v, "passed": v >= 0.5}})
        for variant, vs in values.items() for i, v in enumerate(vs)
    ])
    runs.set_status(run_id, status)  # type: ignore[arg-type]
    return run_id


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Workspace, Runs]]:
    ws = write_workspace(tmp_path, CONFIG)
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        yield ws, Runs(store.engine)
    finally:
        store.close()


def test_the_plan_moves_lost_traffic_to_the_best_remaining_variant(
    workspace: tuple[Workspace, Runs],
) -> None:
    ws, runs = workspace
    big = [1.0] * 18 + [0.0] * 2  # 0.9
    small = [1.0] * 12 + [0.0] * 8  # 0.6
    spare = [1.0] * 15 + [0.0] * 5  # 0.75
    _run(runs, {"triage:big": big, "triage:small": small, "triage:spare": spare})
    plan = plan_drill(ws.load_config(), runs, "a")
    assert [f.function for f in plan.functions] == ["triage", "only_a"]
    triage, only_a = plan.functions
    assert triage.lost == ["big"] and triage.best == "spare" and triage.best_scored
    assert triage.lost_weight == pytest.approx(0.75)
    assert triage.current == pytest.approx((3 * 0.9 + 0.6) / 4)
    assert triage.change is not None and triage.change.method == "paired"
    assert triage.change.diff == pytest.approx(0.75 - 0.9)
    assert triage.change.low <= triage.change.diff <= triage.change.high
    assert triage.change.high < 0.05 and triage.change.n == 20
    assert triage.after == pytest.approx(triage.current + 0.75 * (0.75 - 0.9))
    assert [(c.variant, c.key, c.old, c.new) for c in triage.changes] == [
        ("big", "weight", 3.0, 0.0), ("spare", "weight", 0.0, 3.0),
        (None, "fallbacks", ["big", "small"], ["small"]),
    ]
    assert only_a.fails and only_a.best is None and only_a.changes == []


def test_scores_from_different_runs_use_an_independent_interval(
    workspace: tuple[Workspace, Runs],
) -> None:
    ws, runs = workspace
    _run(runs, {"triage:big": [1.0, 0.0] * 10})  # 0.5, in an older run
    _run(runs, {"triage:small": [1.0] * 18 + [0.0] * 2, "triage:spare": [0.0] * 20})
    _run(runs, {"triage:small": [0.0] * 20}, status="running")  # unfinished: ignored
    triage = plan_drill(ws.load_config(), runs, "a").functions[0]
    assert triage.best == "small"
    assert triage.change is not None and triage.change.method == "independent"
    assert triage.change.diff == pytest.approx(0.9 - 0.5)
    assert 0 < triage.change.low < 0.4 < triage.change.high
    assert triage.scores["big"].run_id != triage.scores["small"].run_id


def test_unknown_provider_and_unscored_variants(workspace: tuple[Workspace, Runs]) -> None:
    ws, runs = workspace
    with pytest.raises(VeteranError, match="no provider 'nope'.*providers: a, b"):
        plan_drill(ws.load_config(), runs, "nope")
    triage = plan_drill(ws.load_config(), runs, "a").functions[0]  # no runs at all
    assert triage.best == "small" and not triage.best_scored  # the most traffic remaining
    assert triage.change is None and triage.current is None
    assert plan_drill(ws.load_config(), runs, "b").functions[0].best == "big"


def test_apply_keeps_comments_and_a_second_drill_has_nothing_to_move(
    workspace: tuple[Workspace, Runs],
) -> None:
    ws, runs = workspace
    _run(runs, {"triage:big": [1.0] * 20, "triage:small": [0.0] * 20, "triage:spare": [1.0] * 20})
    result = CliRunner().invoke(cli, ["drill", "--without", "a", "--apply", "--json",
                                      "-w", str(ws.path)])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.output)
    assert len(out["applied"]) == 3 and out["functions"][1]["fails"]
    text = ws.config_path.read_text(encoding="utf-8")
    assert "# the strong one" in text and "# two providers" in text
    assert "# tried in this order" in text
    config = load_config(ws.config_path)
    triage = config.functions["triage"]
    assert triage.variants["big"].weight == 0 and triage.variants["spare"].weight == 3
    assert triage.fallbacks == ["small"]
    again = plan_drill(config, runs, "a")
    assert again.changes == [] and again.functions[0].lost_weight == 0
    shown = CliRunner().invoke(cli, ["drill", "--without", "a", "-w", str(ws.path)])
    assert shown.exit_code == 0 and "nothing to move" in shown.output
    assert "no fallback" in shown.output


def test_apply_refuses_a_changed_file_and_restores_a_bad_edit(
    workspace: tuple[Workspace, Runs],
) -> None:
    ws, runs = workspace
    plan = plan_drill(ws.load_config(), runs, "a")
    original = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(original.replace("weight = 3", "weight = 2"), encoding="utf-8")
    with pytest.raises(VeteranError, match="changed since the drill was planned"):
        apply_drill(ws.config_path, plan)
    # an edit that leaves no variant with traffic does not load: the original comes back
    only_small = original.replace("weight = 1\n", "weight = 0\n")
    ws.config_path.write_text(only_small, encoding="utf-8")
    plan = plan_drill(load_config(ws.config_path), runs, "a")
    triage = plan.functions[0]
    assert triage.best == "small"
    broken = [c for c in plan.changes if c.key == "weight" and c.variant == "big"]
    bad = DrillPlan("a", None, [FunctionDrill(
        "triage", ["big"], 0.75, {}, None, "small", False, None, None, broken)])
    with pytest.raises(VeteranError, match="restored"):
        apply_drill(ws.config_path, bad)
    assert ws.config_path.read_text(encoding="utf-8") == only_small
