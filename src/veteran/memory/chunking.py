"""Structure-aware chunking: documents → spans of at most `chunk_tokens` tokens.

Each section (a file, a PDF page, a JSONL record) is cut on its own: no chunk spans two. Inside
a section the text is a row of **atoms**: whole blocks where a block fits the budget, else its
sentences (lines for code, lists and tables), else words. Between two atoms lies a boundary
with a strength: a heading (by level), a paragraph, a sentence, a word; never right after a
heading. A chunk takes as many atoms as fit and ends at the strongest boundary in reach: any
heading, or a weaker boundary once the chunk is half full, so a chunk stops at a section heading
rather than a paragraph, and at a paragraph rather than mid-sentence. Small sections that fit
together share a chunk; the rest of a section cut in pieces ends at the next heading.

No chunk spans two **top-level sections**: those that start at a heading of the shallowest level
that begins a section after some text (a lone title heading above everything, or a heading
right below another, begins none). Two `#` sections are two chunks at least; in a document under
one `# Title`, so are its `##` sections. A chunk is labelled (`metadata["heading"]`) with the
heading path its text sits under: the path shared by every non-heading block in it, so small
subsections that share a chunk are labelled with their parent, not with the first of them.

A chunk that starts inside a heading's section (not at a heading) repeats up to
`overlap_tokens` of the text before it, from a sentence start where one is in reach, so a
thought split across two chunks is found from either. Tokens are counted with the embedder's
tokenizer (`count_tokens`); the content of a chunk gets `chunk_tokens - overlap_tokens`, so with
its overlap it stays within `chunk_tokens`.

Every chunk is a slice of `Document.text`: `text == document.text[start:end]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from veteran.memory.parsers import Block, Document, Section

CountTokens = Callable[[str], int]

SECTION_START = 0  # strengths 1-6: a heading of that level
PARAGRAPH = 7
SENTENCE = 8
WORD = 9
NO_BREAK = 10  # right after a heading: a chunk never ends with one
MIN_FILL = 0.5  # below a heading, a chunk ends early only once it is this full

_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*(?=\s)")
_WORD = re.compile(r"\S+")
_LINE = re.compile(r"[^\n]*\S[^\n]*")
_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]", re.M)


@dataclass(frozen=True, slots=True)
class Piece:
    """A chunk before it is named and embedded."""

    text: str
    start: int
    end: int
    tokens: int
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Atom:
    start: int
    end: int
    strength: int  # of the boundary before this atom
    heading: tuple[str, ...]
    tokens: int
    is_heading: bool = False  # (a piece of) a heading block


class Chunker:
    def __init__(
        self, count_tokens: CountTokens, *, chunk_tokens: int = 200, overlap_tokens: int = 40
    ) -> None:
        if chunk_tokens < 1 or overlap_tokens < 0 or overlap_tokens * 2 > chunk_tokens:
            raise ValueError(
                "need chunk_tokens >= 1 and 0 <= overlap_tokens <= chunk_tokens / 2 "
                f"(got {chunk_tokens} and {overlap_tokens})"
            )
        self.count = count_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.budget = chunk_tokens - overlap_tokens  # for a chunk's own content

    def chunk(self, document: Document) -> list[Piece]:
        pieces: list[Piece] = []
        for section in document.sections:
            pieces += self._section(document, section)
        return pieces

    # one section

    def _section(self, document: Document, section: Section) -> list[Piece]:
        """The section's pieces, cut apart at each top-level heading (the module docstring)."""
        atoms = self._atoms(document.text, section)
        top = min((a.strength for a in atoms[1:] if a.strength <= 6), default=None)
        starts = [0, *(n for n, a in enumerate(atoms) if n and a.strength == top)]
        pieces: list[Piece] = []
        for begin, end in zip(starts, [*starts[1:], len(atoms)], strict=True):
            pieces += self._pieces(document, section, atoms[begin:end])
        return pieces

    def _pieces(self, document: Document, section: Section, atoms: list[_Atom]) -> list[Piece]:
        text = document.text
        pieces: list[Piece] = []
        i = 0
        previous_start = -1
        while i < len(atoms):
            j, tokens = self._furthest(text, atoms, i)
            continued = atoms[i].strength >= PARAGRAPH  # the rest of a section cut before
            heading = next(
                (k for k in range(i + 1, min(j + 2, len(atoms))) if atoms[k].strength <= 6), None
            )
            if continued and heading is not None:
                k = heading  # it ends where its section does
            elif j == len(atoms) - 1:
                k = len(atoms)
            else:
                k = self._best_break(atoms, i, j, tokens)
            start, end = atoms[i].start, atoms[k - 1].end
            if pieces and atoms[i].strength >= PARAGRAPH and self.overlap_tokens:
                start = self._overlap_start(text, atoms, i, end, floor=previous_start)
            previous_start = atoms[i].start
            span = text[start:end]
            metadata = {
                **document.metadata, **section.metadata,
                "heading": list(_label(atoms[i:k])), "start": start, "end": end,
            }
            pieces.append(Piece(span, start, end, self.count(span), metadata))
            i = k
        return pieces

    def _atoms(self, text: str, section: Section) -> list[_Atom]:
        atoms: list[_Atom] = []
        previous: Block | None = None
        for block in section.blocks:
            if previous is None:
                strength = SECTION_START
            elif previous.kind == "heading":
                strength = NO_BREAK
            elif block.kind == "heading":
                strength = block.level
            else:
                strength = PARAGRAPH
            previous = block
            tokens = self.count(text[block.start:block.end])
            is_heading = block.kind == "heading"
            if tokens <= self.budget:
                atoms.append(_Atom(block.start, block.end, strength, block.heading, tokens,
                                   is_heading))
                continue
            for n, (s, e, t, inner) in enumerate(self._split(text, block)):
                atoms.append(_Atom(s, e, strength if n == 0 else inner, block.heading, t,
                                   is_heading))
        return atoms

    def _split(self, text: str, block: Block) -> list[tuple[int, int, int, int]]:
        """Spans (start, end, tokens, strength) cutting a block over the budget: code and tables
        by lines, lists by items, prose by sentences; a piece still over the budget by
        sentences (list items), then words, then characters."""
        if block.kind in ("code", "table"):
            spans = _lines(text, block.start, block.end)
        elif block.kind == "list":
            spans = _items(text, block.start, block.end)
        else:
            spans = _sentences(text, block.start, block.end)
        out: list[tuple[int, int, int, int]] = []
        for s, e in spans:
            tokens = self.count(text[s:e])
            if tokens <= self.budget:
                out.append((s, e, tokens, SENTENCE))
                continue
            inner = _sentences(text, s, e) if block.kind == "list" else [(s, e)]
            for inner_start, inner_end in inner:
                tokens = self.count(text[inner_start:inner_end])
                if tokens <= self.budget:
                    out.append((inner_start, inner_end, tokens, SENTENCE))
                    continue
                strength = SENTENCE
                for word in _WORD.finditer(text, inner_start, inner_end):
                    for piece in self._cut(text, word.start(), word.end()):
                        out.append((*piece, strength))
                        strength = WORD
        return out

    def _cut(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """A word over the budget (a long URL, base64...) in pieces of as many characters as fit."""
        out = []
        while start < end:
            tokens = self.count(text[start:end])
            if tokens <= self.budget:
                out.append((start, end, tokens))
                break
            low, high = start + 1, end  # text[start:low] fits (one character, at least)
            while high - low > 1:
                middle = (low + high) // 2
                if self.count(text[start:middle]) <= self.budget:
                    low = middle
                else:
                    high = middle
            out.append((start, low, self.count(text[start:low])))
            start = low
        return out

    def _furthest(self, text: str, atoms: list[_Atom], i: int) -> tuple[int, int]:
        """The last atom j such that atoms i..j fit the budget, and their tokens (galloping,
        then bisecting: a few tokenizer calls on text about the budget's size)."""
        start = atoms[i].start
        good, good_tokens = i, atoms[i].tokens
        bad = None
        step = 1
        while good < len(atoms) - 1:
            probe = min(good + step, len(atoms) - 1)
            tokens = self.count(text[start:atoms[probe].end])
            if tokens > self.budget:
                bad = probe
                break
            good, good_tokens = probe, tokens
            step *= 2
        if bad is not None:
            while bad - good > 1:
                probe = (good + bad) // 2
                tokens = self.count(text[start:atoms[probe].end])
                if tokens <= self.budget:
                    good, good_tokens = probe, tokens
                else:
                    bad = probe
        return good, good_tokens

    def _best_break(self, atoms: list[_Atom], i: int, j: int, tokens: int) -> int:
        """Where the chunk of atoms i..j (`tokens` in all, within the budget) should end: the
        index of the first atom left for the next chunk."""
        full = max(1, atoms[j].end - atoms[i].start)
        best: tuple[int, int] | None = None  # (strength, -k)
        fallback: tuple[int, int] | None = None
        for k in range(i + 1, j + 2):
            strength = atoms[k].strength
            if strength >= NO_BREAK:
                continue
            candidate = (strength, -k)
            fallback = min(fallback, candidate) if fallback else candidate
            fill = (atoms[k - 1].end - atoms[i].start) / full * tokens
            if strength <= 6 or fill >= MIN_FILL * self.budget:
                best = min(best, candidate) if best else candidate
        chosen = best or fallback
        return -chosen[1] if chosen else j + 1

    def _overlap_start(
        self, text: str, atoms: list[_Atom], i: int, end: int, *, floor: int
    ) -> int:
        """How far before atoms[i] the chunk may start: up to `overlap_tokens` words back, not
        past the previous chunk's start nor the heading above, the whole within
        `chunk_tokens`."""
        start = atoms[i].start
        lowest = floor
        for atom in reversed(atoms[: i + 1]):
            if atom.strength <= 6:
                lowest = max(lowest, atom.start)
                break
        lowest = max(lowest, start - 64 * self.overlap_tokens)
        words = [m.start() for m in _WORD.finditer(text, lowest, start)]
        words = words[-self.overlap_tokens:]  # a word is at least one token

        def fits(position: int) -> bool:
            return (self.count(text[position:start]) <= self.overlap_tokens
                    and self.count(text[position:end]) <= self.chunk_tokens)

        low, high = -1, len(words)  # words[high:] all fit (none, at first); find the first
        while high - low > 1:
            middle = (low + high) // 2
            if fits(words[middle]):
                high = middle
            else:
                low = middle
        if high == len(words):
            return start
        return _sentence_start(text, words[high], start)


def _label(atoms: list[_Atom]) -> tuple[str, ...]:
    """The heading path shared by the chunk's text: by its non-heading atoms (the headings
    leading into it are in the path already), by all of them for a chunk of headings only."""
    paths = [a.heading for a in atoms if not a.is_heading] or [a.heading for a in atoms]
    shared = paths[0]
    for path in paths[1:]:
        same = 0
        while same < min(len(shared), len(path)) and shared[same] == path[same]:
            same += 1
        shared = shared[:same]
    return shared


def _sentence_start(text: str, position: int, limit: int) -> int:
    """The first sentence start in text[position:limit], else `position`: an overlap that
    begins with a whole sentence reads better than one that begins mid-sentence."""
    before = text[max(0, position - 4):position]
    if not before.strip() or _SENTENCE_END.search(before.rstrip() + " "):
        return position
    for match in _SENTENCE_END.finditer(text, position, limit):
        found = match.end()
        while found < limit and text[found].isspace():
            found += 1
        if found < limit:
            return found
    return position


def _trimmed(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            out.append((start, end))
    return out


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return _trimmed(text, [(m.start(), m.end()) for m in _LINE.finditer(text, start, end)])


def _items(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The items of a list (each from its marker to the next), at whatever depth."""
    starts = [m.start() for m in _ITEM.finditer(text, start, end)]
    bounds = sorted({start, *starts, end})
    return _trimmed(text, list(zip(bounds, bounds[1:], strict=False)))


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    position = start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.append((position, match.end()))
        position = match.end()
    spans.append((position, end))
    return _trimmed(text, spans)
