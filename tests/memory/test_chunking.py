"""The chunker: budgets, structure, overlap, and offsets that map back to the text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.memory.pdf import make_pdf
from veteran.memory.chunking import Chunker, Piece
from veteran.memory.parsers import Document, parse


def words(text: str) -> int:
    return len(text.split())


def sentences(prefix: str, n: int) -> str:
    return " ".join(f"{prefix} sentence {i} has six words." for i in range(n))


def check_offsets(doc: Document, pieces: list[Piece]) -> None:
    for piece in pieces:
        assert doc.text[piece.start:piece.end] == piece.text
        assert (piece.metadata["start"], piece.metadata["end"]) == (piece.start, piece.end)
        assert piece.text == piece.text.strip()


GUIDE = f"""# Guide

A short intro.

## Install

{sentences("Install", 30)}

## Usage

Use it well.

## Limits

Nothing else.
"""


def test_sizes_stay_within_the_budget_and_headings_are_kept() -> None:
    doc = parse("guide.md", GUIDE.encode())
    pieces = Chunker(words, chunk_tokens=50, overlap_tokens=10).chunk(doc)
    check_offsets(doc, pieces)
    assert all(p.tokens == words(p.text) <= 50 for p in pieces)
    # the intro is a chunk of its own: the big section after it starts at its heading
    assert pieces[0].text == "# Guide\n\nA short intro."
    assert pieces[0].metadata["heading"] == ["Guide"]
    assert pieces[1].text.startswith("## Install\n\nInstall sentence 0")
    install = [p for p in pieces if p.metadata["heading"] == ["Guide", "Install"]]
    assert len(install) >= 4
    # the cut section's pieces end at sentence ends, and its last piece ends with the section
    assert all(p.text.endswith("words.") for p in install)
    assert install[-1].text.endswith("Install sentence 29 has six words.")
    # the guide's sections are its top-level ones: each small one is a chunk of its own
    assert [(p.text, p.metadata["heading"]) for p in pieces[-2:]] == [
        ("## Usage\n\nUse it well.", ["Guide", "Usage"]),
        ("## Limits\n\nNothing else.", ["Guide", "Limits"]),
    ]


def test_each_top_level_section_is_its_own_chunk_labelled_with_its_own_heading() -> None:
    # issue 13: two small `#` sections became one chunk labelled with the first heading
    text = "# Refunds\n\nRefunds take five days.\n\n# Shipping\n\nParcels ship in two days.\n"
    doc = parse("policies.md", text.encode())
    pieces = Chunker(words, chunk_tokens=200, overlap_tokens=40).chunk(doc)
    check_offsets(doc, pieces)
    assert [(p.text, p.metadata["heading"]) for p in pieces] == [
        ("# Refunds\n\nRefunds take five days.", ["Refunds"]),
        ("# Shipping\n\nParcels ship in two days.", ["Shipping"]),
    ]
    # The same as HTML.
    html = ("<h1>Refunds</h1><p>Refunds take five days.</p>"
            "<h1>Shipping</h1><p>Parcels ship in two days.</p>")
    pieces = Chunker(words, chunk_tokens=200, overlap_tokens=40).chunk(
        parse("policies.html", html.encode()))
    assert [p.metadata["heading"] for p in pieces] == [["Refunds"], ["Shipping"]]


def test_small_subsections_share_a_chunk_labelled_with_their_parent() -> None:
    text = ("# Refunds\n\nAsk within 30 days.\n\n## Cards\n\nBack to the card.\n\n"
            "## Cash\n\nBack as a voucher.\n\n# Shipping\n\n## Times\n\nTwo days.\n")
    doc = parse("policies.md", text.encode())
    pieces = Chunker(words, chunk_tokens=200, overlap_tokens=40).chunk(doc)
    check_offsets(doc, pieces)
    assert [(p.text.split("\n")[0], p.metadata["heading"]) for p in pieces] == [
        ("# Refunds", ["Refunds"]),  # with Cards and Cash: under Refunds, neither under Cards
        ("# Shipping", ["Shipping", "Times"]),  # a heading leads into its first subsection
    ]
    assert pieces[0].text.endswith("Back as a voucher.")


def test_overlap_repeats_the_end_of_the_previous_chunk_from_a_sentence_start() -> None:
    doc = parse("guide.md", GUIDE.encode())
    pieces = Chunker(words, chunk_tokens=50, overlap_tokens=10).chunk(doc)
    install = [p for p in pieces if p.metadata["heading"] == ["Guide", "Install"]]
    for before, after in zip(install, install[1:], strict=False):
        assert after.start < before.end  # they overlap...
        shared = doc.text[after.start:before.end]
        assert 0 < words(shared) <= 10  # ...by at most overlap_tokens
        assert re.match(r"Install sentence \d+ ", shared)  # from a sentence start
    # a chunk that starts at a heading repeats nothing from before it
    usage = next(p for p in pieces if p.metadata["heading"] == ["Guide", "Usage"])
    assert usage.start == doc.text.index("## Usage")


def test_without_overlap_chunks_tile_the_text() -> None:
    doc = parse("guide.md", GUIDE.encode())
    pieces = Chunker(words, chunk_tokens=40, overlap_tokens=0).chunk(doc)
    for before, after in zip(pieces, pieces[1:], strict=False):
        assert before.end <= after.start
        assert doc.text[before.end:after.start].strip() == ""
    assert sum(words(p.text) for p in pieces) == words(doc.text)


def test_paragraph_boundaries_win_over_sentences() -> None:
    paragraphs = [sentences(f"P{n}", 3) for n in range(6)]  # 18 words each
    doc = parse("notes.txt", "\n\n".join(paragraphs).encode())
    pieces = Chunker(words, chunk_tokens=40, overlap_tokens=0).chunk(doc)
    # two whole paragraphs (36 words) per chunk, never a paragraph cut in two
    assert [p.text for p in pieces] == [
        "\n\n".join(paragraphs[i:i + 2]) for i in range(0, 6, 2)
    ]


def test_code_blocks_stay_whole_when_they_fit_else_split_by_lines() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(10))  # 30 words
    text = f"# Code\n\nBefore.\n\n```\n{code}\n```\n\nAfter.\n"
    doc = parse("c.md", text.encode())
    pieces = Chunker(words, chunk_tokens=40, overlap_tokens=0).chunk(doc)
    assert any(f"```\n{code}\n```" in p.text for p in pieces)
    small = Chunker(words, chunk_tokens=16, overlap_tokens=0).chunk(doc)
    check_offsets(doc, small)
    for piece in small:
        assert piece.tokens <= 16
        for line in piece.text.splitlines():  # no line of code is cut
            assert line in text.splitlines()


def test_a_long_list_is_cut_between_its_items() -> None:
    items = [f"- item {i} wraps\n  over two lines here." for i in range(12)]  # 8 words each
    text = "# List\n\n" + "\n".join(items) + "\n"
    doc = parse("l.md", text.encode())
    pieces = Chunker(words, chunk_tokens=30, overlap_tokens=0).chunk(doc)
    check_offsets(doc, pieces)
    assert len(pieces) > 2
    for piece in pieces:
        assert piece.tokens <= 30
        assert re.fullmatch(r"(# List\n\n)?(- item \d+ wraps\n  over two lines here\.\n?)+",
                            piece.text), piece.text


def test_records_and_pages_are_never_merged() -> None:
    jsonl = b'{"text": "one two three", "k": 1}\n{"text": "four five", "k": 2}\n'
    doc = parse("r.jsonl", jsonl)
    pieces = Chunker(words, chunk_tokens=100, overlap_tokens=10).chunk(doc)
    assert [(p.text, p.metadata["k"], p.metadata["line"]) for p in pieces] == [
        ("one two three", 1, 1), ("four five", 2, 2),
    ]
    pdf = parse("p.pdf", make_pdf([["Page one words."], ["Page two words."]]))
    pieces = Chunker(words, chunk_tokens=100, overlap_tokens=10).chunk(pdf)
    assert [(p.text, p.metadata["page"]) for p in pieces] == [
        ("Page one words.", 1), ("Page two words.", 2),
    ]
    check_offsets(pdf, pieces)


def test_a_word_longer_than_the_budget_is_cut_into_characters() -> None:
    def chars(text: str) -> int:  # a tokenizer that counts characters
        return len(text)

    doc = parse("a.txt", ("x" * 250).encode())
    pieces = Chunker(chars, chunk_tokens=100, overlap_tokens=0).chunk(doc)
    assert [len(p.text) for p in pieces] == [100, 100, 50]
    check_offsets(doc, pieces)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        Chunker(words, chunk_tokens=50, overlap_tokens=30)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("#"), st.integers(1, 3), st.text("abc ", min_size=1, max_size=12)),
            st.tuples(st.just("p"), st.integers(1, 60), st.just("")),
        ),
        min_size=1, max_size=12,
    ),
    st.integers(16, 60),
    st.integers(0, 8),
)
def test_any_markdown_chunks_within_budget_and_covers_every_word(
    parts: list[tuple[str, int, str]], budget: int, overlap: int
) -> None:
    lines = []
    for n, (kind, size, title) in enumerate(parts):
        if kind == "#" and title.strip():
            lines.append("#" * size + " " + title.strip())
        else:
            lines.append(" ".join(f"w{n}x{i}." if i % 7 == 6 else f"w{n}x{i}"
                                  for i in range(size)))
    text = "\n\n".join(lines) + "\n"
    doc = parse("any.md", text.encode())
    pieces = Chunker(words, chunk_tokens=budget, overlap_tokens=overlap).chunk(doc)
    check_offsets(doc, pieces)
    assert all(0 < p.tokens <= budget for p in pieces)
    covered = set()
    for piece in pieces:
        covered.update(range(piece.start, piece.end))
    for match in re.finditer(r"\S+", text):
        assert match.start() in covered, match.group()
