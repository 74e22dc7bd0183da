"""Adding to memory: files and folders (`ingest`), and trajectories worth keeping (`promote`).

Ingest is incremental. A file is named by its **source**: its name when given directly, else
its path below the folder given, prefixed by that folder's name (`docs/guide/intro.md`). A file
whose bytes (sha256) and ingest settings match what the collection holds costs a hash: no
parse, no embedding. A changed file is chunked and embedded again and replaces its old chunks
in one transaction. A file gone from a folder that is ingested again, or a path that no longer
exists, is deleted from the collection.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from veteran.errors import IngestError
from veteran.memory.chunking import Chunker, Piece
from veteran.memory.parsers import Document, file_format, parse, parse_text
from veteran.memory.store import MemoryStore, document_id
from veteran.memory.types import Chunk, Embedder, Vectors
from veteran.store import Store
from veteran.types import Trajectory

EMBED_BATCH = 64
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40

Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0  # chunks written
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # "SOURCE: why", not ingested

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "deleted": self.deleted, "chunks": self.chunks, "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
        }


@dataclass
class _Pending:
    source: str
    content_hash: str
    size: int
    metadata: dict[str, Any]
    chunks: list[Chunk]
    texts: list[str]  # what is embedded for each chunk


class _Writer:
    """Embeds pending documents in batches of EMBED_BATCH chunks, then stores each one."""

    def __init__(self, memory: MemoryStore, embedder: Embedder, collection: str,
                 report: IngestReport) -> None:
        self.memory, self.embedder, self.collection = memory, embedder, collection
        self.report = report
        self.pending: list[_Pending] = []

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        if sum(len(p.chunks) for p in self.pending) >= EMBED_BATCH:
            self.flush()

    def flush(self) -> None:
        texts = [t for p in self.pending for t in p.texts]
        vectors = _embed(self.embedder, texts)
        row = 0
        for p in self.pending:
            self.memory.replace_document(
                self.collection, p.source, content_hash=p.content_hash, size=p.size,
                metadata=p.metadata, chunks=p.chunks,
                embeddings=vectors[row:row + len(p.chunks)],
            )
            row += len(p.chunks)
            self.report.chunks += len(p.chunks)
        self.pending = []


def _embed(embedder: Embedder, texts: Sequence[str]) -> Vectors:
    parts = [
        np.asarray(embedder.embed(texts[start:start + EMBED_BATCH]), dtype=np.float32)
        for start in range(0, len(texts), EMBED_BATCH)
    ]
    if not parts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.concatenate(parts)


def embed_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its text, after its heading path when the text does not
    open with a heading of that path, so a chunk deep in a section still carries what it is
    about. (A chunk that opens at one holds every heading below it down to its text: the
    chunker never ends a chunk right after a heading.)"""
    heading = chunk.metadata.get("heading") or []
    opening = chunk.text.split("\n", 1)[0].lstrip("#").strip()
    if not heading or opening in {str(h) for h in heading}:
        return chunk.text
    return " > ".join(str(h) for h in heading) + "\n\n" + chunk.text


def _chunks(collection: str, source: str, content_hash: str, pieces: list[Piece]) -> list[Chunk]:
    doc_id = document_id(collection, source, content_hash)
    return [
        Chunk(id=f"{doc_id}:{n}", collection=collection, document_id=doc_id, source=source,
              ordinal=n, text=p.text, tokens=p.tokens, metadata=p.metadata)
        for n, p in enumerate(pieces)
    ]


# files and folders


def _walk(paths: Iterable[str | Path], report: IngestReport
          ) -> tuple[dict[str, Path], list[str], list[str]]:
    """(source -> file, folder roots walked, paths that are gone)."""
    files: dict[str, Path] = {}
    roots: list[str] = []
    gone: list[str] = []

    def take(source: str, path: Path) -> None:
        if file_format(source) is None:
            report.skipped.append(f"{source}: unsupported file type")
        elif source in files and files[source] != path:
            raise IngestError(
                f"{files[source]} and {path} would both be stored as {source!r}: ingest them "
                "into different collections, or give their folders instead"
            )
        else:
            files[source] = path

    for given in paths:
        path = Path(given).expanduser().resolve()
        if path.is_file():
            take(path.name, path)
        elif path.is_dir():
            root = path.name or "root"
            roots.append(root)
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    file = Path(folder, name)
                    take(f"{root}/{file.relative_to(path).as_posix()}", file)
        elif path.exists():
            report.skipped.append(f"{given}: not a file or folder")
        else:
            gone.append(path.name)
    return files, roots, gone


def ingest(
    memory_store: MemoryStore,
    embedder: Embedder,
    collection: str,
    paths: Sequence[str | Path],
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    text_field: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Bring `collection` up to date with the files and folders in `paths`."""
    began = time.perf_counter()
    report = IngestReport()
    chunker = Chunker(embedder.count_tokens, chunk_tokens=chunk_tokens,
                      overlap_tokens=overlap_tokens)
    files, roots, gone = _walk(paths, report)
    memory_store.ensure_collection(collection, embedder=embedder.name, dim=embedder.dim,
                                   chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    known = memory_store.documents(collection)
    for name in gone:
        under = [s for s in known if s == name or s.startswith(name + "/")]
        if not under:
            raise IngestError(f"{name}: no such file or folder")
        for source in under:
            memory_store.delete_document(collection, source)
            report.deleted += 1
    writer = _Writer(memory_store, embedder, collection, report)
    for done, (source, path) in enumerate(files.items(), start=1):
        data = path.read_bytes()
        content_hash = hashlib.sha256(data).hexdigest()
        settings: dict[str, Any] = {"chunk_tokens": chunk_tokens, "overlap_tokens": overlap_tokens}
        if file_format(source) == "jsonl":
            settings["text_field"] = text_field
        old = known.get(source)
        if old and old.content_hash == content_hash and old.metadata.get("ingest") == settings:
            report.unchanged += 1
        else:
            document = parse(source, data, text_field=text_field)
            chunks = _chunks(collection, source, content_hash, chunker.chunk(document))
            writer.add(_Pending(
                source, content_hash, len(data), {**document.metadata, "ingest": settings},
                chunks, [embed_text(c) for c in chunks],
            ))
            if old:
                report.updated += 1
            else:
                report.added += 1
        if progress:
            progress(done, len(files))
    writer.flush()
    for root in roots:
        for source in known:
            if source.startswith(root + "/") and source not in files:
                memory_store.delete_document(collection, source)
                report.deleted += 1
    report.seconds = time.perf_counter() - began
    return report


# promoted trajectories


def _text(content: Any) -> str | None:
    """The text of a chat message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str)) or None
    return None


def question_and_answer(trajectory: Trajectory) -> tuple[str, str] | str:
    """(question, answer): the last user message and the answer, or why there is none."""
    messages = (trajectory.request or {}).get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    question = _text(users[-1].get("content")) if users else None
    if not question or not question.strip():
        return "no user message with text"
    choices = (trajectory.response or {}).get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    answer = _text(message.get("content")) if isinstance(message, dict) else None
    if not answer or not answer.strip():
        return "no answer text"
    return question.strip(), answer.strip()


def _latest_feedback(trajectory: Trajectory) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for item in sorted(trajectory.feedback or [], key=lambda f: f.created_at):
        latest[item.metric] = item.value
    return latest


def promote(
    memory_store: MemoryStore,
    embedder: Embedder,
    store: Store,
    collection: str,
    trajectory_ids: Sequence[str],
    *,
    chunk_tokens: int | None = None,
    overlap_tokens: int | None = None,
) -> IngestReport:
    """Add trajectories as question/answer memory, each a document "trajectory:ID" linked back
    to it. Every id is read before anything is written (an unknown one is `NotFound`); one
    without a question or an answer is skipped and reported. Chunk settings default to the
    collection's."""
    began = time.perf_counter()
    report = IngestReport()
    trajectories = [store.trajectory(id) for id in dict.fromkeys(trajectory_ids)]
    info = memory_store.collection(collection)
    if chunk_tokens is None:
        chunk_tokens = info.chunk_tokens if info else DEFAULT_CHUNK_TOKENS
    if overlap_tokens is None:
        overlap_tokens = info.overlap_tokens if info else DEFAULT_OVERLAP_TOKENS
    chunker = Chunker(embedder.count_tokens, chunk_tokens=chunk_tokens,
                      overlap_tokens=overlap_tokens)
    memory_store.ensure_collection(collection, embedder=embedder.name, dim=embedder.dim,
                                   chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    known = memory_store.documents(collection)
    writer = _Writer(memory_store, embedder, collection, report)
    for trajectory in trajectories:
        source = f"trajectory:{trajectory.id}"
        qa = question_and_answer(trajectory)
        if isinstance(qa, str):
            report.skipped.append(f"{source}: {qa}")
            continue
        text = f"Q: {qa[0]}\nA: {qa[1]}"
        metadata = {"trajectory_id": trajectory.id, "function": trajectory.function,
                    "feedback": _latest_feedback(trajectory)}
        settings = {"chunk_tokens": chunk_tokens, "overlap_tokens": overlap_tokens}
        data = orjson.dumps([text, metadata, settings], option=orjson.OPT_SORT_KEYS)
        content_hash = hashlib.sha256(data).hexdigest()
        old = known.get(source)
        if old and old.content_hash == content_hash:
            report.unchanged += 1
            continue
        sections = parse_text(text).sections
        document = Document(text, sections, {"format": "trajectory", **metadata})
        chunks = _chunks(collection, source, content_hash, chunker.chunk(document))
        writer.add(_Pending(source, content_hash, len(text.encode()),
                            {**document.metadata, "ingest": settings}, chunks,
                            [embed_text(c) for c in chunks]))
        if old:
            report.updated += 1
        else:
            report.added += 1
    writer.flush()
    report.seconds = time.perf_counter() - began
    return report
