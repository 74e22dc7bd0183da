from __future__ import annotations

import re
from pathlib import Path

import orjson
from click.testing import CliRunner

from tests.evals.workspaces import TICKETS, eval_workspace
from veteran.cli import cli
from veteran.evals.report import compare_runs
from veteran.evals.runs import Result


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, ["eval", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_run_report_json_and_a_self_contained_html(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path / "ws", suites={"tickets": TICKETS})
    w = str(ws.path)
    run = orjson.loads(_invoke("run", "tickets", "-w", w, "--json"))
    assert run["ran"] == 680 and run["errors"] == 0
    html_path = tmp_path / "report.html"
    summary = orjson.loads(_invoke("report", run["run"], "-w", w, "--json",
                                   "--html", str(html_path)))
    assert summary["run"]["status"] == "finished" and summary["graders"] == ["label"]
    strong, weak = summary["variants"]["triage:strong"], summary["variants"]["triage:weak"]
    assert strong["samples"] == 340 and strong["calls"] == 340
    est = strong["graders"]["label"]
    assert est["low"] <= est["mean"] <= est["high"] and est["n"] == 340
    assert est["mean"] > weak["graders"]["label"]["mean"] + 0.2  # the stronger model is
    assert set(strong["pass_at_k"]["label"]) == {"1"}
    assert strong["latency_p50_ms"] is not None
    (cmp,) = summary["comparisons"]
    assert (cmp["baseline"], cmp["candidate"]) == ("triage:strong", "triage:weak")
    assert cmp["diff"] < 0 and cmp["high"] < 0 and cmp["mcnemar_p"] < 0.05
    slices = summary["slices"]["label"]
    assert set(slices["channel"]) == {"chat", "email", "web"}
    assert set(slices["ambiguous"]) == {"False", "True"}
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 3
    assert "<script" not in page and not re.search(r"(src|href)\s*=", page)
    assert "triage:strong" in page
    listing = orjson.loads(_invoke("list", "-w", w, "--json"))
    assert listing["suites"] == ["tickets"] and listing["runs"][0]["id"] == run["run"]
    assert "triage:strong" in _invoke("report", "tickets", "-w", w)  # the suite's latest run


def test_compare_shows_what_changed_per_sample() -> None:
    def result(sample: str, value: float, text: str) -> Result:
        return Result(sample, "v", 0, {"text": text}, {"g": {"value": value, "passed": None}})

    a = [result("s1", 1.0, "billing"), result("s2", 0.0, "account"), result("s3", 1.0, "x")]
    b = [result("s1", 0.0, "shipping"), result("s2", 1.0, "technical"), result("s3", 1.0, "x")]
    changes = compare_runs(a, b)
    assert changes["compared"] == 3 and (changes["better"], changes["worse"]) == (1, 1)
    by_sample = {c["sample_id"]: c for c in changes["changed"]}
    assert set(by_sample) == {"s1", "s2"}
    assert by_sample["s1"]["scores"]["g"] == {"a": 1.0, "b": 0.0, "delta": -1.0}
    assert (by_sample["s1"]["output_a"], by_sample["s1"]["output_b"]) == ("billing", "shipping")


SMALL = TICKETS.replace('variants = ["triage:strong", "triage:weak"]',
                        'variants = ["triage:weak", "triage:strong"]').replace(
    'file = "evals/tickets.jsonl"', 'file = "evals/tickets.jsonl"\nlimit = 24')


def test_report_compares_with_the_suites_first_variant_by_default(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path / "ws", suites={"small": SMALL})
    w = str(ws.path)
    run = orjson.loads(_invoke("run", "small", "-w", w, "--json"))
    assert list(run["variants"]) == ["triage:weak", "triage:strong"]  # the suite's order
    summary = orjson.loads(_invoke("report", run["run"], "-w", w, "--json"))
    (cmp,) = summary["comparisons"]
    assert (cmp["baseline"], cmp["candidate"]) == ("triage:weak", "triage:strong")
    assert summary["baseline"] == "triage:weak"  # not the alphabetical first
    assert list(summary["variants"]) == ["triage:weak", "triage:strong"]
    chosen = orjson.loads(_invoke("report", run["run"], "-w", w, "--json",
                                  "--baseline", "triage:strong"))
    assert chosen["comparisons"][0]["baseline"] == "triage:strong"
    wrong = CliRunner().invoke(cli, ["eval", "report", run["run"], "-w", w,
                                     "--baseline", "triage:nope"])
    assert wrong.exit_code == 2
    assert "'triage:nope' is not a variant of the run (variants: triage:weak, triage:strong)" \
        in wrong.output


def test_eval_run_and_report_show_whole_variant_names_at_80_columns(tmp_path: Path) -> None:
    """Piped or in CI the width is 80: both variants showed as `triage…`."""
    ws = eval_workspace(tmp_path / "ws", suites={"small": SMALL})
    w = str(ws.path)
    runner = CliRunner(env={"COLUMNS": "80"})
    ran = runner.invoke(cli, ["eval", "run", "small", "-w", w, "-q"])
    assert ran.exit_code == 0, ran.output
    run_id = ran.output.split("run ")[-1].split(":")[0]
    reported = runner.invoke(cli, ["eval", "report", run_id, "-w", w])
    assert reported.exit_code == 0, reported.output
    for output in (ran.output, reported.output):
        lines = output.splitlines()
        assert all(len(line) <= 80 for line in lines if line[:1] in "┏┃┡│└"), output
        assert "…" not in output
        for name in ("triage:weak", "triage:strong"):
            assert any(name in line for line in lines), output
