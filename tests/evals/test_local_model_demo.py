"""The shipped ticket-routing task: the embedded local model against a scripted stand-in for a
stronger model, through `veteran eval run`, with intervals that tell them apart."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from tests.evals.workspaces import RULES
from veteran.cli import cli

CONFIG = f"""
[providers.local]
kind = "local"
max_new_tokens = 4

[providers.scripted]
kind = "mock"
error_rate = 0.05
[providers.scripted.rules]
{RULES}

[functions.triage]
system = "Classify the ticket. Answer with one word: billing, technical, account or shipping."
[functions.triage.variants.strong]
model = "scripted/rules"
[functions.triage.variants.local]
model = "local/smollm2-135m-instruct"
params = {{ max_tokens = 4, temperature = 0 }}
"""

SUITE = """
variants = ["triage:strong", "triage:local"]
concurrency = 4
[dataset]
file = "evals/tickets.jsonl"
[graders.label]
type = "normalized"
"""


@pytest.mark.slow
def test_the_local_model_and_a_stronger_stand_in_are_told_apart(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    (ws.path / "evals").mkdir()
    shipped = files("veteran.evals") / "data" / "tickets.jsonl"
    rows = shipped.read_text(encoding="utf-8").splitlines()[:60]
    (ws.path / "evals" / "tickets.jsonl").write_text("\n".join(rows) + "\n")
    (ws.path / "evals" / "routing.toml").write_text(SUITE)
    runner = CliRunner()
    ran = runner.invoke(cli, ["eval", "run", "routing", "--workspace", str(ws.path), "--json"],
                        catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output[ran.output.index("{"):])
    variants = {name: v["graders"]["label"] for name, v in report["variants"].items()}
    strong, local = variants["triage:strong"], variants["triage:local"]
    assert strong["n"] == local["n"] == 60
    assert strong["low"] > local["high"], (strong, local)  # the intervals separate them
    # Judged on the stored run: a fresh gate would call the local model 60 times more.
    gate = runner.invoke(cli, ["eval", "gate", "routing", "--baseline", "triage:strong",
                               "--candidate", "triage:local", "--max-drop", "0.02",
                               "--run", report["run"], "--workspace", str(ws.path)])
    assert gate.exit_code == 1, gate.output  # swapping to the local model would be a regression
