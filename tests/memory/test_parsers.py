"""Parsers: each format's structure (headings, paragraphs, pages, records) and offsets."""

from __future__ import annotations

import pytest

from tests.memory.pdf import make_pdf
from veteran.errors import IngestError
from veteran.memory.parsers import Document, file_format, parse


def blocks(doc: Document) -> list[tuple[str, tuple[str, ...], str]]:
    return [(b.kind, b.heading, doc.text[b.start:b.end])
            for section in doc.sections for b in section.blocks]


MARKDOWN = """---
title: Front matter
---
# Guide

Intro line one
continues here.

## Install

```bash
pip install thing

thing --init
```

- one
- two

   still item two

| a | b |
|---|---|
| 1 | 2 |

### Linux

Use apt.

## Usage

> quoted
"""


def test_markdown_headings_paragraphs_and_whole_code_blocks() -> None:
    doc = parse("guide.md", MARKDOWN.encode())
    assert doc.text == MARKDOWN  # offsets index the file itself
    assert doc.metadata == {"format": "markdown", "title": "Guide"}
    assert blocks(doc) == [
        ("heading", ("Guide",), "# Guide"),
        ("paragraph", ("Guide",), "Intro line one\ncontinues here."),
        ("heading", ("Guide", "Install"), "## Install"),
        ("code", ("Guide", "Install"), "```bash\npip install thing\n\nthing --init\n```"),
        ("list", ("Guide", "Install"), "- one\n- two\n\n   still item two"),
        ("table", ("Guide", "Install"), "| a | b |\n|---|---|\n| 1 | 2 |"),
        ("heading", ("Guide", "Install", "Linux"), "### Linux"),
        ("paragraph", ("Guide", "Install", "Linux"), "Use apt."),
        ("heading", ("Guide", "Usage"), "## Usage"),
        ("quote", ("Guide", "Usage"), "> quoted"),
    ]
    levels = [b.level for b in doc.sections[0].blocks if b.kind == "heading"]
    assert levels == [1, 2, 3, 2]


def test_plain_text_paragraphs_keep_offsets() -> None:
    text = "  First para\nline two.\n\n\n   \nSecond.\r\n\r\nThird  \n"
    doc = parse("notes.txt", text.encode())
    assert [t for _, _, t in blocks(doc)] == ["First para\nline two.", "Second.", "Third"]
    assert doc.metadata["format"] == "text"


HTML = b"""<!doctype html><html><head><title>  The  Page </title>
<style>p { color: red }</style><script>var secret = 1;</script></head>
<body><nav><a href="/">Home</a> | <a href="/x">Menu</a></nav>
<main><h1>Billing</h1>
<p>Refunds take <b>five</b>
   days.</p>
<div>Loose text in a div<div>nested block</div></div>
<h2>Cards</h2>
<ul><li>Visa</li><li>Mastercard <i>only</i></li></ul>
<table><tr><th>plan</th><th>price</th></tr><tr><td>pro</td><td>10</td></tr></table>
<pre>line 1
  line 2</pre>
<!-- a comment -->
<script>alert(1)</script>
</main></body></html>"""


def test_html_keeps_text_structure_and_drops_scripts_styles_navigation() -> None:
    doc = parse("page.html", HTML)
    assert doc.metadata == {"format": "html", "title": "The Page"}
    assert blocks(doc) == [
        ("heading", ("Billing",), "Billing"),
        ("paragraph", ("Billing",), "Refunds take five days."),
        ("paragraph", ("Billing",), "Loose text in a div"),
        ("paragraph", ("Billing",), "nested block"),
        ("heading", ("Billing", "Cards"), "Cards"),
        ("list", ("Billing", "Cards"), "- Visa\n- Mastercard only"),
        ("table", ("Billing", "Cards"), "plan | price\npro | 10"),
        ("code", ("Billing", "Cards"), "line 1\n  line 2"),
    ]
    for word in ("secret", "alert", "Home", "Menu", "color", "comment"):
        assert word not in doc.text


def test_pdf_one_section_per_page_with_its_number() -> None:
    data = make_pdf([["Refunds take five days.", "Ask billing."], ["Cards: Visa only."]],
                    title="Policy")
    doc = parse("policy.pdf", data)
    assert doc.metadata == {"format": "pdf", "pages": 2, "title": "Policy"}
    assert [s.metadata for s in doc.sections] == [{"page": 1}, {"page": 2}]
    page_texts = [doc.text[s.blocks[0].start:s.blocks[-1].end] for s in doc.sections]
    assert page_texts == ["Refunds take five days.\nAsk billing.", "Cards: Visa only."]


def test_unreadable_pdf_is_an_ingest_error() -> None:
    with pytest.raises(IngestError, match=r"broken\.pdf: not a readable PDF"):
        parse("broken.pdf", b"%PDF-1.4 this is not really a pdf")


def test_jsonl_records_are_sections_with_their_fields() -> None:
    data = (
        b'{"id": 1, "text": "Refunds take five days.", "team": "billing"}\n'
        b"\n"
        b'{"id": 2, "content": "Use the portal.", "tags": ["a", "b"]}\n'
        b'{"id": 3, "title": "no text field"}\n'
    )
    doc = parse("faq.jsonl", data)
    texts = [doc.text[s.blocks[0].start:s.blocks[-1].end] for s in doc.sections]
    assert texts == ["Refunds take five days.", "Use the portal.",
                     '{"id":3,"title":"no text field"}']
    assert [s.metadata for s in doc.sections] == [
        {"id": 1, "team": "billing", "line": 1},
        {"id": 2, "tags": ["a", "b"], "line": 3},
        {"id": 3, "title": "no text field", "line": 4},
    ]


def test_jsonl_text_field_option() -> None:
    doc = parse("faq.jsonl", b'{"q": "How long?", "a": "Five days."}\n', text_field="a")
    assert doc.text == "Five days."
    assert doc.sections[0].metadata == {"q": "How long?", "line": 1}
    with pytest.raises(IngestError, match=r"^faq\.jsonl:1: the record has no 'body' field"):
        parse("faq.jsonl", b'{"q": "How long?"}\n', text_field="body")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"text": "ok"}\n{"text": broken}\n', r"^docs/faq\.jsonl:2: not valid JSON"),
        (b'{"text": "ok"}\n\n["a list"]\n', r"^docs/faq\.jsonl:3: a record must be a JSON object"),
        (b'{"text": 5}\n', r"^docs/faq\.jsonl:1: field 'text' must be a string"),
    ],
)
def test_a_bad_jsonl_line_names_file_and_line(data: bytes, problem: str) -> None:
    with pytest.raises(IngestError, match=problem):
        parse("docs/faq.jsonl", data)


def test_formats_by_extension() -> None:
    assert file_format("a/B.MD") == "markdown"
    assert file_format("x.htm") == "html"
    assert file_format("x.docx") is None
    with pytest.raises(IngestError, match="unsupported file type"):
        parse("x.docx", b"")
