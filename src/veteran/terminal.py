"""Tables for the terminal that never cut an identifier.

rich shortens a cell that does not fit with an ellipsis, so at 80 columns (the width when output
is piped or in CI) the variants `triage:strong` and `triage:weak` both showed as `triage…`. A
`Grid` names its identifier columns (variants, ids, names): they keep their full width and never
wrap. The other columns share what is left and fold onto more lines. When the identifiers and
the narrowest readable other columns still do not fit, the rows are stacked: one block per row,
headed by its first identifier, then one `column  value` line per cell.

The layout is chosen when the grid is printed, for that console's width, so one `Grid` prints
well on a wide terminal, at 80 columns and in a log.
"""

from __future__ import annotations

from collections.abc import Collection

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text

__all__ = ["Grid"]

MIN_FOLD = 6  # a column of text is never narrower than this, nor than its longest word
MAX_WORD = 24  # up to this long (a URL may be longer: it folds)


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


class Grid:
    """Rows of plain-text cells under headers; `ids` are the headers of identifier columns,
    `right` those aligned right (numbers)."""

    def __init__(self, *headers: str, ids: Collection[str] = (), right: Collection[str] = (),
                 title: str | None = None) -> None:
        unknown = (set(ids) | set(right)) - set(headers)
        if unknown:
            raise ValueError(f"no column {sorted(unknown)} among {list(headers)}")
        self.headers = list(headers)
        self.ids = [h in ids for h in headers]
        self.right = [h in right for h in headers]
        self.title = title
        self.rows: list[list[str]] = []

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{len(cells)} cells for {len(self.headers)} columns")
        self.rows.append(list(cells))

    def widths(self, width: int) -> list[int] | None:
        """Each column's width (cells, padding not included) for a table `width` wide, or None
        when only stacking fits. None of an identifier column is ever narrower than its
        longest value."""
        columns = list(zip(*([self.headers, *self.rows]), strict=True))
        natural = [max(cell_len(line) for cell in column for line in cell.splitlines() or [""])
                   for column in columns]
        room = width - (3 * len(columns) + 1)  # borders and one space of padding each side
        if sum(natural) <= room:
            return natural
        least = [natural[i] if self.ids[i] else
                 min(natural[i], max(MIN_FOLD, min(MAX_WORD, max(map(_longest_word, column)))))
                 for i, column in enumerate(columns)]
        if sum(least) > room:
            return None
        # the room left goes to the columns that want least first: short cells (numbers)
        # stay whole, and the longest text is the one that wraps
        given = list(least)
        spare = room - sum(least)
        for i in sorted(range(len(columns)), key=lambda i: natural[i] - least[i]):
            extra = min(spare, natural[i] - least[i])
            given[i] += extra
            spare -= extra
        return given

    def table(self, widths: list[int] | None = None) -> Table:
        columns = [
            Column(header, justify="right" if right else "left", no_wrap=ident,
                   overflow="fold", min_width=None if widths is None else widths[i],
                   max_width=None if widths is None else widths[i])
            for i, (header, ident, right) in enumerate(
                zip(self.headers, self.ids, self.right, strict=True))
        ]
        out = Table(*columns, title=self.title)
        for row in self.rows:
            out.add_row(*(Text(cell) for cell in row))
        return out

    def stacked(self) -> Group:
        """One block per row: its first identifier alone on a line, then the other cells."""
        head = self.ids.index(True) if any(self.ids) else 0
        key_width = max(cell_len(h) for h in self.headers)
        parts: list[RenderableType] = []
        if self.title:
            parts.append(Text(self.title, style="italic"))
        for n, row in enumerate(self.rows):
            if n or self.title:
                parts.append(Text(""))
            parts.append(Text(row[head], style="bold"))
            lines = Table.grid(Column(min_width=key_width, no_wrap=True), Column(overflow="fold"),
                               padding=(0, 2, 0, 0))
            for i, (header, cell) in enumerate(zip(self.headers, row, strict=True)):
                if i != head:
                    lines.add_row(Text(header, style="dim"), Text(cell))
            parts.append(Padding(lines, (0, 0, 0, 2)))
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths(options.max_width)
        yield self.stacked() if widths is None else self.table(widths)
