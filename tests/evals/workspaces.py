"""Eval workspaces for the runner tests: the shipped tickets data, a scripted strong and weak
model (mock provider rules), and a function whose variant calls the fake upstream."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

from tests.conftest import write_workspace
from veteran.workspace import Workspace

RULES = """
"invoice|charge|refund|bill|payment|card|VAT" = "billing"
"crash|error|API|sync|button|upload|notification|slow" = "technical"
"log in|password|account|email address|locked|teammate|two-factor|ownership" = "account"
"order|tracking|package|parcel|deliver|ship|courier" = "shipping"
"""

CONFIG = f"""
[providers.m]
kind = "mock"
error_rate = 0.05
[providers.m.rules]
{RULES}
[providers.w]
kind = "mock"
error_rate = 0.5
[providers.w.rules]
{RULES}
[providers.slow]
kind = "mock"
delay_ms = {{delay}}

[functions.triage.variants.strong]
model = "m/strong"
[functions.triage.variants.weak]
model = "w/weak"
[functions.echo.variants.up]
model = "up/fake-model"
[functions.echo.variants.slow]
model = "slow/x"
"""

UPSTREAM = """
[providers.up]
kind = "openai"
base_url = "{upstream}"
[providers.up.models.fake-model]
input_per_mtok = 1.0
output_per_mtok = 2.0
"""


def eval_workspace(path: Path, *, upstream: str = "http://127.0.0.1:9", delay: float = 0,
                   suites: dict[str, str] | None = None) -> Workspace:
    ws = write_workspace(path, CONFIG.replace("{delay}", str(delay))
                         + UPSTREAM.format(upstream=upstream))
    (path / "evals").mkdir(exist_ok=True)
    data = files("veteran") / "evals" / "data"
    shutil.copyfile(str(data / "tickets.jsonl"), path / "evals" / "tickets.jsonl")
    for name, text in (suites or {}).items():
        (path / "evals" / f"{name}.toml").write_text(text, encoding="utf-8")
    return ws


def echo_dataset(path: Path, n: int) -> None:
    """n samples whose exact answer is the fake upstream's (and the mock's) echo."""
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"s{i}", "input": f"q{i}", "target": f"echo: q{i}"}) + "\n")


TICKETS = """
variants = ["triage:strong", "triage:weak"]
[dataset]
file = "evals/tickets.jsonl"
[graders.label]
type = "normalized"
"""
