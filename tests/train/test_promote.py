"""Promotion after the eval gate, and rollback.

The candidate is a "causal-lm" model, promoted the way an sft-lora, dpo or grpo model is: a
variant `loc/MODEL_ID` on the workspace's provider of kind "local", whose `paths` gets the
model folder. Loading real weights would make the gate slow and say nothing about promotion,
so the test installs a stand-in for the "local" kind (`FakeLocal`: the mock provider, scripted
by `rules`, with local's `paths` setting) through the provider entry-point table. The gate
suite is the shipped tickets data graded by label: a stand-in with the production variant's
rules and error rate passes, one that errs on half the tickets fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, Literal

import pytest
from click.testing import CliRunner
from pydantic import Field

from tests.conftest import register_model, write_workspace
from tests.evals.workspaces import RULES, TICKETS, eval_workspace
from veteran.cli.models import models
from veteran.config import load_config
from veteran.errors import VeteranError
from veteran.models import Registry
from veteran.providers import registry as providers
from veteran.providers.base import ModelRequest
from veteran.providers.mock import MockProvider, MockSettings
from veteran.store import Store
from veteran.train.promote import PromotionRefused, new_weights, promote, rollback
from veteran.workspace import Workspace


class FakeLocalSettings(MockSettings):
    kind: Literal["local"]  # type: ignore[assignment]
    paths: dict[str, str] = Field(default_factory=dict)

    def knows_model(self, name: str) -> bool:
        return name in self.paths


class FakeLocal(MockProvider):
    kind = "local"
    Settings = FakeLocalSettings


@pytest.fixture(autouse=True)
def fake_local(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = EntryPoint("local", f"{__name__}:FakeLocal", providers.GROUP)
    monkeypatch.setitem(providers._entry_points(), "local", entry)


CONFIG = f"""
# production triage on the mock
[providers.m]
kind = "mock"
error_rate = 0.05
[providers.m.rules]
{RULES}

[providers.loc]
kind = "local"  # owned models
error_rate = {{error_rate}}
[providers.loc.rules]
{RULES}

# triage routes tickets
[functions.triage]
fallbacks = ["strong"]

[functions.triage.gate]
suite = "tickets"  # must not get worse
max_drop = 0.02

[functions.triage.variants.strong]
model = "m/strong"  # production
weight = 3
params = {{{{ temperature = 0.1 }}}}

[functions.triage.variants.spare]
model = "m/spare"
weight = 1
"""


def _workspace(path: Path, error_rate: float) -> Workspace:
    ws = eval_workspace(path, suites={"tickets": TICKETS.replace(
        '["triage:strong", "triage:weak"]', '["triage:strong"]')})
    (path / "veteran.toml").write_text(CONFIG.format(error_rate=error_rate), encoding="utf-8")
    return ws


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path}/veteran.db")
    yield opened
    opened.close()


def _weights(ws: Workspace) -> dict[str, float]:
    return {n: v.weight for n, v in load_config(ws.config_path).functions["triage"]
            .variants.items()}


def test_a_model_that_passes_the_gate_is_promoted_and_rolled_back(
        tmp_path: Path, store: Store) -> None:
    ws = _workspace(tmp_path, error_rate=0.05)
    record = register_model(ws)
    seen: list[int] = []
    done = promote(ws, ws.load_config(), store, "triage", record.id, weight=0.2,
                   progress=lambda advance, total: seen.append(advance))
    assert sum(seen) == 2 * 340  # both variants on every ticket
    assert done.added and done.provider == "loc" and done.gate is not None
    assert done.gate["passed"] and done.gate["baseline"] == "triage:strong"
    text = ws.config_path.read_text(encoding="utf-8")
    assert "# triage routes tickets" in text and "# must not get worse" in text
    assert 'model = "m/strong"  # production' in text
    config = load_config(ws.config_path)  # the written file loads
    variant = config.functions["triage"].variants[record.id]
    assert variant.model == f"loc/{record.id}"
    assert config.providers["loc"].model_dump()["paths"] == {record.id: f"models/{record.id}"}
    weights = _weights(ws)
    assert weights == {"strong": 3, "spare": 1, record.id: pytest.approx(1.0)}
    assert weights[record.id] / sum(weights.values()) == pytest.approx(0.2)
    stored = Registry(ws.path).get(record.id)
    assert stored.status == "promoted" and stored.scores["tickets"]["passed"] is True
    assert stored.scores["tickets"]["comparison"]["n"] == 340
    assert "label" in stored.scores["tickets"]["candidate_scores"]

    back = rollback(ws, "triage")
    assert back.removed and back.model == record.id
    config = load_config(ws.config_path)
    assert record.id not in config.functions["triage"].variants
    assert "paths" not in config.providers["loc"].model_dump(exclude_defaults=True)
    assert _weights(ws) == {"strong": 3, "spare": 1}
    assert "# triage routes tickets" in ws.config_path.read_text(encoding="utf-8")
    assert Registry(ws.path).get(record.id).status == "rolled-back"
    with pytest.raises(VeteranError, match="no promotion of 'triage' to roll back"):
        rollback(ws, "triage")


def test_a_model_that_fails_the_gate_is_refused_and_nothing_is_written(
        tmp_path: Path, store: Store) -> None:
    ws = _workspace(tmp_path, error_rate=0.5)
    record = register_model(ws)
    before = ws.config_path.read_bytes()
    with pytest.raises(PromotionRefused, match=f"{record.id} not promoted: FAIL") as refused:
        promote(ws, ws.load_config(), store, "triage", record.id, weight=0.1)
    assert not refused.value.verdict.passed
    assert ws.config_path.read_bytes() == before
    stored = Registry(ws.path).get(record.id)
    assert stored.status == "refused"
    scores = stored.scores["tickets"]
    assert scores["passed"] is False and scores["comparison"]["high"] < -0.02
    assert scores["message"].startswith("FAIL")
    assert Registry(ws.path).active_promotion("triage") is None
    with pytest.raises(VeteranError, match="no promotion"):
        rollback(ws, "triage")


def test_promotion_needs_a_gate_unless_skipped(tmp_path: Path, store: Store) -> None:
    ws = _workspace(tmp_path, error_rate=0.5)
    text = ws.config_path.read_text(encoding="utf-8")
    start = text.index("[functions.triage.gate]")
    ws.config_path.write_text(text[:start] + text[text.index("[functions.triage.variants"):],
                              encoding="utf-8")
    record = register_model(ws)
    with pytest.raises(VeteranError, match=r"\[functions.triage.gate\].*--skip-gate"):
        promote(ws, ws.load_config(), store, "triage", record.id, weight=0.5)
    done = promote(ws, ws.load_config(), store, "triage", record.id, weight=1,
                   skip_gate=True)
    assert done.gate is None
    assert _weights(ws) == {"strong": 0, "spare": 0, record.id: 4}
    back = rollback(ws, "triage")
    assert back.weights == {"strong": 3, "spare": 1}
    assert _weights(ws) == {"strong": 3, "spare": 1}


def test_a_promoted_model_can_be_ramped_and_each_step_rolled_back(
        tmp_path: Path, store: Store) -> None:
    ws = _workspace(tmp_path, error_rate=0.05)
    record = register_model(ws)
    promote(ws, ws.load_config(), store, "triage", record.id, weight=0.2, skip_gate=True)
    ramp = promote(ws, ws.load_config(), store, "triage", record.id, weight=0.5,
                   skip_gate=True)
    assert not ramp.added and _weights(ws)[record.id] == 4
    rollback(ws, "triage")  # back to 0.2
    assert _weights(ws) == {"strong": 3, "spare": 1, record.id: 1}
    rollback(ws, "triage")  # and out
    assert _weights(ws) == {"strong": 3, "spare": 1}


def test_a_fewshot_model_is_the_main_variant_with_examples(tmp_path: Path, store: Store) -> None:
    ws = _workspace(tmp_path, error_rate=0.05)
    record = register_model(ws, kind="fewshot", recipe="fewshot")
    promote(ws, ws.load_config(), store, "triage", record.id, weight=0.5, skip_gate=True)
    variant = load_config(ws.config_path).functions["triage"].variants[record.id]
    assert variant.model == "m/strong" and variant.params == {"temperature": 0.1}
    assert variant.fewshot is not None and variant.fewshot.model == record.id
    assert variant.weight == 4


def test_promotion_refuses_what_does_not_fit(tmp_path: Path, store: Store) -> None:
    ws = _workspace(tmp_path, error_rate=0.05)
    other = register_model(ws, function="echo")
    with pytest.raises(VeteranError, match="trained for 'echo', not 'triage'"):
        promote(ws, ws.load_config(), store, "triage", other.id, weight=0.1)
    with pytest.raises(VeteranError, match="no function 'nope'"):
        promote(ws, ws.load_config(), store, "nope", other.id, weight=0.1)
    with pytest.raises(VeteranError, match="at most 1"):
        promote(ws, ws.load_config(), store, "triage", register_model(ws).id, weight=1.5,
                skip_gate=True)
    no_local = write_workspace(tmp_path / "b", """
        [providers.m]
        kind = "mock"
        [functions.triage.variants.a]
        model = "m/a"
        """)
    record = register_model(no_local)
    with pytest.raises(VeteranError, match='no provider with kind = "local"'):
        promote(no_local, no_local.load_config(), store, "triage", record.id, weight=0.1,
                skip_gate=True)


def test_new_weights_give_the_candidate_its_share() -> None:
    assert new_weights({"a": 3, "b": 1, "c": 0}, "c", 0.5) == {"a": 3, "b": 1, "c": 4}
    assert new_weights({"a": 3, "b": 1}, "c", 1) == {"a": 0, "b": 0, "c": 4}
    assert new_weights({"a": 0, "c": 2}, "c", 1) == {"a": 0, "c": 1.0}
    with pytest.raises(VeteranError, match="no other variant has traffic"):
        new_weights({"a": 0, "c": 2}, "c", 0.5)
    with pytest.raises(VeteranError):
        new_weights({"a": 1}, "c", 0)


def _cli(ws: Workspace, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(models, [*args[:1], "-w", str(ws.path), *args[1:]])
    return result.exit_code, result.output + repr(result.exception)


def test_the_models_commands(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, error_rate=0.5)
    record = register_model(ws)
    code, out = _cli(ws, "list")
    assert code == 0 and record.id in out and "sft-lora" in out
    code, out = _cli(ws, "list", "echo", "--json")
    assert code == 0 and '"models": []' in out
    code, out = _cli(ws, "show", record.id)
    assert code == 0 and "content_hash" not in out and "train_loss 0.1" in out
    code, out = _cli(ws, "show", record.id, "--json")
    assert code == 0 and '"lineage"' in out
    code, out = _cli(ws, "promote", "triage", record.id, "--weight", "0.1", "-q")
    assert code == 1 and "not promoted: FAIL" in out
    code, out = _cli(ws, "promote", "triage", record.id, "--weight", "0")
    assert code == 2 and "--weight" in out
    code, out = _cli(ws, "promote", "triage", record.id, "--weight", "0.1", "--skip-gate")
    assert code == 0 and "promoted" in out and "rollback triage" in out
    code, out = _cli(ws, "rollback", "triage")
    assert code == 0 and f"rolled back {record.id} (removed)" in out


def _gate_on_24(path: Path, error_rate: float, max_drop: float) -> Workspace:
    """The gate on the first 24 tickets, allowing `max_drop`."""
    ws = _workspace(path, error_rate)
    (path / "evals" / "tickets.toml").write_text(TICKETS.replace(
        '["triage:strong", "triage:weak"]', '["triage:strong"]').replace(
        'file = "evals/tickets.jsonl"', 'file = "evals/tickets.jsonl"\nlimit = 24'),
        encoding="utf-8")
    text = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(text.replace("max_drop = 0.02", f"max_drop = {max_drop}"),
                              encoding="utf-8")
    return ws


def test_the_gate_calls_the_model_fresh_and_states_the_baselines_cache(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _gate_on_24(tmp_path, error_rate=0.05, max_drop=0.02)
    calls: list[str] = []
    complete = FakeLocal.complete

    async def counted(self: FakeLocal, request: ModelRequest) -> dict[str, Any]:
        calls.append(request.model)
        return await complete(self, request)

    monkeypatch.setattr(FakeLocal, "complete", counted)
    record = register_model(ws)
    first = promote(ws, ws.load_config(), store, "triage", record.id, weight=0.2)
    assert first.gate is not None and first.gate["verdict"] == "pass"
    assert len(calls) == 24
    rollback(ws, "triage")
    again = promote(ws, ws.load_config(), store, "triage", record.id, weight=0.2)
    assert len(calls) == 48  # the model again, though the cache holds its answers
    assert again.gate is not None
    assert again.gate["baseline_cache"]["cached"] == 24
    assert again.gate["baseline_cache"]["oldest_s"] >= 0
    assert again.gate["candidate_cache"]["cached"] == 0
    assert ("baseline triage:strong: 24 of 24 answers from the eval call cache, the oldest"
            in again.gate["message"])


def test_an_inconclusive_gate_refuses_promotion_unless_accepted(
        tmp_path: Path, store: Store) -> None:
    """On 24 tickets the model is 0.5 worse, 95% CI [-0.71, -0.29]: an allowed drop of 0.4 is
    inside it, so the gate can show neither."""
    ws = _gate_on_24(tmp_path, error_rate=0.5, max_drop=0.4)
    record = register_model(ws)
    before = ws.config_path.read_bytes()
    with pytest.raises(PromotionRefused, match=f"{record.id} not promoted: INCONCLUSIVE"
                       ) as refused:
        promote(ws, ws.load_config(), store, "triage", record.id, weight=0.1)
    assert refused.value.verdict.verdict == "inconclusive"
    assert "roughly 105 samples would decide it" in refused.value.message
    assert "--accept-inconclusive" in refused.value.message
    assert ws.config_path.read_bytes() == before
    stored = Registry(ws.path).get(record.id)
    assert stored.status == "refused"
    assert stored.scores["tickets"]["verdict"] == "inconclusive"
    assert stored.scores["tickets"]["samples_to_decide"] == 105
    done = promote(ws, ws.load_config(), store, "triage", record.id, weight=0.1,
                   accept_inconclusive=True)
    assert done.gate is not None and done.gate["verdict"] == "inconclusive"
    assert done.gate["accepted_inconclusive"] is True
    assert record.id in _weights(ws)
    assert Registry(ws.path).get(record.id).status == "promoted"


def test_models_promote_accept_inconclusive(tmp_path: Path) -> None:
    ws = _gate_on_24(tmp_path, error_rate=0.5, max_drop=0.4)
    record = register_model(ws)
    code, out = _cli(ws, "promote", "triage", record.id, "--weight", "0.1", "-q")
    assert code == 1 and "not promoted: INCONCLUSIVE" in out
    assert "--accept-inconclusive" in out
    result = CliRunner().invoke(models, ["promote", "-w", str(ws.path), "triage", record.id,
                                         "--weight", "0.1", "--json"])
    assert result.exit_code == 1
    refused = json.loads(result.stdout)
    assert refused["promoted"] is False and refused["gate"]["verdict"] == "inconclusive"
    assert refused["gate"]["samples_to_decide"] == 105
    result = CliRunner().invoke(models, ["promote", "-w", str(ws.path), "triage", record.id,
                                         "--weight", "0.1", "-q", "--accept-inconclusive"])
    assert result.exit_code == 0, result.output
    assert "INCONCLUSIVE" in result.stdout and f"promoted {record.id}" in result.stdout
    assert "promoted on an inconclusive gate (--accept-inconclusive)" in result.stderr
