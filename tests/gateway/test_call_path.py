"""One door for every model call: an eval run, a pairwise judge, a canary under `serve` and a
semantic-cache hit all reach the model through `Gateway.call`, and each call leaves exactly one
trajectory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import serve, write_workspace
from tests.evals.test_pairwise import CONFIG as PAIR_CONFIG
from tests.evals.test_pairwise import SUITE as PAIR_SUITE
from tests.evals.workspaces import eval_workspace
from tests.gateway.call_spy import spy_on_calls
from tests.gateway.test_recall import workspace_for
from veteran.cli import cli
from veteran.errors import HTTPError
from veteran.evals.runner import run_suite
from veteran.evals.suite import load_suite
from veteran.gateway import Answer, CachedAnswer, Call, running
from veteran.store import Store, TrajectoryFilter
from veteran.testing.fake_upstream import FakeUpstream
from veteran.workspace import Workspace

TRIAGE = """
variants = ["triage:strong", "triage:weak"]
[dataset]
file = "evals/tickets.jsonl"
limit = 12
[graders.label]
type = "normalized"
"""


def _stored(ws: Workspace, ids: list[str]) -> list[str]:
    """Which of `ids` the store holds, each once."""
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        found = [t.id for t in store.export(TrajectoryFilter()) if t.id in set(ids)]
    finally:
        store.close()
    assert len(found) == len(set(found))
    return found


def test_an_eval_run_calls_through_the_one_path(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ws = eval_workspace(tmp_path, suites={"triage": TRIAGE})
    config = ws.load_config()
    store = Store.open(ws.database_url(config))

    async def run() -> None:
        async with running(config, store, ws) as gateway:
            await run_suite(gateway, ws, load_suite(ws.path, "triage", config), use_cache=False)

    try:
        with spy_on_calls(monkeypatch) as spy:
            asyncio.run(run())
    finally:
        store.close()
    assert len(spy.calls) == 12 * 2  # every (sample, variant)
    assert spy.model_calls >= len(spy.calls) and spy.outside == 0
    assert sorted(_stored(ws, spy.trajectory_ids)) == sorted(spy.trajectory_ids)


def test_a_pairwise_judge_calls_through_the_one_path(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = write_workspace(tmp_path / "ws", PAIR_CONFIG)
    (ws.path / "evals").mkdir()
    (ws.path / "evals" / "pair.toml").write_text(PAIR_SUITE.replace(
        '[graders.exact]\ntype = "exact"\n', ""))
    (ws.path / "evals" / "data.jsonl").write_text("".join(
        json.dumps({"id": f"s{i}", "input": f"q {i}", "target": "alpha answer"}) + "\n"
        for i in range(5)))
    runner = CliRunner()
    with spy_on_calls(monkeypatch) as spy:
        ran = runner.invoke(cli, ["eval", "run", "pair", "-w", str(ws.path)],
                            catch_exceptions=False)
        assert ran.exit_code == 0, ran.output
        assert len(spy.calls) == 10 + 10  # 5 samples x 2 variants, each graded by the judge
        judged = runner.invoke(cli, ["eval", "pairwise", "pair", "--grader", "prefer",
                                     "--baseline", "f:omega", "--candidate", "f:alpha",
                                     "-w", str(ws.path)], catch_exceptions=False)
        assert judged.exit_code == 0, judged.output
    judge_calls = [c for c in spy.calls if c.record.tags.get("eval_role") == "judge"]
    assert len(judge_calls) == 10 + 5 and spy.outside == 0  # the run's, then the verdicts
    assert sorted(_stored(ws, spy.trajectory_ids)) == sorted(spy.trajectory_ids)


def test_a_semantic_cache_hit_takes_the_one_path(tmp_path: Path, upstream: FakeUpstream,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace_for(tmp_path, upstream)
    body = {"model": "faq", "messages": [{"role": "user", "content": "How long is shipping?"}]}
    with spy_on_calls(monkeypatch) as spy, serve(ws) as server:
        first = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30)
        assert first.headers["x-veteran-cache"] == "miss"
        second = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30)
        for _ in range(50):  # the first answer is kept in the cache off the event loop
            if second.headers.get("x-veteran-cache") == "hit":
                break
            asyncio.run(asyncio.sleep(0.1))
            second = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30)
        assert second.headers["x-veteran-cache"] == "hit"
        assert second.json()["choices"] == first.json()["choices"]
    hits = [c for c in spy.calls if c.record.cached]
    assert len(hits) == 1 and hits[0].record.id == second.headers["x-veteran-trajectory-id"]
    assert spy.model_calls == len(spy.calls) - 1 and spy.outside == 0  # the hit called no model
    assert sorted(_stored(ws, spy.trajectory_ids)) == sorted(spy.trajectory_ids)


MOCK = """
[providers.m]
kind = "mock"
[functions.f.variants.a]
model = "m/x"
"""


class _Redact:
    """A hook as a policy would be: rewrites what the provider sees, refuses one word."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.sealed: list[str] = []  # every trajectory, whatever its end, is sealed once

    async def before(self, call: Call) -> None:
        text = call.body["messages"][-1]["content"]
        if "forbidden" in text:
            raise HTTPError("refused by a rule")
        call.body = {**call.body, "messages": [{"role": "user",
                                                "content": text.replace("secret", "[X]")}]}

    async def after(self, call: Call, response: dict[str, Any]) -> None:
        self.seen.append(response["choices"][0]["message"]["content"])

    def seal(self, call: Call) -> None:
        self.sealed.append(call.record.id)


class _Cache:
    def __init__(self) -> None:
        self.kept: dict[str, Answer] = {}

    def get(self, call: Call) -> CachedAnswer | None:
        found = self.kept.get(call.body["messages"][-1]["content"])
        if found is None:
            return None
        return CachedAnswer(found.response, found.cost, found.latency_ms, {"from": "test"})

    def put(self, call: Call, answer: Answer) -> None:
        self.kept[call.body["messages"][-1]["content"]] = answer


def _ask(text: str) -> dict[str, Any]:
    return {"model": "f", "messages": [{"role": "user", "content": text}]}


def test_hooks_and_a_callers_cache_stand_in_the_path(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", MOCK)
    config = ws.load_config()
    store = Store.open(ws.database_url(config))
    hook, cache = _Redact(), _Cache()

    async def run() -> list[str]:
        async with running(config, store, ws) as gateway:
            gateway.hooks.append(hook)
            answer = await gateway.call(gateway.prepare(_ask("my secret")), cache=cache)
            assert answer.response["choices"][0]["message"]["content"] == "echo: my [X]"
            assert not answer.cached
            again = gateway.prepare(_ask("my secret"))
            assert (await gateway.call(again, cache=cache)).cached
            refused = gateway.prepare(_ask("forbidden"))
            with pytest.raises(HTTPError, match="refused by a rule"):
                await gateway.call(refused, cache=cache)
            provider = gateway.providers["m"]
            assert [r.body["messages"][-1]["content"] for r in provider.requests  # type: ignore[attr-defined]
                    ] == ["my [X]"]  # the hit and the refusal called no model
            return [again.record.id, refused.record.id]

    try:
        hit_id, refused_id = asyncio.run(run())
        assert hook.seen == ["echo: my [X]"]
        assert len(hook.sealed) == 3 and hit_id in hook.sealed and refused_id in hook.sealed
        stored = {t.id: t for t in store.export(TrajectoryFilter())}
    finally:
        store.close()
    assert len(stored) == 3  # one per call: answered, answered from the cache, refused
    assert stored[hit_id].cached and stored[hit_id].cost == 0.0
    assert stored[refused_id].status == "error" and stored[refused_id].error == "refused by a rule"
