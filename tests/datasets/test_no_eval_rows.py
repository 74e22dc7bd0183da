"""Evaluation calls never become training rows by default: a suite's samples, its LLM judge's
calls and a canary's calls, made through the real call path, are left out of curation (and
counted), unless `include_evals`; `veteran data export` and `veteran train` say so."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from tests.evals.workspaces import RULES
from tests.train.test_job import FakeRecipe
from veteran.cli.data import data
from veteran.cli.train import train
from veteran.datasets import CurationError, Filters, curate
from veteran.evals.canary import run_canary
from veteran.evals.datasets import samples_from_store
from veteran.evals.runner import run_suite
from veteran.evals.suite import load_suite
from veteran.gateway import running
from veteran.store import EVAL_ROLE, EVAL_RUN, EVAL_TAGS, Store, TrajectoryFilter
from veteran.workspace import Workspace

CONFIG = f"""
[providers.m]
kind = "mock"
[providers.m.rules]
{RULES}
[functions.triage.variants.strong]
model = "m/strong"
"""
JUDGED = """
variants = ["triage:strong"]
[dataset]
file = "evals/judged.jsonl"
[graders.label]
type = "normalized"
[graders.polite]
type = "llm_judge"
model = "triage"
rubric = "Is the answer polite?"
range = [0, 10]
"""
CANARY = """
variants = ["triage:strong"]
[dataset]
file = "evals/canary.jsonl"
[graders.label]
type = "normalized"
"""
JUDGED_SAMPLES = [("please refund my invoice", "billing"), ("the sync button crashes", "technical"),
                  ("I forgot my password", "account"), ("where is my parcel", "shipping")]
# a deliberately wrong target among the test inputs (as in the report): never a training row
CANARY_SAMPLES = [("hi, i have a question about my login", "billing"),
                  ("VAT on my last payment", "billing"), ("the courier never came", "shipping")]
PRODUCTION = ["my card was charged twice", "the app shows an error on upload",
              "I cannot log in to my account"]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """Three production calls of `triage`, then an eval run with an LLM judge that is itself
    `triage`, then a canary run: every call through the one call path."""
    ws = write_workspace(tmp_path / "ws", CONFIG)
    (ws.path / "evals").mkdir()
    for name, suite, questions in (("judged", JUDGED, JUDGED_SAMPLES),
                                   ("canary", CANARY, CANARY_SAMPLES)):
        (ws.path / "evals" / f"{name}.toml").write_text(suite, encoding="utf-8")
        (ws.path / "evals" / f"{name}.jsonl").write_text("".join(
            json.dumps({"input": q, "target": t}) + "\n" for q, t in questions),
            encoding="utf-8")
    config = ws.load_config()
    store = Store.open(ws.database_url(config))

    async def calls() -> None:
        async with running(config, store, ws) as gateway:
            for text in PRODUCTION:
                await gateway.complete({"model": "triage",
                                        "messages": [{"role": "user", "content": text}]})
            await run_suite(gateway, ws, load_suite(ws.path, "judged", config), use_cache=False)
            await run_canary(gateway, ws, "canary")

    try:
        asyncio.run(calls())
    finally:
        store.close()
    return ws


def _trajectories(ws: Workspace, f: TrajectoryFilter) -> list[str]:
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        return [t.id for t in store.export(f)]
    finally:
        store.close()


def test_eval_judge_and_canary_calls_are_left_out_and_counted(ws: Workspace) -> None:
    everything = _trajectories(ws, TrajectoryFilter(function="triage"))
    evals = _trajectories(ws, TrajectoryFilter(function="triage", evals=True))
    judges = _trajectories(ws, TrajectoryFilter(function="triage", tags={EVAL_ROLE: "judge"}))
    canaries = _trajectories(ws, TrajectoryFilter(function="triage",
                                                  tags={EVAL_ROLE: "canary"}))
    # 4 samples and 4 judge calls, 3 canary samples: all of them `triage` calls
    assert len(judges) == 4 and len(canaries) == 3 and len(evals) == 11
    assert len(everything) == len(PRODUCTION) + len(evals)
    config = ws.load_config()
    store = Store.open(ws.database_url(config))
    try:
        curated = curate(store, config, "triage", split={"train": 1.0}, dedupe=None)
        kept = {e.id for e in curated.splits["train"]}
        assert kept.isdisjoint(evals) and len(kept) == len(PRODUCTION)
        assert curated.counts["evals_excluded"] == 11 and curated.counts["read"] == 3
        both = curate(store, config, "triage", Filters(include_evals=True),
                      split={"train": 1.0}, dedupe=None)
        assert {e.id for e in both.splits["train"]} >= set(evals)
        assert both.counts["evals_excluded"] == 0 and both.counts["read"] == len(everything)
        assert both.filters.to_json()["include_evals"] is True
    finally:
        store.close()


def test_nothing_but_evaluation_calls_says_so(ws: Workspace) -> None:
    config = ws.load_config()
    store = Store.open(ws.database_url(config))
    try:
        with pytest.raises(CurationError) as info:
            curate(store, config, "triage", Filters(tags={EVAL_RUN: "no such run"}))
        assert "0 trajectories" in str(info.value) or "tags leave 0" in str(info.value)
        run = _trajectories(ws, TrajectoryFilter(function="triage",
                                                 tags={EVAL_ROLE: "canary"}))[0]
        tag = store.trajectory(run).tags[EVAL_RUN]
        with pytest.raises(CurationError) as info:
            curate(store, config, "triage", Filters(tags={EVAL_RUN: tag}))
        assert str(info.value).endswith(
            "tags leave 3; 0 after leaving out 3 evaluation calls (--include-evals keeps them)")
    finally:
        store.close()


def test_data_export_reports_the_exclusion_and_include_evals_keeps_them(
        ws: Workspace, tmp_path: Path) -> None:
    def export(*args: str) -> str:
        result = CliRunner().invoke(data, ["export", "triage", "-w", str(ws.path), "--format",
                                           "openai-sft", "--dedupe", "none", "--split",
                                           "train=1", *args])
        assert result.exit_code == 0, result.output
        return result.output

    out = export("--out", str(tmp_path / "a"))
    assert "excluded 11 evaluation calls (--include-evals to keep them)" in out
    assert len((tmp_path / "a" / "train.jsonl").read_text().splitlines()) == 3
    out = export("--out", str(tmp_path / "b"), "--include-evals")
    assert "evaluation calls" not in out
    assert len((tmp_path / "b" / "train.jsonl").read_text().splitlines()) == 14


def test_train_leaves_evaluation_calls_out_unless_asked(ws: Workspace,
                                                         fake_recipe: None) -> None:
    def trained_on(*args: str) -> tuple[set[str], str]:
        result = CliRunner().invoke(train, ["triage", "-w", str(ws.path), "--recipe", "fake",
                                            "--dedupe", "none", "--split", "train=1", "-q",
                                            "--until", str(time.time() + 60), *args])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return {e.id for e in FakeRecipe.jobs[-1].train}, result.output

    evals = set(_trajectories(ws, TrajectoryFilter(function="triage", evals=True)))
    rows, out = trained_on()
    assert len(rows) == 3 and rows.isdisjoint(evals)
    assert "excluded 11 evaluation calls (--include-evals to keep them)" in out
    rows, out = trained_on("--include-evals")
    assert rows >= evals and "evaluation calls" not in out


def test_every_evaluation_tag_marks_an_evaluation_call() -> None:
    assert set(EVAL_TAGS) == {"eval_run", "eval_suite", "eval_sample", "eval_role"}


def test_a_suite_from_trajectories_leaves_out_evaluation_calls(ws: Workspace) -> None:
    """Else every run of a suite built from a function's trajectories grows the next one."""
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        samples, left_out = samples_from_store(store, "triage")
        assert [s.messages[-1]["content"] for s in samples] == PRODUCTION
        assert left_out.evals == 11 and left_out.lines()[0].startswith(
            "left out 11 evaluation calls")
        assert len(samples_from_store(store, "triage", include_evals=True)[0]) == 14
    finally:
        store.close()
