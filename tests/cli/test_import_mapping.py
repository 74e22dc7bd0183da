"""`veteran trajectories import` keeps each record's time and maps records to functions and tags
(`--function`, `--map`), saying what was not mapped, so imported history can feed `data export`
and `train`; an unknown `--function` is a usage error (exit 2) on every command that takes one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from veteran.cli import cli
from veteran.errors import ImportRefused
from veteran.store import Store, TrajectoryFilter
from veteran.store.imports import ImportReport, Mapping, Rule, parse_openai_log
from veteran.types import TrajectoryRecord
from veteran.workspace import Workspace

CONFIG = """
[providers.m]
kind = "mock"
[functions.triage.variants.a]
model = "m/echo"
[functions.summarize.variants.a]
model = "m/echo"
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "veteran.toml").write_text(CONFIG, encoding="utf-8")
    return Workspace(tmp_path / "ws")


def line(question: str, answer: str, *, model: str = "gpt-4o", created: Any = 1700000000,
         **extra: Any) -> dict[str, Any]:
    return {
        "request": {"model": model, "messages": [{"role": "user", "content": question}]},
        "response": {"id": "chatcmpl-1", "object": "chat.completion", "created": created,
                     "model": model, "choices": [{"index": 0, "finish_reason": "stop", "message": {
                         "role": "assistant", "content": answer}}]},
        **extra,
    }


def write(path: Path, *lines: dict[str, Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in lines))
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def stored(ws: Workspace, f: TrajectoryFilter | None = None) -> list[Any]:
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        return list(store.export(f or TrajectoryFilter()))
    finally:
        store.close()


def test_the_response_created_time_is_kept(ws: Workspace, tmp_path: Path) -> None:
    log = write(tmp_path / "log.jsonl", line("my card was charged twice", "billing"),
                line("later", "x", created=1700000060.5),
                line("dated", "x", created_at="2024-01-02T03:04:05Z"))
    result = invoke("trajectories", "import", str(log), "-w", str(ws.path))
    assert result.exit_code == 0, result.output
    times = sorted(t.created_at for t in stored(ws))
    assert times == [1700000000.0, 1700000060.5, 1704164645.0]
    shown = orjson.loads(invoke("trajectories", "list", "-w", str(ws.path), "--json").output)
    assert shown["data"][-1]["created_at"] == "2023-11-14T22:13:20Z"  # not the import's time
    # and the store's time bounds find it there
    assert len(stored(ws, TrajectoryFilter(until=1700000001))) == 1


@pytest.mark.parametrize(("created", "shown"), [
    ("yesterday", "`response.created` must be UNIX seconds"),
    (1700000000000, "looks like milliseconds"),
    (-1, "`response.created` must be UNIX seconds"),
    (True, "`response.created` must be UNIX seconds"),
])
def test_a_bad_time_refuses_the_file(ws: Workspace, tmp_path: Path, created: Any,
                                     shown: str) -> None:
    log = write(tmp_path / "log.jsonl", line("fine", "x"), line("bad", "x", created=created))
    result = invoke("trajectories", "import", str(log), "-w", str(ws.path))
    assert result.exit_code != 0
    assert "line 2" in str(result.exception) and shown in str(result.exception)
    assert "nothing imported" in str(result.exception)
    assert stored(ws) == []


def test_function_for_all_then_data_export_finds_them(ws: Workspace, tmp_path: Path) -> None:
    log = write(tmp_path / "log.jsonl", *(line(f"question number {i} about topic {i * 31}",
                                               f"answer {i}", created=1700000000 + i)
                                          for i in range(4)))
    result = invoke("trajectories", "import", str(log), "-w", str(ws.path),
                    "--function", "triage")
    assert result.exit_code == 0, result.output
    assert "imported 4 trajectories" in result.output and "functions: triage (4)" in result.output
    assert "belong to no function" not in result.output
    out = tmp_path / "out"
    result = invoke("data", "export", "triage", "-w", str(ws.path), "--format", "openai-sft",
                    "--out", str(out), "--split", "train=1")
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(x) for x in (out / "train.jsonl").read_bytes().splitlines()]
    assert [r["messages"][-1]["content"] for r in rows] == [f"answer {i}" for i in range(4)]


def test_map_rules_assign_functions_and_tags_and_report_the_rest(
        ws: Workspace, tmp_path: Path) -> None:
    log = write(
        tmp_path / "log.jsonl",
        line("route this", "billing", metadata={"team": "emea", "user": "u1"}),
        line("route that", "account", metadata={"team": "apac", "user": "u2"}),
        line("summarise this", "short", model="gpt-4o-mini", metadata={"app": "summarize"}),
        line("who knows", "?", model="ft:gpt-3.5-turbo:acme::x1"),
        line("typo app", "?", model="o1", metadata={"app": "sumarize"}),
    )
    result = invoke("trajectories", "import", str(log), "-w", str(ws.path), "--json",
                    "--map", "model:gpt-4o=triage", "--map", "metadata.app=function",
                    "--map", "metadata.team=tag:team", "--map", "model:gpt-5=triage")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["imported"] == 5
    assert report["functions"] == {"triage": 2, "summarize": 1}
    assert report["unmapped"] == 2
    assert report["unmapped_models"] == {"ft:gpt-3.5-turbo:acme::x1": 1, "o1": 1}
    assert report["not_functions"] == {"metadata.app sumarize": 1}
    assert report["unread_metadata"] == {"metadata.user": 2}
    assert report["unused_rules"] == ["model:gpt-5=triage"]
    triage = stored(ws, TrajectoryFilter(function="triage"))
    assert sorted(t.tags["team"] for t in triage) == ["apac", "emea"]
    assert all(t.tags["source"] == "import" for t in triage)
    assert [t.model for t in stored(ws, TrajectoryFilter(function="summarize"))] == [
        "gpt-4o-mini"]
    # the same, for people
    again = invoke("trajectories", "import", str(log), "-w", str(ws.path),
                   "--map", "model:gpt-4o=triage")
    assert again.exit_code == 0, again.output
    assert "functions: triage (2)" in again.output
    assert ("3 records belong to no function (`data export` and `train` will not find them; "
            "map them with --function or --map); their models:") in again.output
    assert "metadata not mapped: metadata.team (2), metadata.user (2), metadata.app (2)" in (
        again.output)


def test_the_first_matching_function_rule_wins_then_function() -> None:
    rules = (Rule.parse("model:a=triage"), Rule.parse("metadata.app=function"))
    report = ImportReport()
    records = parse_openai_log(
        [orjson.dumps(line("1", "x", model="a", metadata={"app": "summarize"})),
         orjson.dumps(line("2", "x", model="b", metadata={"app": "summarize"})),
         orjson.dumps(line("3", "x", model="b"))],
        Mapping(rules, "fallback", lambda name: name == "summarize"), report)
    assert [r.function for r in records] == ["triage", "summarize", "fallback"]
    assert report.functions == {"triage": 1, "summarize": 1, "fallback": 1}
    assert report.unmapped == 0 and report.undated == 0


def test_a_record_without_a_time_is_dated_now_and_counted() -> None:
    item = line("x", "y")
    del item["response"]["created"]
    report = ImportReport()
    [record] = parse_openai_log([orjson.dumps(item)], report=report)
    assert isinstance(record, TrajectoryRecord) and record.created_at > 1700000000
    assert report.undated == 1 and "dated now" in report.lines()[-1]
    with pytest.raises(ImportRefused, match="`metadata` must be an object"):
        parse_openai_log([orjson.dumps(line("x", "y", metadata=["a"]))])


@pytest.mark.parametrize(("rule", "error"), [
    ("model", "give FIELD:VALUE=FUNCTION"),
    ("user:bob=triage", "the field must be `model` or `metadata.KEY`"),
    ("model:=triage", "give the value to match"),
    ("model=triage", "the target is `function` or `tag:NAME`"),
    ("model:gpt-4o=tag:x", "a matched value maps to a function's name"),
    ("metadata.team=tag:", "the target is `function` or `tag:NAME`"),
])
def test_bad_rules_are_usage_errors(ws: Workspace, tmp_path: Path, rule: str,
                                    error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Rule.parse(rule)
    log = write(tmp_path / "log.jsonl", line("x", "y"))
    result = invoke("trajectories", "import", str(log), "-w", str(ws.path), "--map", rule)
    assert result.exit_code == 2 and error in result.output


def test_an_unknown_function_is_a_usage_error_naming_the_known_ones(
        ws: Workspace, tmp_path: Path) -> None:
    log = write(tmp_path / "log.jsonl", line("x", "y"))
    for args in (["--function", "nosuch"], ["--map", "model:gpt-4o=nosuch"]):
        result = invoke("trajectories", "import", str(log), "-w", str(ws.path), *args)
        assert result.exit_code == 2, result.output
        assert "no function 'nosuch' (veteran.toml has summarize, triage)" in result.output
    assert stored(ws) == []
    for command in (["trajectories", "list"], ["trajectories", "export"],
                    ["kb", "promote", "docs"]):
        result = invoke(*command, "-w", str(ws.path), "--function", "nosuch")
        assert result.exit_code == 2, (command, result.output)
        assert "no function 'nosuch'" in result.output


def test_a_function_only_the_store_knows_is_still_valid(ws: Workspace, tmp_path: Path) -> None:
    """A function removed from veteran.toml keeps its history: it can still be listed."""
    log = write(tmp_path / "log.jsonl", line("x", "y"))
    assert invoke("trajectories", "import", str(log), "-w", str(ws.path), "--function",
                  "triage").exit_code == 0
    (ws.path / "veteran.toml").write_text(CONFIG.replace("triage", "routing"), encoding="utf-8")
    result = invoke("trajectories", "list", "-w", str(ws.path), "--function", "triage",
                    "--json")
    assert result.exit_code == 0, result.output
    assert len(orjson.loads(result.output)["data"]) == 1
    result = invoke("trajectories", "list", "-w", str(ws.path), "--function", "nosuch")
    assert result.exit_code == 2
    assert ("no function 'nosuch' (veteran.toml has routing, summarize; the store also has "
            "triage)") in result.output
