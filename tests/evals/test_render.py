"""The HTML report: run metadata, a legend on every chart, one colour per variant throughout,
a variant without a cost still drawn, and the failures with input, expected and output."""

from __future__ import annotations

import re
from collections import defaultdict
from html import unescape

import pytest

from veteran.evals import render, report
from veteran.evals.runs import Result

VARIANTS = ["triage:strong", "triage:weak", "up/gpt-x"]
RUN = {
    "id": "01RUN", "suite": "tickets", "status": "finished", "started_at": 1_767_225_600.0,
    "finished_at": 1_767_225_642.5, "results": 12,
    "config": {
        "suite": {"description": "Ticket triage", "dataset": {"file": "evals/tickets.jsonl"},
                  "graders": {"label": {"type": "exact"}}},
        "variants": VARIANTS, "epochs": 1, "samples": 4,
        "models": {"triage:strong": "m/strong", "triage:weak": "w/weak",
                   "up/gpt-x": "up/gpt-x"},
        "veteran": {"version": "0.1.0", "commit": "0123456789abcdef"},
    },
}


def _results() -> list[Result]:
    out = []
    for i, (channel, answer) in enumerate([("chat", "billing"), ("email", "technical"),
                                           ("chat", "account"), ("email", "shipping")]):
        question = [{"role": "user", "content": f"ticket {i}: my {answer} question"}]
        for variant in VARIANTS:
            right = variant == "triage:strong" or (variant == "triage:weak" and i % 2 == 0)
            text = answer if right else "billing" if answer != "billing" else "account"
            out.append(Result(
                f"s{i}", variant, 0,
                {"text": text, "tool_calls": [], "error": None, "metadata": {"channel": channel},
                 "input": question, "reference": answer},
                {"label": {"value": float(right), "passed": right,
                           **({} if right else {"explanation": f"said {text}"})}},
                latency_ms=10.0, cost=None if variant == "triage:weak" else 0.001 * (i + 1)))
    return out


@pytest.fixture(scope="module")
def page() -> str:
    results = _results()
    summary = report.summarize(results, variants=VARIANTS)
    return render.html(summary, RUN, report.failures(results, variants=VARIANTS))


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, re.DOTALL)


def test_every_chart_has_a_legend_naming_each_variant(page: str) -> None:
    charts = _svgs(page)
    assert len(charts) == 3  # interval, cost, by channel
    for chart in charts:
        legend = re.findall(r'<g class="legend" data-variant="([^"]+)">', chart)
        assert [unescape(v) for v in legend] == VARIANTS
    assert "triage:strong (baseline)" in page


def test_a_variant_has_one_colour_on_every_chart_and_table(page: str) -> None:
    colours: dict[str, set[str]] = defaultdict(set)
    for variant, body in re.findall(r'data-variant="([^"]+)">(.*?)</g>', page, re.DOTALL):
        colours[unescape(variant)] |= {c for c in re.findall(r'(?:fill|stroke)="(#[0-9a-f]{6})"',
                                                             body) if c != "#ffffff"}
    palette = render.palette({"variants": dict.fromkeys(VARIANTS)})
    for variant in VARIANTS:
        assert colours[variant] == {palette[variant]}, variant
    assert len(set(palette.values())) == len(VARIANTS)
    for variant in VARIANTS:  # the tables' swatches too
        swatch = f'<span class="swatch" style="background:{palette[variant]}"></span>'
        assert f'{swatch}{variant}</th>' in page or f"{swatch}<code>{variant}</code>" in page


def test_a_variant_without_a_cost_is_drawn_marked_no_cost(page: str) -> None:
    (cost,) = [svg for svg in _svgs(page) if "cost per call" in svg]
    drawn = re.findall(r'<g class="mark" data-variant="([^"]+)">', cost)
    assert drawn == VARIANTS  # none dropped
    assert "triage:weak (no cost)" in cost
    assert "no cost recorded" in cost


def test_failures_show_input_expected_and_output(page: str) -> None:
    table = page.split("<h2>Failures (6)</h2>")[1]
    assert "<th>input</th><th>expected</th><th>variant</th><th>output</th>" in table
    rows = re.findall(r"<tr><td.*?</tr>", table, re.DOTALL)
    assert len(rows) == 6  # weak fails 2 samples, up/gpt-x all 4
    assert "s0" in rows[0] and "up/gpt-x" in rows[0]
    cells = re.findall(r'<td class="text"[^>]*>(.*?)</td>', rows[0], re.DOTALL)
    assert cells[:3] == ["ticket 0: my billing question", "billing", "account"]
    assert "said account" in cells[3]
    # s1: both failing variants under one input and expected answer
    assert '<td class="name" rowspan="2"><code>s1</code>' in rows[1]
    assert "triage:weak" in rows[1] and "up/gpt-x" in rows[2] and "ticket 1" not in rows[2]


def test_run_metadata(page: str) -> None:
    meta = page.split('<section class="meta">')[1].split("</section>")[0]
    for shown in ("01RUN", "tickets", "Ticket triage", "2026-01-01 00:00:00 UTC",
                  "2026-01-01 00:00:42 UTC", "took 42.5 s", "evals/tickets.jsonl", "4 samples",
                  "<dt>Epochs</dt><dd>1</dd>", "0.1.0 (0123456789ab)", "m/strong", "w/weak"):
        assert shown in meta, shown
    for variant in VARIANTS:
        assert f"<code>{variant}</code>" in meta


def test_the_page_uses_the_width_and_loads_nothing(page: str) -> None:
    assert "max-width:1600px" in page and "grid-template-columns:repeat(auto-fit" in page
    assert all('width="100%"' in svg for svg in _svgs(page))
    assert "<script" not in page and not re.search(r"(src|href)\s*=", page)
