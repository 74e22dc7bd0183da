"""Reward functions for TRL's `GRPOTrainer`, from an environment's graders.

TRL calls a reward function synchronously with the batch's `prompts` and `completions`
(strings, or lists of message dicts for conversational data) and every other dataset column
as a keyword list. Graders are async, and the trainer may itself run inside an event loop, so
they run on a private loop in a thread of its own. A task is found by the `task_id` column,
else by its prompt, else a sample is made of the prompt and the `reference` column. A grader
with nothing to say (`Skip`) or that fails gives NaN, which TRL leaves out of its sums.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from veteran.config import Config
from veteran.datasets.types import Example
from veteran.envs.environment import MODEL_GRADERS, EnvError, Environment, Reward, output_of
from veteran.evals.types import Complete, Sample

T = TypeVar("T")
# TRL's reward-function shape: (prompts, completions, **dataset columns) -> one float each.
# Defined here, where environments make them; `veteran.train` consumes them.
RewardFunc = Callable[..., list[float]]
COMBINED = "reward"
CONCURRENCY = 16  # completions graded at once (judge calls in flight)


class _Loop:
    """One event loop on a daemon thread, shared by every reward function in the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="veteran-rewards",
                                 daemon=True).start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, cls.get()).result()


def reward_funcs(env: Environment, *, combined: bool = False) -> list[RewardFunc]:
    """One reward function per grader, named after it (TRL logs `rewards/<grader>`), or with
    `combined` one function, `reward`, giving the environment's weighted mean. Pass
    `reward_weights(env)` as `GRPOConfig.reward_weights` to make TRL's total the same mean."""
    if combined:
        return [_reward_func(env, None, COMBINED)]
    return [_reward_func(env, name, name) for name in env.graders]


def reward_weights(env: Environment) -> list[float]:
    """The per-grader functions' weights, normalised to sum to 1."""
    total = sum(env.weights.values())
    return [env.weights[name] / total for name in env.graders]


def _reward_func(env: Environment, grader: str | None, name: str,
                 judge: _JudgeGateway | None = None) -> RewardFunc:
    only = None if grader is None else {grader}

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
               ) -> list[float]:
        samples = [_sample(env, i, prompt, columns) for i, prompt in enumerate(prompts)]

        async def score_all() -> list[float]:
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(sample: Sample, completion: Any) -> Reward:
                async with gate:
                    return await env.score(sample, output_of(completion), graders=only)

            async with judge.batch() if judge is not None else contextlib.nullcontext():
                rewards = await asyncio.gather(*(
                    one(s, c) for s, c in zip(samples, completions, strict=True)))
            if grader is None:
                return [math.nan if r.value is None else r.value for r in rewards]
            return [r.scores[grader].value if grader in r.scores else math.nan
                    for r in rewards]

        return _Loop.run(score_all())

    reward.__name__ = reward.__qualname__ = name
    reward.__doc__ = (f"veteran environment {env.name!r}: " +
                      ("the weighted mean of its graders" if grader is None
                       else f"grader {grader!r}"))
    return reward


def _sample(env: Environment, i: int, prompt: Any, columns: Mapping[str, Any]) -> Sample:
    task_ids = columns.get("task_id")
    if task_ids is not None and task_ids[i] is not None:
        return env.task(str(task_ids[i]))
    references = columns.get("reference")
    reference = references[i] if references is not None else None
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return env.sample_for(messages, reference)


def reward_funcs_for_suite(workspace: Path, config: Config, suite: str, *,
                           combined: bool = False, function: str | None = None,
                           source: Literal["suite", "store"] = "suite",
                           examples: Sequence[Example] | None = None) -> list[RewardFunc]:
    """The reward functions of `suite`'s environment (see `reward_funcs`). With `examples`
    (a training job's curated rows) the environment's tasks are those examples, so a row's
    `task_id` (its trajectory id) finds its own reference; else the suite's `source`. A suite's
    LLM judges call their model through the workspace's gateway, in-process, as evaluations do
    (judge calls are trajectories tagged `eval_role=judge`, `eval_run=env-SUITE`)."""
    from veteran.evals.suite import load_suite

    loaded = load_suite(workspace, suite, config)
    judges = {n for n, g in loaded.config.graders.items() if g.type in MODEL_GRADERS}
    gateway = _JudgeGateway(workspace, config, f"env-{loaded.name}") if judges else None
    tasks = None if examples is None else [
        Sample(id=ex.id, messages=list(ex.prompt), reference=ex.reference,
               metadata=dict(ex.metadata), episode_id=ex.episode_id, tools=ex.tools)
        for ex in examples]
    env = Environment.from_suite(workspace, config, suite, source=source, function=function,
                                 complete=gateway, tasks=tasks)
    if combined:
        return [_reward_func(env, None, COMBINED, gateway)]
    return [_reward_func(env, name, name, gateway if name in judges else None)
            for name in env.graders]


class _JudgeGateway:
    """A `Complete` through the workspace's gateway. The gateway is opened for each batch of
    rewards and closed after it, so nothing runs between training steps and every judge call
    is stored when the batch's rewards are returned."""

    def __init__(self, workspace: Path, config: Config, run: str) -> None:
        self.workspace = workspace
        self.config = config
        self.run = run
        self._complete: Complete | None = None
        self._lock: asyncio.Lock | None = None

    async def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._complete is None:
            raise EnvError("a judge was called outside a batch of rewards")
        return await self._complete(body)

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        from veteran.evals.runner import judge_complete
        from veteran.gateway import running
        from veteran.store import Store
        from veteran.workspace import Workspace

        self._lock = self._lock or asyncio.Lock()  # made on the rewards' loop
        async with self._lock:
            workspace = Workspace(self.workspace)
            store = await asyncio.to_thread(Store.open, workspace.database_url(self.config))
            try:
                async with running(self.config, store, workspace) as gateway:
                    self._complete = judge_complete(gateway, lambda: self.run)
                    try:
                        yield
                    finally:
                        self._complete = None
            finally:
                store.close()
