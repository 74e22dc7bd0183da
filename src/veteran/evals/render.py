"""Showing a summary (report.summarize): a rich table for the terminal, a self-contained HTML page.

The HTML report draws its plots as inline SVG from this module's own small code: no script,
no stylesheet or font from a CDN, so it opens offline and can be attached to a ticket.
"""

from __future__ import annotations

from html import escape
from typing import Any

from veteran.terminal import Grid

W, BAR_H, PAD = 640, 22, 150
COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"]


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


def _interval_plot(summary: dict[str, Any], grader: str) -> str:
    rows = [(v, e["graders"][grader]) for v, e in summary["variants"].items()
            if grader in e["graders"]]
    lo = min([0.0, *(est["low"] for _, est in rows)])
    hi = max([1.0, *(est["high"] for _, est in rows)])
    span = (hi - lo) or 1.0
    plot_w = W - PAD - 20

    def x(value: float) -> float:
        return float(PAD + (value - lo) / span * plot_w)

    height = BAR_H * len(rows) + 30
    parts = [f'<line x1="{x(lo):.1f}" y1="{height - 20}" x2="{x(hi):.1f}" y2="{height - 20}" '
             'stroke="#999"/>',
             f'<text x="{x(lo):.1f}" y="{height - 5}" font-size="10">{lo:.2f}</text>',
             f'<text x="{x(hi) - 24:.1f}" y="{height - 5}" font-size="10">{hi:.2f}</text>']
    for i, (variant, est) in enumerate(rows):
        y = 12 + i * BAR_H
        color = COLORS[i % len(COLORS)]
        parts += [
            f'<text x="4" y="{y + 4}" font-size="12">{escape(variant)}</text>',
            f'<line x1="{x(est["low"]):.1f}" y1="{y}" x2="{x(est["high"]):.1f}" y2="{y}" '
            f'stroke="{color}" stroke-width="3"><title>{est["low"]:.3f} to {est["high"]:.3f}'
            '</title></line>',
            f'<circle cx="{x(est["mean"]):.1f}" cy="{y}" r="5" fill="{color}">'
            f'<title>{escape(variant)}: {est["mean"]:.3f}</title></circle>',
        ]
    return _svg(height, parts)


def _slice_plot(summary: dict[str, Any], grader: str, field: str) -> str:
    table_ = summary["slices"][grader][field]
    variants = list(summary["variants"])
    group_h = BAR_H * len(variants) // 2 + 12
    height = group_h * len(table_) + 10
    plot_w = W - PAD - 60
    parts = []
    for g, (value, row) in enumerate(table_.items()):
        top = 6 + g * group_h
        parts.append(f'<text x="4" y="{top + 12}" font-size="12">{escape(value)}</text>')
        for i, variant in enumerate(variants):
            est = row.get(variant)
            if est is None:
                continue
            y = top + i * (BAR_H // 2)
            width = max(0.0, min(1.0, est["mean"])) * plot_w
            parts.append(f'<rect x="{PAD}" y="{y}" width="{width:.1f}" height="{BAR_H // 2 - 2}" '
                         f'fill="{COLORS[i % len(COLORS)]}"><title>{escape(variant)}: '
                         f'{est["mean"]:.3f} (n={est["n"]})</title></rect>')
            parts.append(f'<text x="{PAD + width + 4:.1f}" y="{y + 9}" font-size="10">'
                         f'{est["mean"]:.2f}</text>')
    return _svg(height, parts)


def _cost_plot(summary: dict[str, Any], grader: str) -> str:
    points = [(v, e["cost_per_call"], e["graders"][grader]["mean"])
              for v, e in summary["variants"].items()
              if e["cost_per_call"] is not None and grader in e["graders"]]
    if not points:
        return "<p>No prices configured: cost versus quality needs model prices.</p>"
    height = 260
    max_cost = max(c for _, c, _ in points) or 1.0
    parts = [f'<line x1="{PAD}" y1="230" x2="{W - 20}" y2="230" stroke="#999"/>',
             f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="230" stroke="#999"/>',
             f'<text x="{PAD}" y="250" font-size="10">cost per call (max {max_cost:.6f})</text>',
             f'<text x="4" y="20" font-size="10">{escape(grader)} 1.0</text>',
             '<text x="4" y="230" font-size="10">0.0</text>']
    for i, (variant, c, q) in enumerate(points):
        cx = PAD + c / max_cost * (W - PAD - 60)
        cy = 230 - max(0.0, min(1.0, q)) * 220
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{COLORS[i % 7]}">'
                     f'<title>{escape(variant)}: cost {c:.6f}, {q:.3f}</title></circle>')
        parts.append(f'<text x="{cx + 8:.1f}" y="{cy + 4:.1f}" font-size="11">'
                     f'{escape(variant)}</text>')
    return _svg(height, parts)


def _svg(height: int, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
            f'viewBox="0 0 {W} {height}">{"".join(parts)}</svg>')


def html(summary: dict[str, Any], title: str) -> str:
    body = [f"<h1>{escape(title)}</h1>"]
    head = "".join(f"<th>{escape(g)}</th>" for g in summary["graders"])
    rows = []
    for variant, e in summary["variants"].items():
        cells = "".join(
            "<td>{}</td>".format(
                f"{e['graders'][g]['mean']:.3f} [{e['graders'][g]['low']:.3f}, "
                f"{e['graders'][g]['high']:.3f}]" if g in e["graders"] else "-")
            for g in summary["graders"])
        rows.append(f"<tr><td>{escape(variant)}</td>{cells}<td>{_fmt(e['cost'], 6)}</td>"
                    f"<td>{_fmt(e['latency_p50_ms'], 1)}</td><td>{e['errors']}</td></tr>")
    body.append(f"<table><tr><th>variant</th>{head}<th>cost</th><th>p50 ms</th>"
                f"<th>errors</th></tr>{''.join(rows)}</table>")
    if summary["comparisons"]:
        body.append("<h2>Paired differences (candidate - baseline)</h2><table><tr><th>grader"
                    "</th><th>baseline</th><th>candidate</th><th>diff [95% CI]</th><th>p</th>"
                    "</tr>")
        for c in summary["comparisons"]:
            body.append(f"<tr><td>{escape(c['grader'])}</td><td>{escape(c['baseline'])}</td>"
                        f"<td>{escape(c['candidate'])}</td><td>{c['diff']:+.3f} "
                        f"[{c['low']:+.3f}, {c['high']:+.3f}]</td><td>{c['p_value']:.3g}</td>"
                        "</tr>")
        body.append("</table>")
    for grader in summary["graders"]:
        body.append(f"<h2>{escape(grader)}: score with 95% interval</h2>")
        body.append(_interval_plot(summary, grader))
        for field in summary["slices"].get(grader, {}):
            body.append(f"<h3>{escape(grader)} by {escape(field)}</h3>")
            body.append(_slice_plot(summary, grader, field))
        body.append(f"<h2>Cost versus {escape(grader)}</h2>")
        body.append(_cost_plot(summary, grader))
    style = ("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:"
             "collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
