"""An environment: a function's real tasks, with the suite's graders as the reward.

Single-turn: a task's prompt is its messages (after the environment's system prompts), the
policy answers once (text, or an assistant message with tool calls), and that answer is graded
by the same grader objects evaluations use (`veteran.evals.graders`). The reward is the
weighted mean of the graders that scored; a grader that has nothing to say about a task
(`Skip`: no reference, no feedback) or fails is left out of that task's mean, as the runner
leaves it out of the suite's statistics.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson

from veteran.config import Config
from veteran.errors import EnvError as EnvError  # defined with the whole tree
from veteran.evals import datasets
from veteran.evals.errors import Skip
from veteran.evals.types import Complete, Grader, Output, Sample, Score

if TYPE_CHECKING:
    from veteran.evals.suite import Suite
    from veteran.store import Store

# What a policy answers: the assistant's text, or an assistant message (tool calls allowed).
Action = str | Mapping[str, Any]
# A policy sees the prompt messages and the tools offered; it answers once.
Policy = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], Awaitable[Action]]
MODEL_GRADERS = {"llm_judge", "pairwise"}


@dataclass(frozen=True, slots=True)
class Observation:
    task_id: str
    messages: list[dict[str, Any]]  # system prompts first, then the task's messages
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Reward:
    """One output graded: `value` is the weighted mean of the graders that scored (None when
    none did)."""

    value: float | None
    scores: dict[str, Score] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # grader -> why it said nothing
    errors: dict[str, str] = field(default_factory=dict)  # grader -> what went wrong


@dataclass(frozen=True, slots=True)
class StepResult:
    reward: float | None
    done: bool
    scores: dict[str, Score]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rollout:
    task_id: str
    messages: list[dict[str, Any]]  # the prompt and the policy's answer
    output: Output
    reward: Reward


@dataclass(frozen=True, slots=True)
class Evaluation:
    mean: float | None  # over tasks with a reward
    rewards: dict[str, float | None]  # task id -> reward
    rollouts: list[Rollout]


def output_of(action: Action | Sequence[Mapping[str, Any]]) -> Output:
    """An `Output` from a policy's answer: a string, an assistant message, a chat.completion,
    or a list of messages (TRL's conversational completions: the last assistant one)."""
    if isinstance(action, str):
        return Output(text=action)
    if isinstance(action, Mapping):
        message = action
    else:
        assistant = [m for m in action if m.get("role") == "assistant"]
        if not assistant:
            return Output(text="", error="the policy gave no assistant message")
        message = assistant[-1]
    choices = message.get("choices")
    if isinstance(choices, list) and choices:
        return Output(**_message_output(choices[0].get("message") or {}),
                      completion=dict(message))
    return Output(**_message_output(message))


def _message_output(message: Mapping[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):  # content parts: the text ones
        content = "".join(p.get("text", "") for p in content
                          if isinstance(p, dict) and p.get("type") == "text")
    return {"text": content if isinstance(content, str) else "",
            "tool_calls": list(message.get("tool_calls") or [])}


def assistant_message(output: Output) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": output.text}
    if output.tool_calls:
        message["tool_calls"] = output.tool_calls
    return message


class Environment:
    """Tasks plus a reward from graders. `weights` (grader -> weight >= 0) default to equal;
    `{"label": 1}` rewards by one grader alone (the others still score, for information).
    `system` (one prompt or several) goes first in every prompt, as the gateway adds a
    function's system prompt. `specs` are the graders' suite tables, needed to export."""

    def __init__(self, name: str, tasks: list[Sample], graders: dict[str, Grader], *,
                 weights: Mapping[str, float] | None = None,
                 system: str | Sequence[str] | None = None,
                 specs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        if not tasks:
            raise EnvError(f"environment {name!r} has no tasks")
        if not graders:
            raise EnvError(f"environment {name!r} has no graders")
        self.name = name
        self.tasks = list(tasks)
        self.graders = dict(graders)
        self.weights = _weights(self.graders, weights)
        self.system = [system] if isinstance(system, str) else list(system or [])
        self.specs = {k: dict(v) for k, v in specs.items()} if specs is not None else None
        self._by_id: dict[str, Sample] = {}
        self._by_prompt: dict[bytes, Sample] = {}
        for task in self.tasks:
            if task.id in self._by_id:
                raise EnvError(f"environment {name!r}: task id {task.id!r} is repeated")
            self._by_id[task.id] = task
            self._by_prompt.setdefault(_key(self.prompt(task)), task)
        self._current: Sample | None = None
        self._next = 0

    @classmethod
    def from_suite(cls, workspace: Path, config: Config, suite: str, *,
                   store: Store | None = None, source: Literal["suite", "store"] = "suite",
                   function: str | None = None, complete: Complete | None = None,
                   weights: Mapping[str, float] | None = None,
                   tasks: Sequence[Sample] | None = None,
                   include_evals: bool = False) -> Environment:
        """The environment of `suite` (evals/SUITE.toml): tasks from its dataset (`source =
        "suite"`) or from `function`'s trajectories that have a reference (`"store"`: a
        demonstration, or the answer itself with positive feedback), or the `tasks` given (a
        training job's own examples); graders built by the evaluation code. Model graders need
        `complete` (see `runner.judge_complete`). Tasks from the store leave evaluation calls
        out (test inputs are no training tasks) unless `include_evals`."""
        from veteran.evals.runner import build_graders
        from veteran.evals.suite import load_suite

        loaded = load_suite(workspace, suite, config)
        function = function or loaded.config.dataset.function
        if function is not None and function not in config.functions:
            raise EnvError(f"unknown function {function!r}; functions: "
                           f"{', '.join(config.functions) or 'none'}")
        if source not in ("suite", "store"):
            raise EnvError(f"source must be 'suite' or 'store', not {source!r}")
        if source == "store" and function is None:
            raise EnvError("tasks from the store need a function")
        needs_model = sorted(n for n, g in loaded.config.graders.items()
                             if g.type in MODEL_GRADERS)
        if needs_model and complete is None:
            raise EnvError(f"{loaded.shown}: grader(s) {', '.join(needs_model)} call a model "
                           "(a judge), and no model call was given (complete=)")
        graders = build_graders(loaded, complete or _no_model)
        tasks = (list(tasks) if tasks is not None
                 else _load_tasks(loaded, workspace, config, store, source, function,
                                  include_evals))
        system = [s for s in (config.functions[function].system if function else None,
                              loaded.config.system) if s]
        name = f"{function}-{loaded.name}" if function else loaded.name
        return cls(name, tasks, graders, weights=weights, system=system,
                   specs={n: g.spec() for n, g in loaded.config.graders.items()})

    def __len__(self) -> int:
        return len(self.tasks)

    def task(self, key: str | int) -> Sample:
        """A task by id, or by position."""
        if isinstance(key, int):
            if not -len(self.tasks) <= key < len(self.tasks):
                raise EnvError(f"no task {key}: the environment has {len(self.tasks)}")
            return self.tasks[key]
        found = self._by_id.get(key)
        if found is None:
            raise EnvError(f"environment {self.name!r} has no task {key!r}")
        return found

    def prompt(self, task: Sample) -> list[dict[str, Any]]:
        return [*({"role": "system", "content": s} for s in self.system), *task.messages]

    def observe(self, task: Sample) -> Observation:
        return Observation(task.id, self.prompt(task), task.tools)

    # Gym-style, one episode at a time (use `rollout` / `evaluate` for concurrent work)

    async def reset(self, task: str | int | None = None) -> Observation:
        """Start an episode on `task` (an id or a position; None: the next task in order)."""
        if task is None:
            chosen = self.tasks[self._next % len(self.tasks)]
            self._next += 1
        else:
            chosen = self.task(task)
        self._current = chosen
        return self.observe(chosen)

    async def step(self, action: Action) -> StepResult:
        """Answer the current episode's task; the first answer ends the episode."""
        if self._current is None:
            raise EnvError("step() before reset(): no episode is running")
        task, self._current = self._current, None
        reward = await self.score(task, action)
        return StepResult(reward.value, True, reward.scores,
                          {"task_id": task.id, "skipped": reward.skipped,
                           "errors": reward.errors})

    # Stateless

    async def score(self, task: Sample | str | int, action: Action | Output, *,
                    graders: Collection[str] | None = None) -> Reward:
        """Grade one answer to `task` with every grader (or only those named); the reward is
        their weighted mean."""
        sample = task if isinstance(task, Sample) else self.task(task)
        output = action if isinstance(action, Output) else output_of(action)
        scores: dict[str, Score] = {}
        skipped: dict[str, str] = {}
        errors: dict[str, str] = {}
        for name, grader in self.graders.items():
            if graders is not None and name not in graders:
                continue
            try:
                scores[name] = await grader.grade(sample, output)
            except Skip as skip:
                skipped[name] = skip.reason
            except Exception as exc:  # a broken grader is reported, as the runner does
                errors[name] = f"{type(exc).__name__}: {exc}"
        return Reward(self.combine(scores), scores, skipped, errors)

    def combine(self, scores: Mapping[str, Score]) -> float | None:
        """The weighted mean of `scores` (graders with weight 0 do not count)."""
        total = sum(self.weights[n] for n in scores)
        if total <= 0:
            return None
        return sum(self.weights[n] * s.value for n, s in scores.items()) / total

    async def rollout(self, policy: Policy, task: Sample | str | int) -> Rollout:
        sample = task if isinstance(task, Sample) else self.task(task)
        observation = self.observe(sample)
        try:
            output = output_of(await policy(observation.messages, observation.tools))
        except Exception as exc:  # the policy failed: graded as a failed call
            output = Output(text="", error=f"{type(exc).__name__}: {exc}")
        reward = await self.score(sample, output)
        return Rollout(sample.id, [*observation.messages, assistant_message(output)], output,
                       reward)

    async def evaluate(self, policy: Policy, *, concurrency: int = 8) -> Evaluation:
        """Roll `policy` out on every task, `concurrency` at a time."""
        if concurrency < 1:
            raise EnvError("concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)

        async def one(task: Sample) -> Rollout:
            async with gate:
                return await self.rollout(policy, task)

        rollouts = list(await asyncio.gather(*(one(t) for t in self.tasks)))
        rewards = {r.task_id: r.reward.value for r in rollouts}
        values = [v for v in rewards.values() if v is not None]
        return Evaluation(sum(values) / len(values) if values else None, rewards, rollouts)

    def to_rows(self) -> list[dict[str, Any]]:
        """The dataset TRL's GRPOTrainer takes: `prompt` (chat messages), `task_id`,
        `reference`."""
        return [{"prompt": self.prompt(t), "task_id": t.id, "reference": t.reference}
                for t in self.tasks]

    def sample_for(self, prompt: Sequence[Mapping[str, Any]], reference: Any) -> Sample:
        """The task a prompt belongs to, else a new sample of it (for rows without task ids):
        the environment's system prompts are taken off its front."""
        found = self._by_prompt.get(_key(prompt))
        if found is not None and found.reference == reference:
            return found
        messages = [dict(m) for m in prompt]
        for text in self.system:
            if messages and messages[0].get("role") == "system" and (
                    messages[0].get("content") == text):
                messages.pop(0)
        return Sample(id=datasets.content_id(messages, reference), messages=messages,
                      reference=reference)


def _load_tasks(suite: Suite, workspace: Path, config: Config, store: Store | None,
                source: str, function: str | None, include_evals: bool = False
                ) -> list[Sample]:
    """The suite's samples, or `function`'s trajectories with a reference; the workspace's
    store is opened only when one is needed and none was given."""
    from veteran.evals.runner import load_samples
    from veteran.store import Store
    from veteran.workspace import Workspace

    opened = None
    if store is None and (source == "store" or suite.config.dataset.function):
        opened = store = Store.open(Workspace(workspace).database_url(config))
    try:
        if source == "suite":
            # a file dataset reads no store
            return load_samples(suite, workspace, cast("Store", store))
        assert function is not None and store is not None
        tasks = datasets.from_store(store, function, require_reference=True,
                                    include_evals=include_evals)
        if not tasks:
            raise EnvError(f"function {function!r} has no trajectories with a reference (a "
                           "demonstration, or an answer with positive feedback)")
        return tasks
    finally:
        if opened is not None:
            opened.close()


async def _no_model(body: dict[str, Any]) -> dict[str, Any]:
    raise EnvError("this environment was built without a model to call")


def _key(messages: Sequence[Mapping[str, Any]]) -> bytes:
    return orjson.dumps(list(messages), option=orjson.OPT_SORT_KEYS)


def _weights(graders: Mapping[str, Grader], weights: Mapping[str, float] | None
             ) -> dict[str, float]:
    if weights is None:
        return dict.fromkeys(graders, 1.0)
    unknown = sorted(set(weights) - set(graders))
    if unknown:
        raise EnvError(f"weights name unknown graders {unknown}; graders: "
                       f"{', '.join(graders)}")
    out = {name: float(weights.get(name, 0.0)) for name in graders}
    if any(not math.isfinite(w) or w < 0 for w in out.values()) or sum(out.values()) <= 0:
        raise EnvError("weights must be finite, at least 0, and not all 0")
    return out
