"""Ingest: folders and files into a collection, incrementally, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.memory.pdf import make_pdf
from veteran.errors import IngestError
from veteran.memory.ingest import ingest
from veteran.memory.store import MemoryStore
from veteran.store import Store
from veteran.testing.embedder import HashEmbedder


@pytest.fixture
def memory(store: Store) -> MemoryStore:
    return MemoryStore(store.engine)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "refunds.md").write_text(
        "# Refunds\n\nRefunds take five business days.\n\n## Cards\n\nVisa and Mastercard.\n"
    )
    (root / "faq.jsonl").write_text(
        '{"text": "Reset your password from the login page.", "topic": "account"}\n'
        '{"text": "Invoices are emailed monthly.", "topic": "billing"}\n'
    )
    (root / "page.html").write_text("<h1>Status</h1><p>All systems normal.</p>")
    (root / "manual.pdf").write_bytes(make_pdf([["Press the red button."], ["Then wait."]]))
    (root / "notes.txt").write_text("Plain notes.\n\nSecond paragraph.\n")
    (root / ".hidden.md").write_text("# Secret\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.md").write_text("# not this\n")
    (root / "image.png").write_bytes(b"\x89PNG")
    return root


def test_a_folder_is_ingested_with_sources_positions_and_metadata(
    memory: MemoryStore, docs: Path
) -> None:
    embedder = HashEmbedder()
    report = ingest(memory, embedder, "kb", [docs], chunk_tokens=50, overlap_tokens=10)
    assert (report.added, report.updated, report.unchanged, report.deleted) == (5, 0, 0, 0)
    assert report.skipped == ["docs/image.png: unsupported file type"]
    documents = memory.documents("kb")
    assert sorted(documents) == [
        "docs/billing/refunds.md", "docs/faq.jsonl", "docs/manual.pdf", "docs/notes.txt",
        "docs/page.html",
    ]
    chunks = {c.id: (c, v) for c, v in memory.chunks("kb")}
    assert report.chunks == len(chunks) == sum(d.chunks for d in documents.values())
    by_source: dict[str, list[str]] = {}
    for chunk, vector in chunks.values():
        by_source.setdefault(chunk.source, []).append(chunk.text)
        assert vector.shape == (64,) and vector.dtype == np.float32
        assert chunk.tokens == len(chunk.text.split())
        assert {"start", "end", "heading", "format"} <= set(chunk.metadata)
    assert by_source["docs/faq.jsonl"] == [
        "Reset your password from the login page.", "Invoices are emailed monthly.",
    ]
    faq = sorted((c for c, _ in chunks.values() if c.source == "docs/faq.jsonl"),
                 key=lambda c: c.ordinal)
    assert [(c.metadata["topic"], c.metadata["line"]) for c in faq] == [
        ("account", 1), ("billing", 2),
    ]
    pdf = sorted((c for c, _ in chunks.values() if c.source == "docs/manual.pdf"),
                 key=lambda c: c.ordinal)
    assert [(c.text, c.metadata["page"]) for c in pdf] == [
        ("Press the red button.", 1), ("Then wait.", 2),
    ]
    refunds = [c for c, _ in chunks.values() if c.source == "docs/billing/refunds.md"]
    assert refunds[0].metadata["heading"] == ["Refunds"]
    notes, vector = next(v for v in chunks.values() if v[0].source == "docs/notes.txt")
    assert np.allclose(vector, HashEmbedder().embed([notes.text])[0], atol=1e-6)


def test_a_chunk_inside_a_section_is_embedded_with_its_heading_path(
    memory: MemoryStore, tmp_path: Path
) -> None:
    body = " ".join(f"Sentence {i} about cards." for i in range(20))
    (tmp_path / "long.md").write_text(f"# Billing\n\n## Cards\n\n{body}\n")
    ingest(memory, HashEmbedder(), "kb", [tmp_path / "long.md"], chunk_tokens=40,
           overlap_tokens=0)
    chunks = sorted(memory.chunks("kb"), key=lambda cv: cv[0].ordinal)
    assert len(chunks) > 1
    first, first_vector = chunks[0]
    assert first.text.startswith("# Billing")  # opens with its heading: embedded as it is
    assert np.allclose(first_vector, HashEmbedder().embed([first.text])[0], atol=1e-6)
    assert first.text.startswith("# Billing\n\n## Cards\n\nSentence 0")  # no lone heading
    inner, vector = chunks[1]
    assert inner.metadata["heading"] == ["Billing", "Cards"]
    assert inner.text.startswith("Sentence")
    expected = HashEmbedder().embed(["Billing > Cards\n\n" + inner.text])[0]
    assert np.allclose(vector, expected, atol=1e-6)


def test_unchanged_files_cost_no_embedding_changed_ones_are_redone_removed_ones_deleted(
    memory: MemoryStore, docs: Path
) -> None:
    embedder = HashEmbedder()
    ingest(memory, embedder, "kb", [docs], chunk_tokens=50, overlap_tokens=10)
    generation = memory.generation("kb")
    old_ids = {c.id for c, _ in memory.chunks("kb")}

    embedder.calls = embedder.texts = 0
    again = ingest(memory, embedder, "kb", [docs], chunk_tokens=50, overlap_tokens=10)
    assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 5, 0)
    assert embedder.calls == 0 and again.chunks == 0
    assert memory.generation("kb") == generation
    assert {c.id for c, _ in memory.chunks("kb")} == old_ids

    (docs / "notes.txt").write_text("Plain notes, rewritten.\n")
    (docs / "billing" / "refunds.md").unlink()
    changed = ingest(memory, embedder, "kb", [docs], chunk_tokens=50, overlap_tokens=10)
    assert (changed.added, changed.updated, changed.unchanged, changed.deleted) == (0, 1, 3, 1)
    assert embedder.calls == 1 and embedder.texts == 1
    assert memory.generation("kb") > generation
    texts = {c.source: c.text for c, _ in memory.chunks("kb")}
    assert texts["docs/notes.txt"] == "Plain notes, rewritten."
    assert "docs/billing/refunds.md" not in texts
    assert "docs/billing/refunds.md" not in memory.documents("kb")
    # chunks of the old versions are gone; the untouched files keep their ids
    ids = {c.id for c, _ in memory.chunks("kb")}
    assert not memory.chunks_by_id(sorted(old_ids - ids)) and old_ids - ids
    assert len(ids - old_ids) == 1


def test_new_chunk_settings_redo_every_file(memory: MemoryStore, docs: Path) -> None:
    embedder = HashEmbedder()
    ingest(memory, embedder, "kb", [docs], chunk_tokens=50, overlap_tokens=10)
    report = ingest(memory, embedder, "kb", [docs], chunk_tokens=20, overlap_tokens=0)
    assert (report.updated, report.unchanged) == (5, 0)
    info = memory.collection("kb")
    assert info is not None and (info.chunk_tokens, info.overlap_tokens) == (20, 0)
    # only the JSONL file depends on the text field
    report = ingest(memory, embedder, "kb", [docs], chunk_tokens=20, overlap_tokens=0,
                    text_field="topic")
    assert (report.updated, report.unchanged) == (1, 4)
    faq = [c.text for c, _ in memory.chunks("kb") if c.source == "docs/faq.jsonl"]
    assert sorted(faq) == ["account", "billing"]


def test_files_given_directly_and_two_folders(memory: MemoryStore, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same.md").write_text(f"# In {name}\n")
    (tmp_path / "one.txt").write_text("one")
    embedder = HashEmbedder()
    report = ingest(memory, embedder, "kb", [tmp_path / "a", tmp_path / "b", tmp_path / "one.txt"])
    assert report.added == 3
    assert sorted(memory.documents("kb")) == ["a/same.md", "b/same.md", "one.txt"]
    # removing a folder's file does not touch the other folder or the lone file
    (tmp_path / "a" / "same.md").unlink()
    report = ingest(memory, embedder, "kb", [tmp_path / "a"])
    assert report.deleted == 1
    assert sorted(memory.documents("kb")) == ["b/same.md", "one.txt"]
    # a path that is gone takes its documents with it; a path never seen is an error
    (tmp_path / "one.txt").unlink()
    assert ingest(memory, embedder, "kb", [tmp_path / "one.txt"]).deleted == 1
    with pytest.raises(IngestError, match="nothere.md: no such file or folder"):
        ingest(memory, embedder, "kb", [tmp_path / "nothere.md"])
    # two files that would share a source
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "one.txt").write_text("x")
    (tmp_path / "one.txt").write_text("y")
    with pytest.raises(IngestError, match="would both be stored as 'one.txt'"):
        ingest(memory, embedder, "kb", [tmp_path / "one.txt", tmp_path / "c" / "one.txt"])


def test_another_embedder_is_refused(memory: MemoryStore, docs: Path) -> None:
    ingest(memory, HashEmbedder(), "kb", [docs / "notes.txt"])
    with pytest.raises(IngestError, match="embedder 'test-hash-64' .dim 64., not 'other'"):
        ingest(memory, HashEmbedder(dim=64, name="other"), "kb", [docs / "notes.txt"])
    with pytest.raises(IngestError, match="dim 32"):
        ingest(memory, HashEmbedder(dim=32), "kb", [docs / "notes.txt"])


def test_a_bad_file_stops_with_its_name_and_line(memory: MemoryStore, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bad.jsonl").write_text('{"text": "fine"}\nnot json\n')
    with pytest.raises(IngestError, match=r"^d/bad\.jsonl:2: not valid JSON"):
        ingest(memory, HashEmbedder(), "kb", [tmp_path / "d"])


def test_many_chunks_are_embedded_in_batches_of_64(memory: MemoryStore, tmp_path: Path) -> None:
    lines = "".join(f'{{"text": "record number {i}"}}\n' for i in range(150))
    (tmp_path / "many.jsonl").write_text(lines)
    embedder = HashEmbedder()
    report = ingest(memory, embedder, "kb", [tmp_path / "many.jsonl"])
    assert report.chunks == 150
    assert embedder.calls == 3  # 64 + 64 + 22
    assert len(list(memory.chunks("kb"))) == 150
