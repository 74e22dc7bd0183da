from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from tests.conftest import write_workspace
from tests.datasets.seed import BASE, CALLS, CONFIG, insert
from veteran.cli.curation import curation_from_options, curation_options
from veteran.cli.data import data
from veteran.datasets import CurationError, Filters, read_manifest
from veteran.store import Store

SUITE = """
variants = ["support:v1"]
[dataset]
function = "support"
[graders.same]
type = "exact"
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    (ws.path / "evals").mkdir()
    (ws.path / "evals" / "qa.toml").write_text(SUITE, encoding="utf-8")
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        insert(store, CALLS)
    finally:
        store.close()
    return ws.path


def run(workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(data, ["export", "support", "-w", str(workspace), *args])


def test_export_json(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(workspace, "--format", "openai-sft", "--out", str(out), "--metric", "resolved",
                 "--split", "train=1", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["manifest"] == str(out / "manifest.json")
    assert shown["counts"]["kept"] == 2 and shown["counts"]["train"] == 2
    assert shown["filters"]["metric"] == "resolved" and shown["filters"]["kind"] == "sft"
    assert read_manifest(out).content_hash == shown["content_hash"]


def test_export_table_and_defaults(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    result = run(workspace, "--format", "hf-dpo", "--out", str(out), "--metric", "rating",
                 "--dedupe", "none", "--seed", "4")
    assert result.exit_code == 0, result.output
    assert "support: preference examples as hf-dpo" in result.output
    assert f"manifest: {out / 'manifest.json'}" in result.output
    manifest = read_manifest(out)
    assert manifest.filters["kind"] == "preference" and manifest.filters["dedupe"] is None
    assert manifest.seed == 4 and manifest.counts["kept"] == 1
    again = run(workspace, "--format", "hf-dpo", "--out", str(out), "--metric", "rating")
    assert isinstance(again.exception, Exception) and "is not empty" in str(again.exception)
    assert run(workspace, "--format", "hf-dpo", "--out", str(out), "--metric", "rating",
               "--overwrite").exit_code == 0


def test_export_rft_with_a_suite_grader(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "rft"
    result = run(workspace, "--format", "openai-rft", "--out", str(out), "--grader", "qa:same",
                 "--tag", "lang=en", "--since", "2026-11-18T00:00:00Z")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "grader.json").read_text())["type"] == "string_check"
    assert read_manifest(out).filters["tags"] == {"lang": "en"}
    bad = run(workspace, "--format", "openai-rft", "--out", str(tmp_path / "x"),
              "--grader", "qa:nope")
    assert bad.exit_code == 2 and "qa's graders: same" in bad.output


@pytest.mark.parametrize(("args", "message"), [
    (["--split", "train=0.9,test"], "give NAME=FRACTION"),
    (["--dedupe", "high"], "neither a similarity"),
    (["--since", "yesterday"], "not ISO 8601"),
    (["--tag", "lang"], "KEY=VALUE"),
    (["--format", "csv"], "'csv' is not one of"),
])
def test_usage_errors(workspace: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = run(workspace, "--format", "parquet", "--out", str(tmp_path / "o"), *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "o").exists()


def test_library_errors_reach_the_user(workspace: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(data, ["export", "nope", "-w", str(workspace), "--format",
                                       "parquet", "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, CurationError)
    assert "unknown function 'nope'" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_curation_options_on_another_command() -> None:
    seen: dict[str, Any] = {}

    @click.command()
    @curation_options
    @click.option("--recipe")
    def train(recipe: str | None, **options: Any) -> None:
        seen["curation"] = curation_from_options(options)
        seen["left"] = options

    result = CliRunner().invoke(train, [
        "--recipe", "sft", "--metric", "resolved", "--value", "true", "--tag", "a=1",
        "--tag", "b=x=y", "--until", str(BASE), "--corrected", "--limit", "5",
        "--split", "train=0.7, dev=0.1, test=0.2", "--dedupe", "0.8", "--variant", "v1"])
    assert result.exit_code == 0, result.output
    curation = seen["curation"]
    assert curation.filters == Filters(until=BASE, tags={"a": "1", "b": "x=y"}, variant="v1",
                                       metric="resolved", value=True, corrected=True, limit=5)
    assert curation.split == {"train": 0.7, "dev": 0.1, "test": 0.2}
    assert curation.dedupe == 0.8 and curation.seed == 0 and seen["left"] == {}
    assert curation.curate_kwargs()["filters"] is curation.filters
    CliRunner().invoke(train, ["--metric", "queue", "--value", "billing"])
    assert seen["curation"].filters.value == "billing"
    assert seen["curation"].split == {"train": 0.9, "test": 0.1}
