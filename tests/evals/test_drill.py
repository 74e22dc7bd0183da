"""`veteran drill --without PROVIDER`: the plan from stored eval runs, and `--apply`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from veteran import tomledit
from veteran.cli import cli
from veteran.config import load_config
from veteran.errors import VeteranError
from veteran.evals import drill
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


def test_a_lost_variant_without_scores_leaves_the_change_unknown_and_says_why(
    workspace: tuple[Workspace, Runs],
) -> None:
    ws, runs = workspace
    _run(runs, {"triage:small": [1.0] * 18 + [0.0] * 2, "triage:spare": [1.0] * 15 + [0.0] * 5})
    triage = plan_drill(ws.load_config(), runs, "a").functions[0]  # big: never evaluated
    assert triage.best == "small" and triage.best_scored and triage.change is None
    # Once moved, all the traffic is on `small`, which is scored: the quality after is known.
    assert triage.after == pytest.approx(0.9)
    assert triage.unscored == ["big"] and set(triage.missing) == {"change"}
    assert triage.missing["change"].startswith(
        "no eval scores for the lost variant big: no finished eval run graded triage:big")
    shown = CliRunner().invoke(cli, ["drill", "--without", "a", "-w", str(ws.path)])
    assert shown.exit_code == 0, shown.output
    assert "expected quality now: 0.900 (scored variants only: without big)" in shown.output
    assert "expected quality after: 0.900" in shown.output
    assert ("change on the moved traffic: unknown (no eval scores for the lost variant big: "
            "no finished eval run graded triage:big; score with `veteran eval run SUITE "
            "--variant triage:big`)") in shown.output
    # Losing `b` moves its traffic to `big`: then the quality after is what is unknown.
    triage = plan_drill(ws.load_config(), runs, "b", grader="label").functions[0]
    assert triage.best == "big" and triage.after is None
    assert triage.missing["after"].startswith(
        "no eval scores for big, with traffic after the move: no finished eval run graded "
        "triage:big by grader 'label'")
    assert "big, which takes the moved traffic" in triage.missing["change"]
    out = orjson.loads(CliRunner().invoke(cli, ["drill", "--without", "b", "--json", "-w",
                                                str(ws.path)]).stdout)
    assert out["functions"][0]["missing"]["after"].startswith("no eval scores for big")


def test_apply_keeps_comments_and_a_second_drill_has_nothing_to_move(
    workspace: tuple[Workspace, Runs],
) -> None:
    ws, runs = workspace
    _run(runs, {"triage:big": [1.0] * 20, "triage:small": [0.0] * 20, "triage:spare": [1.0] * 20})
    result = CliRunner().invoke(cli, ["drill", "--without", "a", "--apply", "--json",
                                      "-w", str(ws.path)])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)  # the reload notice goes to stderr
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


def test_apply_refuses_a_changed_file_and_a_bad_edit(
    workspace: tuple[Workspace, Runs],
) -> None:
    ws, runs = workspace
    plan = plan_drill(ws.load_config(), runs, "a")
    original = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(original.replace("weight = 3", "weight = 2"), encoding="utf-8")
    with pytest.raises(VeteranError, match="changed since the drill was planned"):
        apply_drill(ws.config_path, plan)
    # an edit that leaves no variant with traffic does not load: the file is not touched
    only_small = original.replace("weight = 1\n", "weight = 0\n")
    ws.config_path.write_text(only_small, encoding="utf-8")
    plan = plan_drill(load_config(ws.config_path), runs, "a")
    triage = plan.functions[0]
    assert triage.best == "small"
    broken = [c for c in plan.changes if c.key == "weight" and c.variant == "big"]
    bad = DrillPlan("a", None, [FunctionDrill(
        "triage", ["big"], 0.75, {}, None, "small", False, None, None, broken)])
    with pytest.raises(VeteranError, match="drill not applied: .* not changed: the edit would "
                                           "not load"):
        apply_drill(ws.config_path, bad)
    assert ws.config_path.read_text(encoding="utf-8") == only_small


def _only_big(ws: Workspace, runs: Runs) -> tuple[bytes, DrillPlan]:
    """A workspace where only `big` has traffic, and a plan whose edit would not load: it takes
    `big`'s traffic away and gives it to nobody."""
    text = ws.config_path.read_text(encoding="utf-8").replace("weight = 1\n", "weight = 0\n")
    ws.config_path.write_text(text, encoding="utf-8")
    plan = plan_drill(load_config(ws.config_path), runs, "a")
    bad = [c for c in plan.changes if c.key == "weight" and c.variant == "big"]
    assert [c.new for c in bad] == [0]
    return ws.config_path.read_bytes(), DrillPlan("a", None, [FunctionDrill(
        "triage", ["big"], 1.0, {}, None, "small", False, None, None, bad)])


def test_a_bad_edit_is_validated_before_the_file_changes_and_leaves_it_byte_identical(
    workspace: tuple[Workspace, Runs], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, runs = workspace
    original, bad = _only_big(ws, runs)
    ws.config_path.chmod(0o640)
    live_while_validating: list[bytes] = []
    validated: list[Path] = []

    def spy_load(path: Path) -> Any:
        live_while_validating.append(ws.config_path.read_bytes())
        validated.append(path)
        return load_config(path)

    replaced: list[tuple[str, str]] = []
    monkeypatch.setattr(tomledit, "load_config", spy_load)
    monkeypatch.setattr(tomledit.os, "replace", lambda a, b: replaced.append((a, b)))
    with pytest.raises(VeteranError, match="drill not applied"):
        apply_drill(ws.config_path, bad)
    assert ws.config_path.read_bytes() == original
    assert oct(ws.config_path.stat().st_mode & 0o777) == oct(0o640)
    assert live_while_validating == [original]  # validated while the live file was untouched
    assert validated[0] != ws.config_path and validated[0].parent == ws.config_path.parent
    assert replaced == []  # never renamed over
    assert sorted(p.name for p in ws.path.iterdir() if "tmp" in p.name) == []


def _plan_without_a(ws: Workspace, runs: Runs) -> tuple[DrillPlan, bytes]:
    """A drill plan for losing provider `a`, and the config's bytes before it is applied."""
    _run(runs, {"triage:big": [1.0] * 20, "triage:small": [0.0] * 20, "triage:spare": [1.0] * 20})
    return plan_drill(ws.load_config(), runs, "a"), ws.config_path.read_bytes()


def test_an_edit_that_does_not_take_is_refused_before_the_file_changes(
    workspace: tuple[Workspace, Runs], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, runs = workspace
    plan, original = _plan_without_a(ws, runs)
    # the TOML written says something else than the plan: it loads, but must not be written
    monkeypatch.setattr(drill, "_toml_number", lambda value: 2)
    with pytest.raises(VeteranError, match=r"drill not applied: .* not changed: the edit did "
                                           r"not take: functions\.triage\.variants\.\w+\.weight"):
        apply_drill(ws.config_path, plan)
    assert ws.config_path.read_bytes() == original


def test_apply_renames_a_validated_file_over_the_config(
    workspace: tuple[Workspace, Runs], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, runs = workspace
    plan, original = _plan_without_a(ws, runs)
    ws.config_path.chmod(0o640)
    real_replace = os.replace
    seen: list[tuple[bytes, bytes, int]] = []

    def spy_replace(src: str, dst: str) -> None:
        assert Path(src).parent == Path(dst).parent == ws.config_path.parent
        # the new text is whole and loads before it becomes the config
        load_config(Path(src))
        seen.append((Path(src).read_bytes(), Path(dst).read_bytes(), Path(src).stat().st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(tomledit.os, "replace", spy_replace)
    assert len(apply_drill(ws.config_path, plan)) == 3
    [(new, live_before, mode)] = seen
    assert live_before == original and new == ws.config_path.read_bytes() != original
    assert mode & 0o777 == 0o640 == ws.config_path.stat().st_mode & 0o777


def test_a_crash_before_the_rename_leaves_the_old_file(
    workspace: tuple[Workspace, Runs], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, runs = workspace
    plan, original = _plan_without_a(ws, runs)

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(tomledit.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        apply_drill(ws.config_path, plan)
    assert ws.config_path.read_bytes() == original
    assert [p.name for p in ws.path.iterdir() if "tmp" in p.name] == []
