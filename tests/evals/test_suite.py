from __future__ import annotations

from pathlib import Path

import pytest

from tests.evals.workspaces import TICKETS, eval_workspace
from veteran.errors import ConfigError
from veteran.evals.suite import Target, list_suites, load_suite


def test_a_suite_loads_and_names_its_targets(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path, suites={"tickets": TICKETS})
    suite = load_suite(ws.path, "tickets", ws.load_config())
    assert suite.name == "tickets"
    assert suite.config.epochs == 1 and suite.config.concurrency == 8
    assert suite.config.graders["label"].spec() == {"type": "normalized"}
    assert Target.parse("triage:big") == Target("triage:big", "triage", "big")
    assert Target.parse("up/gpt-x") == Target("up/gpt-x", "up/gpt-x", None)
    assert list_suites(ws.path) == ["tickets"]


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("epochs = 0\n" + TICKETS, "epochs", "greater than or equal to 1"),
    ("surprise = 1\n" + TICKETS, "surprise", "unknown key"),
    (TICKETS.replace('file = "evals/tickets.jsonl"', ""), "dataset", "exactly one"),
    (TICKETS.replace("triage:weak", "triage:tiny"), "variants[1]", "no variant 'tiny'"),
    (TICKETS.replace("triage:weak", "nope/x"), "variants[1]", "unknown provider 'nope'"),
    (TICKETS.replace("tickets.jsonl", "missing.jsonl"), "dataset.file", "no file"),
    (TICKETS.replace("triage:weak", "bad variant"), "variants", "neither"),
    (TICKETS + "[dataset.fractions]\ntrain = 0.5\n", "dataset.fractions", "sum to 1"),
])
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    ws = eval_workspace(tmp_path, suites={"bad": text})
    with pytest.raises(ConfigError) as info:
        load_suite(ws.path, "bad", ws.load_config())
    assert info.value.path.endswith("bad.toml")
    assert info.value.key is not None and info.value.key.startswith(key)
    assert problem in info.value.message


def test_a_missing_suite_is_named(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path)
    with pytest.raises(ConfigError, match="no such suite file"):
        load_suite(ws.path, "nothing")
