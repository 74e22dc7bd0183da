"""Grid: identifiers are never cut, at any width; the rest wraps, or the rows stack."""

from __future__ import annotations

import pytest
from rich.console import Console

from veteran.terminal import Grid

LONG = ["support-triage:llama-3.1-8b-instruct-q4", "support-triage:gpt-4o-mini-2024-07-18"]


def shown(grid: Grid, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(grid)
    return console.export_text().splitlines()


def grid(variants: list[str]) -> Grid:
    out = Grid("variant", "score (95% CI)", "cost", "notes", ids={"variant"},
               right={"score (95% CI)", "cost"}, title="run 01")
    for v in variants:
        out.add_row(v, "0.941 [0.915, 0.962]", "0.000123",
                    "a long free-text note that may wrap anywhere it likes")
    return out


@pytest.mark.parametrize("width", [200, 80, 60, 40])
def test_identifiers_appear_whole_on_one_line_at_any_width(width: int) -> None:
    lines = shown(grid(["triage:strong", "triage:weak", *LONG]), width)
    for name in ["triage:strong", "triage:weak", *LONG]:
        assert any(name in line for line in lines), (name, lines)
    assert all(len(line.rstrip()) <= width for line in lines)
    assert not any("…" in line for line in lines)


def test_a_table_while_it_fits_then_wrapped_then_stacked() -> None:
    wide = shown(grid(LONG), 200)
    assert any(line.startswith("│ support-triage:llama") for line in wide)
    assert sum("0.941 [0.915, 0.962]" in line for line in wide) == 2  # nothing wrapped
    narrow = shown(grid(LONG), 80)  # still a table: the notes wrap, the names do not
    assert any(line.startswith("│ support-triage:llama-3.1-8b-instruct-q4 │") for line in narrow)
    assert not any("a long free-text note that may wrap anywhere it likes" in line
                   for line in narrow)
    stacked = shown(grid(LONG), 40)  # the names and the least of the rest do not fit: blocks
    assert stacked[0] == "run 01"
    assert LONG[0] in stacked and LONG[1] in stacked  # a line of its own heads each block
    assert any(line.split() == ["cost", "0.000123"] for line in stacked)


def test_bad_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="no column"):
        Grid("a", ids={"b"})
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        Grid("a").add_row("x", "y")
