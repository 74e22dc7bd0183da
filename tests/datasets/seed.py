"""A small store of support trajectories with feedback, shared by the datasets tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import write_workspace
from veteran.config import Config
from veteran.store import Store, new_id
from veteran.types import TrajectoryRecord

BASE = 1_795_000_000.0
SYSTEM = "You are the support desk."
CONFIG = f"""
[providers.m]
kind = "mock"

[functions.support]
system = "{SYSTEM}"
[functions.support.variants.v1]
model = "m/echo"
[functions.support.variants.v2]
model = "m/echo"
weight = 0.0

[functions.other]
[functions.other.variants.v1]
model = "m/echo"

[metrics.resolved]
type = "boolean"
[metrics.rating]
type = "float"
[metrics.effort]
type = "float"
optimize = "min"
[metrics.correction]
type = "demonstration"
[metrics.queue]
type = "label"
"""


def workspace_config(path: Path) -> Config:
    return write_workspace(path, CONFIG).load_config()


@dataclass
class Call:
    question: str
    answer: str | None
    episode: str
    at: float
    variant: str = "v1"
    tags: dict[str, str] = field(default_factory=dict)
    feedback: dict[str, Any] = field(default_factory=dict)
    function: str = "support"
    status: str = "ok"
    system: str | None = None  # a system message the client sent itself


def record(call: Call) -> TrajectoryRecord:
    messages: list[dict[str, Any]] = [{"role": "user", "content": call.question}]
    if call.system is not None:
        messages.insert(0, {"role": "system", "content": call.system})
    response = None
    if call.answer is not None:
        response = {"object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": call.answer, "refusal": None}}]}
    return TrajectoryRecord(
        id=new_id(call.at), episode_id=call.episode, created_at=call.at, function=call.function,
        variant=call.variant, provider="m", model="echo", status=call.status,  # type: ignore[arg-type]
        request={"model": call.function, "messages": messages}, response=response,
        tags=call.tags,
    )


def insert(store: Store, calls: list[Call]) -> list[str]:
    records = [record(c) for c in calls]
    store.insert(records)
    for r, c in zip(records, calls, strict=True):
        for metric, value in c.feedback.items():
            store.add_feedback(trajectory_id=r.id, metric=metric, value=value)
    return [r.id for r in records]


CALLS = [
    # 0, and 1 repeats it (case and spaces aside): dedupe keeps the later one
    Call("How do I reset my password?", "Click reset.", "e1", BASE, tags={"lang": "en"},
         feedback={"resolved": True}),
    Call("how do I  RESET my password?", "Use the reset link.", "e2", BASE + 10,
         tags={"lang": "en"}, feedback={"resolved": True}),
    # 2 was corrected; 3 is a near-copy of it, later, without a correction: 2 is kept
    Call("Where can I find my invoice for March, please?", "No idea.", "e3", BASE + 20,
         feedback={"resolved": False,
                   "correction": {"role": "assistant", "content": "Billing > Invoices."}}),
    Call("Where can I find my invoice for March, please??", "Billing.", "e4", BASE + 30,
         feedback={"resolved": True}),
    Call("Can I change my plan mid-cycle?", "Yes.", "e5", BASE + 40, variant="v2",
         tags={"lang": "fr"}, feedback={"resolved": False}),
    Call("Is the service down?", None, "e6", BASE + 50, status="error"),
    Call("Do you ship to Canada?", "Yes, we do.", "e7", BASE + 60),  # no feedback
    # 7 and 8: one prompt, rated: 7 is better on `rating`, 8 on `effort` (lower is better)
    Call("What are your opening hours?", "9 to 5, Monday to Friday.", "e8", BASE + 70,
         feedback={"rating": 0.9, "effort": 5.0, "queue": "tech"}),
    Call("What are your opening hours?", "I don't know.", "e9", BASE + 80,
         feedback={"rating": 0.1, "effort": 1.0, "queue": "billing"}),
    Call("Hello from another function", "Hi.", "e10", BASE + 90, function="other"),
]
