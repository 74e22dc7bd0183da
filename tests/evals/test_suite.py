from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.evals.workspaces import TICKETS, eval_workspace
from veteran.errors import ConfigError, GraderError
from veteran.evals.graders import grader_from_config
from veteran.evals.suite import GRADER_OPTIONS, Target, list_suites, load_suite, parse_suite


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


def test_a_misspelt_grader_option_names_the_file_grader_option_and_known_ones(
    tmp_path: Path,
) -> None:
    text = TICKETS.replace('type = "normalized"', 'type = "contains"\ncase_sensitiv = true')
    ws = eval_workspace(tmp_path, suites={"bad": text})
    with pytest.raises(ConfigError) as info:
        load_suite(ws.path, "bad", ws.load_config())
    assert info.value.path.endswith("bad.toml")
    assert info.value.key == "graders.label.case_sensitiv"
    assert info.value.problem == ("unknown option of a 'contains' grader; its options: value, "
                                  "ignore_case")


@pytest.mark.parametrize(("table", "key", "problem"), [
    ('type = "fuzzy"', "graders.label.type", "unknown type 'fuzzy'; one of contains, "),
    ('type = "regex"', "graders.label.pattern", "Field required"),
    ('type = "numeric"\nabs_tol = -1', "graders.label.abs_tol", "greater than or equal to 0"),
    ('type = "llm_judge"\nmodel = "j"\nrubric = "r"\nlabel = ["a", "b"]', "graders.label.label",
     "its options: model, rubric, params, range, pass_threshold, labels, passing_labels"),
    ('type = "json_schema"\nschema = 3', "graders.label.schema", "valid dictionary"),
])
def test_grader_tables_are_checked_when_the_suite_is_read(table: str, key: str,
                                                          problem: str) -> None:
    text = TICKETS.replace('type = "normalized"', table)
    with pytest.raises(ConfigError) as info:
        parse_suite(tomllib.loads(text), Path("evals/bad.toml"))
    assert (info.value.path, info.value.key) == ("evals/bad.toml", key)
    assert problem in info.value.problem


@pytest.mark.parametrize("kind", sorted(GRADER_OPTIONS))
def test_every_grader_type_refuses_an_unknown_option(kind: str) -> None:
    with pytest.raises(GraderError, match=rf"grader 'g': `nope`: unknown option of a '{kind}'"):
        grader_from_config("g", {"type": kind, "nope": 1})
