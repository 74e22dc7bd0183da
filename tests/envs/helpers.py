"""Shared pieces for the environment tests: graders of several kinds, tasks, a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.evals.workspaces import eval_workspace
from veteran.evals.graders import grader_from_config
from veteran.evals.types import Grader, Sample
from veteran.workspace import Workspace

SPECS: dict[str, dict[str, Any]] = {
    "exact": {"type": "exact"},
    "normalized": {"type": "normalized"},
    "field": {"type": "json_field", "path": "queue"},
    "short": {"type": "python", "function": "tests.evals.helpers:shorter_than_reference"},
}


def graders(specs: dict[str, dict[str, Any]] = SPECS) -> dict[str, Grader]:
    return {name: grader_from_config(name, spec) for name, spec in specs.items()}


def tasks() -> list[Sample]:
    return [
        Sample("a", [{"role": "user", "content": "Refund my card"}], reference="billing"),
        Sample("b", [{"role": "user", "content": "App crashes"}], reference="technical"),
        Sample("c", [{"role": "user", "content": "Where is my parcel?"}],
               reference='{"queue": "shipping"}'),
    ]


JUDGED = """
variants = ["triage:strong"]
[dataset]
file = "evals/tickets.jsonl"
limit = 4
[graders.label]
type = "normalized"
[graders.polite]
type = "llm_judge"
model = "judge/j"
rubric = "Is the answer one polite word?"
"""

TICKETS = """
variants = ["triage:strong"]
system = "Answer with one word: billing, technical, account or shipping."
[dataset]
file = "evals/tickets.jsonl"
limit = 6
[graders.label]
type = "normalized"
[graders.exact]
type = "exact"
"""

JUDGE_PROVIDER = """
[providers.judge]
kind = "mock"
reply = '{"reasoning": "polite enough", "score": 1}'
"""

FROM_STORE = """
variants = ["triage:strong"]
[dataset]
function = "triage"
[graders.label]
type = "normalized"
"""


def workspace(path: Path) -> Workspace:
    ws = eval_workspace(path, suites={"tickets": TICKETS, "judged": JUDGED,
                                      "captured": FROM_STORE})
    config = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(config.replace(
        "[functions.triage.variants.strong]",
        '[functions.triage]\nsystem = "You route tickets."\n[functions.triage.variants.strong]',
    ) + JUDGE_PROVIDER, encoding="utf-8")
    return ws
