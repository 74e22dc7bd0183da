"""The in-process environment: rewards are the graders' scores; reset/step, rollouts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.envs.helpers import SPECS, graders, tasks, workspace
from tests.evals.scripted import Scripted
from veteran.envs import EnvError, Environment, output_of
from veteran.errors import ConfigError
from veteran.evals.types import Output, Sample
from veteran.store import Store, new_id
from veteran.types import TrajectoryRecord


def make_env(**kwargs: Any) -> Environment:
    return Environment("triage", tasks(), graders(), specs=SPECS, **kwargs)


@pytest.mark.parametrize("answer", ["billing", " Billing.", '{"queue": "shipping"}', "no"])
def test_reward_is_each_graders_score_on_the_same_output(answer: str) -> None:
    env = make_env()
    by_kind = graders()

    async def check() -> None:
        for task in env.tasks:
            reward = await env.score(task, answer)
            scores = {}
            for name, grader in by_kind.items():
                scores[name] = (await grader.grade(task, Output(text=answer))).value
                assert reward.scores[name].value == scores[name], name
            assert reward.value == pytest.approx(sum(scores.values()) / len(scores))

    asyncio.run(check())


def test_weights_pick_or_weigh_graders_and_skips_leave_the_mean() -> None:
    only = make_env(weights={"normalized": 1})
    reward = asyncio.run(only.score("a", "BILLING!"))
    assert reward.value == 1.0 and reward.scores["exact"].value == 0.0  # still scored
    weighed = make_env(weights={"exact": 1, "normalized": 3})
    assert asyncio.run(weighed.score("a", "BILLING!")).value == pytest.approx(0.75)

    bare = [Sample("n", [{"role": "user", "content": "hi"}])]
    no_reference = Environment("x", bare, graders({"exact": {"type": "exact"},
                                                   "const": {"type": "exact", "value": "hi"}}))
    reward = asyncio.run(no_reference.score("n", "hi"))
    assert reward.value == 1.0 and reward.skipped == {"exact": "no reference to compare with"}
    assert asyncio.run(Environment("y", no_reference.tasks, graders(
        {"exact": {"type": "exact"}})).score("n", "hi")).value is None

    with pytest.raises(EnvError, match="unknown graders"):
        make_env(weights={"nope": 1})
    with pytest.raises(EnvError, match="not all 0"):
        make_env(weights={"exact": 0})


def test_reset_and_step_a_single_turn_episode() -> None:
    env = make_env(system="Route the ticket.")

    async def play() -> None:
        with pytest.raises(EnvError, match="before reset"):
            await env.step("billing")
        first = await env.reset()
        assert first.task_id == "a"
        assert first.messages == [{"role": "system", "content": "Route the ticket."},
                                  {"role": "user", "content": "Refund my card"}]
        result = await env.step({"role": "assistant", "content": "billing"})
        assert result.done and result.reward == pytest.approx(0.75)  # not JSON: field fails
        assert {n: s.value for n, s in result.scores.items()} == {
            "exact": 1.0, "normalized": 1.0, "field": 0.0, "short": 1.0}
        assert result.info["task_id"] == "a"
        with pytest.raises(EnvError, match="before reset"):
            await env.step("again")  # the first answer ended the episode
        assert (await env.reset()).task_id == "b"  # the next task in order
        assert (await env.reset("c")).task_id == "c"
        assert (await env.reset(-1)).task_id == "c"
        with pytest.raises(EnvError, match="no task"):
            await env.reset("zz")

    asyncio.run(play())


def test_rollout_and_evaluate_with_a_scripted_policy() -> None:
    env = make_env(weights={"normalized": 1})
    answers = {"Refund my card": "billing", "App crashes": "technical"}
    seen: list[list[dict[str, Any]]] = []

    async def policy(messages: list[dict[str, Any]], tools: Any) -> str:
        seen.append(messages)
        return answers.get(messages[-1]["content"], "account")

    rollout = asyncio.run(env.rollout(policy, "b"))
    assert rollout.reward.value == 1.0
    assert rollout.messages[-1] == {"role": "assistant", "content": "technical"}
    result = asyncio.run(env.evaluate(policy, concurrency=2))
    assert result.rewards == {"a": 1.0, "b": 1.0, "c": 0.0}
    assert result.mean == pytest.approx(2 / 3)

    async def broken(messages: list[dict[str, Any]], tools: Any) -> str:
        raise RuntimeError("model down")

    failed = asyncio.run(env.rollout(broken, "a"))
    assert failed.output.error == "RuntimeError: model down" and failed.reward.value == 0.0


def test_tool_calls_are_graded_from_an_assistant_message() -> None:
    call = {"id": "c1", "type": "function",
            "function": {"name": "refund", "arguments": '{"order": 7}'}}
    task = Sample("t", [{"role": "user", "content": "refund order 7"}],
                                reference=[{"name": "refund", "arguments": {"order": 7}}],
                                tools=[{"type": "function", "function": {"name": "refund"}}])
    env = Environment("tools", [task], graders({"call": {"type": "tool_call"}}))
    observation = asyncio.run(env.reset())
    assert observation.tools == task.tools
    result = asyncio.run(env.step({"role": "assistant", "content": None, "tool_calls": [call]}))
    assert result.reward == 1.0
    completion = {"choices": [{"message": {"role": "assistant", "tool_calls": [call]}}]}
    assert output_of(completion).tool_calls == [call]
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "x"}]}]
    assert output_of(parts).text == "x"
    assert output_of([{"role": "user", "content": "?"}]).error is not None


def test_rows_for_trl() -> None:
    env = make_env(system=["You route tickets.", "One word."])
    rows = env.to_rows()
    assert rows[0] == {"prompt": [{"role": "system", "content": "You route tickets."},
                                  {"role": "system", "content": "One word."},
                                  {"role": "user", "content": "Refund my card"}],
                       "task_id": "a", "reference": "billing"}
    assert env.sample_for(rows[2]["prompt"], rows[2]["reference"]) is env.tasks[2]
    other = env.sample_for(rows[0]["prompt"], "technical")  # same prompt, other reference
    assert other.messages == tasks()[0].messages and other.reference == "technical"


def test_from_suite_builds_tasks_graders_and_system(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    env = Environment.from_suite(ws.path, ws.load_config(), "tickets", function="triage")
    assert env.name == "triage-tickets" and len(env) == 6
    assert env.system == ["You route tickets.",
                          "Answer with one word: billing, technical, account or shipping."]
    assert list(env.graders) == ["label", "exact"]
    assert env.specs == {"label": {"type": "normalized"}, "exact": {"type": "exact"}}
    reward = asyncio.run(env.score(env.tasks[0], "Account."))
    assert reward.value == 0.5  # normalized passes, exact fails


def test_from_suite_refuses_bad_input(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    config = ws.load_config()
    with pytest.raises(ConfigError, match="no such suite"):
        Environment.from_suite(ws.path, config, "missing")
    with pytest.raises(EnvError, match="unknown function 'nope'"):
        Environment.from_suite(ws.path, config, "tickets", function="nope")
    with pytest.raises(EnvError, match=r"polite.*call a model"):
        Environment.from_suite(ws.path, config, "judged")
    judge = Scripted('{"reasoning": "fine", "score": 1}')
    env = Environment.from_suite(ws.path, config, "judged", complete=judge)
    reward = asyncio.run(env.score(env.tasks[0], "account"))
    assert reward.scores["polite"].value == 1.0 and reward.value == 1.0
    assert judge.bodies[0]["model"] == "judge/j"
    with pytest.raises(EnvError, match="need a function"):
        Environment.from_suite(ws.path, config, "tickets", source="store")


def test_tasks_from_the_store_need_a_reference(tmp_path: Path, store: Store) -> None:
    ws = workspace(tmp_path / "ws")
    config = ws.load_config()
    with pytest.raises(EnvError, match="no trajectories with a reference"):
        Environment.from_suite(ws.path, config, "tickets", source="store", function="triage",
                               store=store)
    records = [TrajectoryRecord(
        id=new_id(), episode_id=new_id(), created_at=1_795_000_000.0 + i,
        function="triage", variant="strong",
        request={"model": "triage", "messages": [{"role": "user", "content": f"q{i}"}]},
        response={"choices": [{"message": {"role": "assistant", "content": "billing"}}]},
    ) for i in range(3)]
    store.insert(records)
    store.add_feedback(trajectory_id=records[1].id, metric="demonstration",
                       value={"role": "assistant", "content": "shipping"})
    env = Environment.from_suite(ws.path, config, "tickets", source="store",
                                 function="triage", store=store)
    assert [t.id for t in env.tasks] == [records[1].id]
    assert env.tasks[0].reference == "shipping"
    assert env.system[0] == "You route tickets."
    assert asyncio.run(env.score(env.tasks[0], "shipping")).value == 1.0
    captured = Environment.from_suite(ws.path, config, "captured", store=store)
    assert len(captured) == 3 and captured.name == "triage-captured"


def test_tasks_from_the_store_leave_evaluation_calls_out(tmp_path: Path, store: Store) -> None:
    """An eval sample with a demonstration is a test input, not a training task (unless asked)."""
    ws = workspace(tmp_path / "ws")
    config = ws.load_config()
    records = [TrajectoryRecord(
        id=new_id(), episode_id=new_id(), created_at=1_795_000_000.0 + i,
        function="triage", variant="strong", tags=tags,
        request={"model": "triage", "messages": [{"role": "user", "content": f"q{i}"}]},
        response={"choices": [{"message": {"role": "assistant", "content": "billing"}}]},
    ) for i, tags in enumerate([{}, {"eval_run": "r1", "eval_sample": "s1"}])]
    store.insert(records)
    for r in records:
        store.add_feedback(trajectory_id=r.id, metric="demonstration", value="shipping")
    env = Environment.from_suite(ws.path, config, "tickets", source="store",
                                 function="triage", store=store)
    assert [t.id for t in env.tasks] == [records[0].id]
    both = Environment.from_suite(ws.path, config, "tickets", source="store",
                                  function="triage", store=store, include_evals=True)
    assert [t.id for t in both.tasks] == [r.id for r in records]
