"""Showing a summary (report.summarize): tables for the terminal, a self-contained HTML page.

The HTML report draws its plots as inline SVG from this module's own small code: no script,
no stylesheet or font from a CDN, so it opens offline and can be attached to a ticket or pasted
into a review.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import Any

from veteran.terminal import Grid

# Tableau 10: told apart by most colour-blind readers; a variant's colour is its place in the
# run's order, on every chart and table of the page.
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
          "#ff9da7", "#9c755f", "#bab0ac"]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(summary: dict[str, Any], title: str = "") -> Grid:
    """One row per variant, in the run's order; variant names are never cut."""
    numbers = [h for g in summary["graders"] for h in (f"{g} (95% CI)", f"{g} pass@k")]
    numbers += ["cost", "p50 ms", "errors"]
    out = Grid("variant", *numbers, ids={"variant"}, right=numbers, title=title or None)
    for variant, entry in summary["variants"].items():
        cells = [variant]
        for grader in summary["graders"]:
            est = entry["graders"].get(grader)
            cells.append("-" if est is None else
                         f"{est['mean']:.3f} [{est['low']:.3f}, {est['high']:.3f}]")
            pk = entry["pass_at_k"].get(grader) or {}
            cells.append(" ".join(f"@{k}={v:.3f}" for k, v in pk.items()) or "-")
        cells += [_fmt(entry["cost"], 6), _fmt(entry["latency_p50_ms"], 1), str(entry["errors"])]
        out.add_row(*cells)
    return out


def comparisons_table(summary: dict[str, Any]) -> Grid:
    numbers = ["diff [95% CI]", "p", "McNemar p", "n"]
    out = Grid("candidate", "baseline", "grader", *numbers,
               ids={"candidate", "baseline", "grader"}, right=numbers,
               title="candidate - baseline (paired by sample)")
    for c in summary["comparisons"]:
        out.add_row(c["candidate"], c["baseline"], c["grader"],
                    f"{c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]",
                    f"{c['p_value']:.3g}", _fmt(c["mcnemar_p"], 3), str(c["n"]))
    return out


# The HTML report. Every chart draws each variant in the colour it has everywhere on the page
# (its place in the run's order) and carries its own legend, so a chart pasted alone still says
# which is which.

FONT = 12
CHAR_W = 7.0  # px per character at 12px sans-serif, for laying out labels without a browser
FAILURES_SHOWN = 200
LONG_TEXT = 400  # characters shown before "more"


def palette(summary: dict[str, Any]) -> dict[str, str]:
    """variant -> its colour, by its place in the run's order (the same in every chart)."""
    return {v: COLORS[i % len(COLORS)] for i, v in enumerate(summary["variants"])}


def _text(x: float, y: float, text: str, *, size: int = FONT, anchor: str = "start",
          fill: str = "#222", weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}">{escape(text)}</text>')


def _legend(summary: dict[str, Any], width: float, only: list[str] | None = None
            ) -> tuple[list[str], float]:
    """Swatches and names, in rows that fit `width`; (parts, height used)."""
    colors = palette(summary)
    parts: list[str] = []
    x, y = 0.0, 14.0
    for variant in only if only is not None else list(colors):
        label = variant + (" (baseline)" if variant == summary.get("baseline") else "")
        w = 18 + len(label) * CHAR_W + 16
        if x and x + w > width:
            x, y = 0.0, y + 18
        parts.append(f'<g class="legend" data-variant="{escape(variant)}">'
                     f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" rx="2" '
                     f'fill="{colors[variant]}"/>{_text(x + 18, y, label)}</g>')
        x += w
    return parts, y + 12


def _svg(width: float, height: float, parts: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
            f'font-family="system-ui, sans-serif">{"".join(parts)}</svg>')


def _label_width(names: list[str]) -> float:
    return min(max([len(n) for n in names] + [6]) * CHAR_W + 16, 320)


def _axis(x0: float, x1: float, y: float, lo: float, hi: float, top: float,
          fmt: str = "{:.2f}") -> list[str]:
    parts = [f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" stroke="#888"/>']
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        x = x0 + (x1 - x0) * i / 4
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{y:.1f}" '
                     'stroke="#e4e4e4"/>')
        parts.append(_text(x, y + 14, fmt.format(value), size=10, anchor="middle", fill="#555"))
    return parts


def _interval_plot(summary: dict[str, Any], grader: str) -> str:
    colors = palette(summary)
    rows = [(v, e["graders"][grader]) for v, e in summary["variants"].items()
            if grader in e["graders"]]
    width = 720.0
    legend, top = _legend(summary, width)
    left = _label_width([v for v, _ in rows])
    right = width - 170
    lo: float = min([0.0, *(float(est["low"]) for _, est in rows)])
    hi: float = max([1.0, *(float(est["high"]) for _, est in rows)])

    def x(value: float) -> float:
        return left + (value - lo) / ((hi - lo) or 1.0) * (right - left)

    top += 10
    bottom = top + 26 * len(rows)
    parts = [*legend, *_axis(left, right, bottom, lo, hi, top)]
    for i, (variant, est) in enumerate(rows):
        y = top + 14 + i * 26
        color = colors[variant]
        parts.append(
            f'<g class="mark" data-variant="{escape(variant)}">'
            + _text(left - 8, y + 4, variant, anchor="end")
            + f'<line x1="{x(est["low"]):.1f}" y1="{y}" x2="{x(est["high"]):.1f}" y2="{y}" '
            f'stroke="{color}" stroke-width="4" stroke-linecap="round"/>'
            f'<circle cx="{x(est["mean"]):.1f}" cy="{y}" r="6" fill="{color}" stroke="#fff">'
            f'<title>{escape(variant)}: {est["mean"]:.3f} [{est["low"]:.3f}, '
            f'{est["high"]:.3f}], n={est["n"]}</title></circle>'
            + _text(right + 12, y + 4, f'{est["mean"]:.3f} [{est["low"]:.3f}, '
                    f'{est["high"]:.3f}]', size=11, fill="#333")
            + "</g>")
    return _svg(width, bottom + 24, parts, f"{grader}: mean with 95% interval per variant")


def _slice_plot(summary: dict[str, Any], grader: str, field: str) -> str:
    colors = palette(summary)
    groups = summary["slices"][grader][field]
    variants = list(summary["variants"])
    width = 720.0
    legend, top = _legend(summary, width)
    left = _label_width(list(groups))
    right = width - 90
    bar = 14
    top += 10
    y = top
    bars: list[str] = []
    for value, row in groups.items():
        shown = [v for v in variants if v in row]
        bars.append(_text(left - 8, y + bar * len(shown) / 2 + 8, value, anchor="end"))
        for variant in shown:
            est = row[variant]
            w = max(0.0, min(1.0, est["mean"])) * (right - left)
            bars.append(
                f'<g class="mark" data-variant="{escape(variant)}"><rect x="{left}" '
                f'y="{y + 2}" width="{w:.1f}" height="{bar}" fill="{colors[variant]}">'
                f'<title>{escape(variant)}, {escape(field)} = {escape(value)}: '
                f'{est["mean"]:.3f} [{est["low"]:.3f}, {est["high"]:.3f}] (n={est["n"]})'
                f'</title></rect>'
                + _text(left + w + 6, y + bar, f'{est["mean"]:.2f} (n={est["n"]})', size=10,
                        fill="#333") + "</g>")
            y += bar + 2
        y += 10
    parts = [*legend, *_axis(left, right, y, 0.0, 1.0, top), *bars]  # grid lines under bars
    return _svg(width, y + 24, parts, f"{grader} by {field}, per variant")


def _cost_plot(summary: dict[str, Any], grader: str) -> str:
    """Score against cost per call. A variant without a cost is not dropped: it sits in a
    "no cost" band left of the axis, drawn hollow."""
    colors = palette(summary)
    points = [(v, e["cost_per_call"], e["graders"][grader]["mean"])
              for v, e in summary["variants"].items() if grader in e["graders"]]
    width, height = 720.0, 300.0
    legend, top = _legend(summary, width)
    top += 14
    band, left, right, bottom = 30.0, 220.0, width - 30, height - 40
    costs = [c for _, c, _ in points if c is not None]
    max_cost = max(costs, default=0.0) * 1.15 or 1.0  # room right of the dearest point
    parts = [*legend, *_axis(left, right, bottom, 0.0, max_cost, top, "{:.2g}"),
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#888"/>',
             f'<rect x="{band}" y="{top}" width="{left - band - 24}" height="{bottom - top}" '
             'fill="#f4f4f4"/>',
             _text((band + left - 24) / 2, bottom + 14, "no cost", size=10, anchor="middle",
                   fill="#555"),
             _text((left + right) / 2, bottom + 32, "cost per call", size=11, anchor="middle",
                   fill="#333")]
    for i in range(5):
        y = bottom - (bottom - top) * i / 4
        parts.append(_text(left - 6, y + 4, f"{i / 4:.2f}", size=10, anchor="end", fill="#555"))
    parts.append(f'<text x="12" y="{(top + bottom) / 2:.0f}" font-size="11" fill="#333" '
                 f'transform="rotate(-90 12 {(top + bottom) / 2:.0f})" text-anchor="middle">'
                 f'{escape(grader)}</text>')
    taken: list[tuple[float, float]] = []
    for variant, cost, quality in points:
        y = bottom - max(0.0, min(1.0, quality)) * (bottom - top)
        if cost is None:  # hollow, in the band; its label above it
            cx, fill, label = (band + left - 24) / 2, "#fff", f"{variant} (no cost)"
            anchor, dx, ly, step = "middle", 0.0, y - 12, -14
        else:
            cx = left + cost / max_cost * (right - left)
            fill, label, ly, step = colors[variant], variant, y + 4, 14
            anchor = "end" if cx > right - 160 else "start"
            dx = -10.0 if anchor == "end" else 10.0
        while any(abs(ly - ty) < 14 and abs(cx - tx) < 120 for tx, ty in taken):
            ly += step  # keep the labels of points at one place apart
        taken.append((cx, ly))
        what = "no cost recorded" if cost is None else f"cost per call {cost:.6g}"
        parts.append(
            f'<g class="mark" data-variant="{escape(variant)}">'
            f'<circle cx="{cx:.1f}" cy="{y:.1f}" r="7" fill="{fill}" '
            f'stroke="{colors[variant]}" stroke-width="3"><title>{escape(variant)}: {what}, '
            f'{escape(grader)} {quality:.3f}</title></circle>'
            + _text(cx + dx, ly, label, size=11, anchor=anchor) + "</g>")
    return _svg(width, height, parts, f"{grader} against cost per call, per variant")


def _clip(text: str) -> str:
    """Escaped text; past LONG_TEXT characters the rest folds away under "more"."""
    if len(text) <= LONG_TEXT:
        return escape(text)
    return (f"{escape(text[:LONG_TEXT])}<details><summary>more ({len(text) - LONG_TEXT} "
            f"characters)</summary>{escape(text[LONG_TEXT:])}</details>")


def _swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _metadata(summary: dict[str, Any], run: dict[str, Any]) -> str:
    config = run.get("config") or {}
    suite = config.get("suite") or {}
    colors = palette(summary)
    models = config.get("models") or {}
    variants = "".join(
        f"<li>{_swatch(colors[v])}<code>{escape(v)}</code>"
        + (f" → <code>{escape(models[v])}</code>" if v in models else "")
        + (" <em>baseline</em>" if v == summary.get("baseline") else "") + "</li>"
        for v in summary["variants"])
    graders = ", ".join(f"<code>{escape(name)}</code> ({escape(str(table.get('type')))})"
                        for name, table in (suite.get("graders") or {}).items()) or ", ".join(
        f"<code>{escape(g)}</code>" for g in summary["graders"])
    dataset = suite.get("dataset") or {}
    source = dataset.get("file") or (f"trajectories of {dataset['function']}"
                                     if dataset.get("function") else "-")
    started, finished = run.get("started_at"), run.get("finished_at")
    took = f"{finished - started:.1f} s" if started and finished else "-"
    code = config.get("veteran") or {}
    version = code.get("version", "not recorded") + (
        f" ({code['commit'][:12]})" if code.get("commit") else "")
    rows = [
        ("Run", f"<code>{escape(str(run.get('id', '-')))}</code> "
                f"({escape(str(run.get('status', '-')))})"),
        ("Suite", f"<code>{escape(str(run.get('suite', '-')))}</code>"
         + (f": {escape(suite['description'])}" if suite.get("description") else "")),
        ("Started", _when(started)), ("Finished", f"{_when(finished)} (took {took})"),
        ("Dataset", f"<code>{escape(str(source))}</code>, {config.get('samples', '-')} samples"),
        ("Epochs", str(summary["epochs"])), ("Results", str(run.get("results", "-"))),
        ("Graders", graders), ("veteran", escape(version)),
        ("Report made", _when(time.time())),
    ]
    cells = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return (f'<section class="meta"><dl>{cells}</dl><div><h3>Variants</h3><ul class="variants">'
            f"{variants}</ul></div></section>")


def _summary_table(summary: dict[str, Any]) -> str:
    colors = palette(summary)
    head = "".join(f"<th>{escape(g)} <small>mean [95% CI]</small></th><th>pass@k</th>"
                   for g in summary["graders"])
    rows = []
    for variant, e in summary["variants"].items():
        cells = []
        for g in summary["graders"]:
            est = e["graders"].get(g)
            cells.append("<td>-</td>" if est is None else
                         f"<td>{est['mean']:.3f} [{est['low']:.3f}, {est['high']:.3f}]</td>")
            pk = e["pass_at_k"].get(g) or {}
            cells.append(f"<td>{' '.join(f'@{k}={v:.3f}' for k, v in pk.items()) or '-'}</td>")
        cost = "no cost" if e["cost"] is None else f"{e['cost']:.6f}"
        per_call = "-" if e["cost_per_call"] is None else f"{e['cost_per_call']:.6g}"
        rows.append(f'<tr><th class="name">{_swatch(colors[variant])}{escape(variant)}</th>'
                    f"{''.join(cells)}<td>{cost}</td><td>{per_call}</td>"
                    f"<td>{_fmt(e['latency_p50_ms'], 1)}</td><td>{e['calls']}</td>"
                    f"<td>{e['errors']}</td></tr>")
    return (f'<table class="numbers"><tr><th>variant</th>{head}<th>cost</th><th>cost per call'
            f"</th><th>p50 ms</th><th>calls</th><th>errors</th></tr>{''.join(rows)}</table>")


def _comparisons(summary: dict[str, Any]) -> str:
    if not summary["comparisons"]:
        return ""
    colors = palette(summary)
    rows = "".join(
        f'<tr><th class="name">{_swatch(colors[c["candidate"]])}{escape(c["candidate"])}</th>'
        f'<td class="name">{escape(c["baseline"])}</td><td class="name">{escape(c["grader"])}'
        f'</td><td>{c["diff"]:+.3f} [{c["low"]:+.3f}, {c["high"]:+.3f}]</td>'
        f'<td>{c["p_value"]:.3g}</td><td>{_fmt(c["mcnemar_p"], 3)}</td><td>{c["n"]}</td></tr>'
        for c in summary["comparisons"])
    return ("<h2>Paired differences: candidate − baseline</h2>"
            '<table class="numbers"><tr><th>candidate</th><th>baseline</th><th>grader</th>'
            "<th>diff [95% CI]</th><th>p</th><th>McNemar p</th><th>n</th></tr>"
            f"{rows}</table>")


def _failures(summary: dict[str, Any], failures: list[dict[str, Any]]) -> str:
    colors = palette(summary)
    head = (f"<h2>Failures ({len(failures)})</h2><p class='note'>Each answer a grader failed or "
            "whose call failed, sample by sample: the input, the expected answer and the "
            "output side by side.")
    if not failures:
        return head + " None.</p>"
    if len(failures) > FAILURES_SHOWN:
        head += f" The first {FAILURES_SHOWN} are shown."
    shown = failures[:FAILURES_SHOWN]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for f in shown:  # one sample's input and expected answer once, its variants' rows under it
        groups.setdefault((f["sample_id"], f["epoch"]), []).append(f)
    rows = []
    epochs = summary["epochs"] > 1
    for (sample, epoch), group in groups.items():
        for n, f in enumerate(group):
            output = f"call failed: {f['error']}" if f.get("error") else f["output"]
            why = "".join(f"<div><code>{escape(g)}</code> {escape(reason)}</div>"
                          for g, reason in f["failed"].items())
            span = f' rowspan="{len(group)}"' if len(group) > 1 else ""
            first = "" if n else (
                f'<td class="name"{span}><code>{escape(sample)}</code>'
                + (f" #{epoch}" if epochs else "") + f'</td><td class="text"{span}>'
                f'{_clip(f["input"])}</td><td class="text"{span}>{_clip(f["expected"])}</td>')
            rows.append(
                f"<tr>{first}<td class=\"name\">{_swatch(colors.get(f['variant'], '#999'))}"
                f"{escape(f['variant'])}</td><td class=\"text\">{_clip(output)}</td>"
                f'<td class="text">{why}</td></tr>')
    return (head + "</p><table class='failures'><tr><th>sample</th><th>input</th>"
            "<th>expected</th><th>variant</th><th>output</th><th>failed</th></tr>"
            + "".join(rows) + "</table>")


STYLE = """
body{font-family:system-ui,sans-serif;color:#222;margin:0;padding:24px 32px;line-height:1.4}
main{max-width:1600px;margin:0 auto}
h1{margin:0 0 4px;font-size:24px}h2{margin:28px 0 8px;font-size:19px}
h3{margin:0 0 6px;font-size:14px}
.sub{color:#555;margin:0 0 16px}
.meta{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:24px;
 background:#f7f7f8;border:1px solid #e3e3e6;border-radius:6px;padding:14px 18px}
.meta dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:3px 14px;margin:0}
.meta dt{color:#555}.meta dd{margin:0}
.variants{list-style:none;margin:0;padding:0}.variants li{margin:2px 0}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;
 vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border:1px solid #d9d9de;padding:4px 8px;vertical-align:top}
th{background:#f2f2f5;text-align:left;font-weight:600}
table.numbers td{text-align:right;font-variant-numeric:tabular-nums}
th.name{background:none;font-weight:600;white-space:nowrap}
td.name{text-align:left!important;white-space:nowrap}
td.text{white-space:pre-wrap;word-break:break-word;max-width:36em}
table.failures td.text{font-family:ui-monospace,monospace;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px 28px;
 align-items:start}
figure{margin:0;border:1px solid #e3e3e6;border-radius:6px;padding:10px 12px}
figcaption{font-weight:600;margin-bottom:6px}
.note{color:#555}
details{display:inline}summary{cursor:pointer;color:#36c}
"""


def html(summary: dict[str, Any], run: dict[str, Any],
         failures: list[dict[str, Any]] | None = None) -> str:
    """The run as one self-contained page: its metadata, the scores, the paired differences,
    the charts (each with its legend, a variant in one colour throughout) and the failures.
    `run` is `RunInfo.to_json()`; `failures` is `report.failures(...)`."""
    title = f"{run.get('suite', 'eval')}: run {run.get('id', '')}"
    body = [f"<h1>Eval report: {escape(str(run.get('suite', '')))}</h1>",
            f"<p class='sub'>run <code>{escape(str(run.get('id', '')))}</code>; "
            f"{len(summary['variants'])} variants compared with "
            f"<code>{escape(str(summary.get('baseline')))}</code></p>",
            _metadata(summary, run), "<h2>Scores</h2>", _summary_table(summary),
            _comparisons(summary)]
    for grader in summary["graders"]:
        figures = [("Mean with 95% interval", _interval_plot(summary, grader)),
                   ("Score against cost per call", _cost_plot(summary, grader))]
        figures += [(f"By {field}", _slice_plot(summary, grader, field))
                    for field in summary["slices"].get(grader, {})]
        body.append(f"<h2>{escape(grader)}</h2><div class='charts'>")
        body += [f"<figure><figcaption>{escape(grader)}: {escape(caption)}</figcaption>"
                 f"{svg}</figure>" for caption, svg in figures]
        body.append("</div>")
    if failures is not None:
        body.append(_failures(summary, failures))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
            f"{''.join(body)}</main></body></html>\n")
