"""Files → documents: one text, cut into sections that are never merged, made of blocks.

A **section** is a unit the chunker never joins with another: a whole Markdown, text or HTML
file, one PDF page, one JSONL record. Its **blocks** are what structure a reader sees: headings,
paragraphs, code blocks, lists, tables. Offsets always index `Document.text`, so every chunk can
be traced back to where it came from. For Markdown and plain text that text is the file itself;
for HTML, PDF and JSONL it is the extracted text, blocks separated by a blank line.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

import orjson

from veteran.errors import IngestError

BlockKind = Literal["heading", "paragraph", "code", "list", "table", "quote"]
Format = Literal["markdown", "text", "html", "pdf", "jsonl"]

FORMATS: dict[str, Format] = {
    ".md": "markdown", ".markdown": "markdown",
    ".txt": "text", ".text": "text",
    ".html": "html", ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}


@dataclass(frozen=True, slots=True)
class Block:
    start: int
    end: int
    kind: BlockKind
    heading: tuple[str, ...]  # the heading path in effect; a heading block's path ends with it
    level: int = 0  # 1-6 for a heading block


@dataclass(frozen=True, slots=True)
class Section:
    blocks: tuple[Block, ...]
    metadata: dict[str, Any] = field(default_factory=dict)  # page (PDF), record fields (JSONL)


@dataclass(frozen=True, slots=True)
class Document:
    text: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)  # format, title


def file_format(name: str) -> Format | None:
    """The format a file name's extension stands for; None when veteran cannot read it."""
    return FORMATS.get(PurePosixPath(name).suffix.lower())


def parse(name: str, data: bytes, *, text_field: str | None = None) -> Document:
    """Parse `data`, the bytes of the file `name` (shown in errors; its extension decides)."""
    fmt = file_format(name)
    if fmt is None:
        raise IngestError(f"{name}: unsupported file type (known: {', '.join(sorted(FORMATS))})")
    if fmt == "pdf":
        return parse_pdf(name, data)
    if fmt == "html":
        return parse_html(data)
    text = _decode(data)
    if fmt == "markdown":
        return parse_markdown(text)
    if fmt == "jsonl":
        return parse_jsonl(name, text, text_field=text_field)
    return parse_text(text)


def _decode(data: bytes) -> str:
    text = data.decode("utf-8-sig", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# plain text


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def _paragraphs(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Spans of the paragraphs of `text` (split at blank lines), trimmed, shifted by `offset`."""
    spans = []
    position = 0
    for match in [*_BLANK_LINES.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[position:end]
        stripped = piece.strip()
        if stripped:
            start = position + piece.index(stripped[0])
            spans.append((offset + start, offset + start + len(stripped)))
        if match:
            position = match.end()
    return spans


def parse_text(text: str) -> Document:
    blocks = tuple(Block(s, e, "paragraph", ()) for s, e in _paragraphs(text))
    return Document(text, [Section(blocks)] if blocks else [], {"format": "text"})


# Markdown


_MD_KINDS: dict[str, BlockKind] = {
    "paragraph_open": "paragraph", "bullet_list_open": "list", "ordered_list_open": "list",
    "blockquote_open": "quote", "table_open": "table", "fence": "code", "code_block": "code",
    "html_block": "paragraph",
}
_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.S)


def parse_markdown(text: str) -> Document:
    """Blocks from markdown-it's top-level tokens: code blocks, lists and tables stay whole;
    YAML front matter is left out of the blocks."""
    from markdown_it import MarkdownIt

    line_starts = [0]
    for match in re.finditer("\n", text):
        line_starts.append(match.end())
    line_starts.append(len(text))
    front = _FRONT_MATTER.match(text)
    first_line = text[: front.end()].count("\n") if front else 0

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    for index, token in enumerate(tokens):
        if token.level != 0 or token.nesting == -1 or token.map is None:
            continue
        if token.map[0] < first_line:
            continue
        start = line_starts[min(token.map[0], len(line_starts) - 1)]
        end = line_starts[min(token.map[1], len(line_starts) - 1)]
        while end > start and text[end - 1].isspace():
            end -= 1
        while start < end and text[start] in " \t":
            start += 1
        if start == end:
            continue
        if token.type == "heading_open":
            level = int(token.tag[1])
            title = tokens[index + 1].content.strip() if index + 1 < len(tokens) else ""
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, title))
            blocks.append(Block(start, end, "heading", tuple(t for _, t in path), level))
        elif token.type in _MD_KINDS:
            blocks.append(Block(start, end, _MD_KINDS[token.type], tuple(t for _, t in path)))
    metadata: dict[str, Any] = {"format": "markdown"}
    titles = [b for b in blocks if b.kind == "heading" and b.level == 1]
    if titles:
        metadata["title"] = titles[0].heading[-1]
    return Document(text, [Section(tuple(blocks))] if blocks else [], metadata)


# extracted text (HTML, PDF, JSONL): blocks joined by blank lines


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.blocks: list[Block] = []
        self.sections: list[Section] = []

    def add(self, text: str, kind: BlockKind, heading: tuple[str, ...], level: int = 0) -> None:
        text = text.strip() if kind != "code" else text.rstrip().strip("\n")
        if not text:
            return
        if self.length:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        self.blocks.append(Block(start, self.length, kind, heading, level))

    def add_paragraphs(self, text: str) -> None:
        for s, e in _paragraphs(text):
            self.add(text[s:e], "paragraph", ())

    def end_section(self, metadata: dict[str, Any] | None = None) -> None:
        if self.blocks:
            self.sections.append(Section(tuple(self.blocks), metadata or {}))
        self.blocks = []

    def document(self, metadata: dict[str, Any]) -> Document:
        self.end_section()
        return Document("".join(self.parts), self.sections, metadata)


# HTML


_DROP = {"script", "style", "nav", "noscript", "template", "head", "svg", "iframe", "form"}
_HTML_BLOCKS: dict[str, BlockKind] = {
    "p": "paragraph", "pre": "code", "ul": "list", "ol": "list", "dl": "list",
    "table": "table", "blockquote": "quote", "figcaption": "paragraph", "address": "paragraph",
}
_HEADINGS = {f"h{n}" for n in range(1, 7)}
_CONTAINERS = {
    "html", "body", "div", "section", "article", "main", "header", "footer", "aside",
    "figure", "details", "summary", "fieldset", "center", "li", "dd", "dt", "td", "th",
    "hgroup", "search",
}

_NESTED_BLOCKS = sorted(_CONTAINERS | _HEADINGS | set(_HTML_BLOCKS))


def _words(text: str) -> str:
    return " ".join(text.split())


def parse_html(data: bytes) -> Document:
    """Headings, paragraphs, lists, tables and preformatted text; scripts, styles and
    navigation are dropped."""
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, Tag

    soup = BeautifulSoup(data, "html.parser")
    metadata: dict[str, Any] = {"format": "html"}
    if soup.title is not None and soup.title.string:
        metadata["title"] = _words(soup.title.string)
    for tag in soup.find_all(sorted(_DROP)):
        tag.decompose()
    builder = _Builder()
    path: list[tuple[int, str]] = []

    def heading() -> tuple[str, ...]:
        return tuple(t for _, t in path)

    def block_text(tag: Tag, kind: BlockKind) -> str:
        if kind == "code":
            return tag.get_text()
        if tag.name in ("ul", "ol"):
            items = tag.find_all("li", recursive=False) or [tag]
            return "\n".join(
                f"{f'{n}.' if tag.name == 'ol' else '-'} {_words(item.get_text(' '))}"
                for n, item in enumerate(items, start=1)
            )
        if tag.name == "table":
            rows = []
            for row in tag.find_all("tr"):
                cells = [_words(c.get_text(" ")) for c in row.find_all(("td", "th"))]
                rows.append(" | ".join(cells))
            return "\n".join(r for r in rows if r.strip(" |"))
        if tag.name == "dl":
            return "\n".join(_words(i.get_text(" ")) for i in tag.find_all(("dt", "dd")))
        return _words(tag.get_text(" "))

    def walk(node: Tag) -> None:
        loose: list[str] = []
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a comment, doctype, CDATA...
                    loose.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _HEADINGS:
                builder.add(_words(" ".join(loose)), "paragraph", heading())
                loose = []
                level = int(name[1])
                title = _words(child.get_text(" "))
                if not title:
                    continue
                while path and path[-1][0] >= level:
                    path.pop()
                path.append((level, title))
                builder.add(title, "heading", heading(), level)
            elif name in _HTML_BLOCKS:
                builder.add(_words(" ".join(loose)), "paragraph", heading())
                loose = []
                kind = _HTML_BLOCKS[name]
                builder.add(block_text(child, kind), kind, heading())
            elif name in _CONTAINERS or child.find(_NESTED_BLOCKS):
                builder.add(_words(" ".join(loose)), "paragraph", heading())
                loose = []
                walk(child)
            elif name == "br":
                loose.append("\n")
            else:
                loose.append(child.get_text())
        builder.add(_words(" ".join(loose)), "paragraph", heading())

    walk(soup)
    return builder.document(metadata)


# PDF


def parse_pdf(name: str, data: bytes) -> Document:
    """One section per page, its number (from 1) in the section's metadata as `page`."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(f"{name}: the PDF is encrypted")
        builder = _Builder()
        for number, page in enumerate(reader.pages, start=1):
            builder.add_paragraphs(_decode((page.extract_text() or "").encode()))
            builder.end_section({"page": number})
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise IngestError(f"{name}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    metadata: dict[str, Any] = {"format": "pdf", "pages": len(reader.pages)}
    title = reader.metadata.get("/Title") if reader.metadata else None
    if isinstance(title, str) and title.strip():
        metadata["title"] = title.strip()
    return builder.document(metadata)


# JSONL


def parse_jsonl(name: str, text: str, *, text_field: str | None = None) -> Document:
    """One section per record. The text is `text_field`, else "text", else "content", else the
    whole record as JSON; the record's other fields (and `line`) become the section's metadata."""
    builder = _Builder()
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise IngestError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise IngestError(f"{where}: a record must be a JSON object")
        if text_field is not None:
            if text_field not in record:
                raise IngestError(f"{where}: the record has no {text_field!r} field")
            key: str | None = text_field
        else:
            key = next((k for k in ("text", "content") if k in record), None)
        if key is None:
            body = orjson.dumps(record).decode()
        elif isinstance(record[key], str):
            body = record[key]
        else:
            raise IngestError(f"{where}: field {key!r} must be a string")
        fields = {k: v for k, v in record.items() if k != key}
        builder.add_paragraphs(body)
        builder.end_section({**fields, "line": number})
    return builder.document({"format": "jsonl"})
