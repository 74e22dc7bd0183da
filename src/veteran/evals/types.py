"""The words of private evaluations, shared by datasets, graders, the runner and statistics.

A **suite** (`evals/NAME.toml`) names a dataset, graders and the variants to compare. A
**sample** is one task: input messages, an optional reference, metadata for slicing, and the
episode it came from (splits are by episode). A **run** calls each variant on each sample
(`epochs` times) and grades every **output**; each grading is a **score**.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Sample:
    id: str  # stable across runs: what resumption and paired comparisons key on
    messages: list[dict[str, Any]]  # OpenAI chat messages (the input)
    reference: Any = None  # the target / ideal / accepted answer (str, dict, list, number)
    metadata: dict[str, Any] = field(default_factory=dict)  # tags, fields: for slices
    episode_id: str | None = None  # splits never put one episode in two splits
    tools: list[dict[str, Any]] | None = None  # OpenAI tools offered with the input
    feedback: dict[str, Any] = field(default_factory=dict)  # metric -> value, from the store


@dataclass(frozen=True, slots=True)
class Output:
    """What a variant answered for a sample."""

    text: str  # the assistant message content ("" when it only called tools)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # OpenAI tool_calls
    completion: dict[str, Any] | None = None  # the whole chat.completion
    trajectory_id: str | None = None
    error: str | None = None  # the call failed: graders score it as a failure


@dataclass(frozen=True, slots=True)
class Score:
    value: float  # in [0, 1] for pass/fail and most graders; judges may use their scale
    passed: bool | None = None  # for pass/fail graders (McNemar, pass@k); None otherwise
    explanation: str | None = None
    label: str | None = None  # label graders / judges


# A model call for LLM judges: OpenAI chat body in, chat.completion out (the runner gives one
# that goes through the gateway code path, so judge calls are trajectories too).
Complete = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Grader(Protocol):
    name: str

    async def grade(self, sample: Sample, output: Output) -> Score: ...
