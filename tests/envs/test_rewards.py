"""TRL reward functions: called the way GRPOTrainer calls them, they give the graders' scores."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from tests.envs.helpers import SPECS, graders, tasks, workspace
from veteran.envs import Environment, reward_funcs, reward_funcs_for_suite, reward_weights
from veteran.store import Store, TrajectoryFilter


def trl_call(func: Any, rows: list[dict[str, Any]], answers: list[str], *,
             conversational: bool = True, **extra: Any) -> list[float]:
    """As `GRPOTrainer._calculate_rewards`: prompts, completions, completion ids, and every
    other dataset column as a keyword list, plus the trainer's own keywords."""
    prompts = [r["prompt"] for r in rows]
    completions: list[Any] = ([[{"role": "assistant", "content": a}] for a in answers]
                              if conversational else answers)
    columns = {key: [r[key] for r in rows] for key in rows[0] if key != "prompt"}
    result: list[float] = func(prompts=prompts, completions=completions,
                               completion_ids=[[1, 2]] * len(rows), trainer_state=None,
                               log_extra=lambda *a: None, log_metric=lambda *a: None,
                               **columns, **extra)
    return result


def test_one_reward_function_per_grader_equal_to_the_grader() -> None:
    env = Environment("triage", tasks(), graders(), system="Route.", specs=SPECS)
    funcs = reward_funcs(env)
    assert [f.__name__ for f in funcs] == list(SPECS)  # TRL logs rewards/<grader>
    rows = env.to_rows() * 2  # TRL repeats each row per generation
    answers = ["billing", "Technical", '{"queue": "shipping"}', "no", "technical", "x"]
    for func in funcs:
        got = trl_call(func, rows, answers)
        want = [asyncio.run(graders()[func.__name__].grade(env.task(r["task_id"]),
                                                           _output(a))).value
                for r, a in zip(rows, answers, strict=True)]
        assert got == want, func.__name__


def test_combined_reward_is_the_environments_and_weights_make_the_same_sum() -> None:
    env = Environment("triage", tasks(), graders(), weights={"exact": 1, "normalized": 3})
    [combined] = reward_funcs(env, combined=True)
    assert combined.__name__ == "reward"
    rows, answers = env.to_rows(), ["BILLING", "technical", "shipping"]
    got = trl_call(combined, rows, answers)
    want = [asyncio.run(env.score(r["task_id"], a)).value
            for r, a in zip(rows, answers, strict=True)]
    assert got == want == [0.75, 1.0, 0.0]
    weights = reward_weights(env)
    assert weights == [0.25, 0.75, 0.0, 0.0]
    per_grader = [trl_call(f, rows, answers) for f in reward_funcs(env)]
    totals = [sum(w * v[i] for w, v in zip(weights, per_grader, strict=True))
              for i in range(len(rows))]
    assert totals == pytest.approx(got)


def test_rows_without_task_ids_use_prompt_and_reference() -> None:
    env = Environment("triage", tasks(), graders({"exact": {"type": "exact"}}),
                      system="Route.")
    rows = [{"prompt": r["prompt"], "reference": r["reference"]} for r in env.to_rows()]
    rows.append({"prompt": [{"role": "system", "content": "Route."},
                            {"role": "user", "content": "new ticket"}], "reference": "account"})
    [exact] = reward_funcs(env)
    assert trl_call(exact, rows, ["billing", "no", '{"queue": "shipping"}', "account"]) == [
        1.0, 0.0, 1.0, 1.0]
    plain = [{"prompt": "Which queue: refund?", "reference": "billing"},
             {"prompt": "Which queue: none?", "reference": None}]  # no reference: skipped
    got = trl_call(exact, plain, ["billing", "billing"], conversational=False)
    assert got[0] == 1.0 and math.isnan(got[1])


def test_reward_functions_work_inside_a_running_event_loop() -> None:
    env = Environment("triage", tasks(), graders({"exact": {"type": "exact"}}))
    [exact] = reward_funcs(env)

    async def trainer() -> list[float]:  # a sync call from inside a loop, as some trainers do
        return trl_call(exact, env.to_rows(), ["billing", "technical", "x"])

    assert asyncio.run(trainer()) == [1.0, 1.0, 0.0]


def test_reward_funcs_for_suite(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    config = ws.load_config()
    funcs = reward_funcs_for_suite(ws.path, config, "tickets", function="triage")
    assert [f.__name__ for f in funcs] == ["label", "exact"]
    env = Environment.from_suite(ws.path, config, "tickets", function="triage")
    rows = [{"prompt": r["prompt"], "reference": r["reference"]} for r in env.to_rows()[:2]]
    answers = [f"{rows[0]['reference']}.", str(rows[1]["reference"])]
    assert [trl_call(f, rows, answers) for f in funcs] == [[1.0, 1.0], [0.0, 1.0]]


def test_a_judged_suite_calls_its_judge_through_the_gateway(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    config = ws.load_config()
    [reward] = reward_funcs_for_suite(ws.path, config, "judged", combined=True)
    env = Environment.from_suite(ws.path, config, "judged", complete=_unused)
    rows = env.to_rows()[:2]
    assert trl_call(reward, rows, [str(rows[0]["reference"]), "wrong"]) == [1.0, 0.5]
    store = Store.open(ws.database_url(config))
    try:
        judged = [t for t in store.export(TrajectoryFilter())
                  if t.tags.get("eval_role") == "judge"]
    finally:
        store.close()
    assert len(judged) == 2 and judged[0].tags["eval_run"] == "env-judged"


async def _unused(body: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("not called")


def _output(text: str) -> Any:
    from veteran.evals.types import Output

    return Output(text=text)
