"""`veteran kb`: collections of institutional memory: add, promote, list, remove, search."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import click
import orjson
from rich.console import Console
from rich.progress import Progress

from veteran.cli.options import workspace_option
from veteran.cli.store import check_function, open_store
from veteran.config import Config
from veteran.errors import NotFound, VeteranError
from veteran.memory.ingest import IngestReport, ingest, promote
from veteran.memory.store import MemoryStore
from veteran.memory.types import Embedder
from veteran.store import Store, TrajectoryFilter
from veteran.terminal import Grid
from veteran.workspace import Workspace


def _embedder(config: Config) -> Embedder:
    from veteran.memory.embed import default_embedder

    return default_embedder(config)


@contextlib.contextmanager
def _opened(workspace: str | None) -> Iterator[tuple[Workspace, Config, Store, MemoryStore]]:
    ws, store = open_store(workspace)
    try:
        yield ws, ws.load_config(), store, MemoryStore(store.engine)
    finally:
        store.close()


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=250)


def _json_value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # a bare word is a string: --value billing


def _echo_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(report.as_dict()).decode())
        return
    for line in report.skipped:
        click.echo(f"skipped {line}", err=True)
    click.echo(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.deleted} deleted; {report.chunks} chunks written in {report.seconds:.1f}s"
    )


@click.group()
def kb() -> None:
    """Collections of institutional memory: documents and promoted trajectories."""


@kb.command()
@workspace_option
@click.argument("collection")
@click.argument("paths", nargs=-1, required=True)
@click.option("--chunk-tokens", type=click.IntRange(16, 8192), default=None,
              help="Tokens per chunk (default: [memory] chunk_tokens, 200).")
@click.option("--overlap", "overlap_tokens", type=click.IntRange(0), default=None,
              help="Tokens a chunk repeats from the one before (default: [memory] "
                   "overlap_tokens, 40).")
@click.option("--text-field", default=None,
              help="JSONL: the field holding the text (default: text, else content, else the "
                   "whole record).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def add(workspace: str | None, collection: str, paths: tuple[str, ...],
        chunk_tokens: int | None, overlap_tokens: int | None, text_field: str | None,
        as_json: bool) -> None:
    """Add files and folders (Markdown, text, HTML, PDF, JSONL) to COLLECTION.

    Incremental: an unchanged file costs a hash, a changed one is indexed again, and a file
    gone from a folder given again (or a path that no longer exists) is removed.
    """
    with _opened(workspace) as (_, config, _store, memory):
        embedder = _embedder(config)
        chunks = chunk_tokens or config.memory.chunk_tokens
        overlap = config.memory.overlap_tokens if overlap_tokens is None else overlap_tokens
        if overlap * 2 > chunks:
            raise click.BadParameter("must be at most half of --chunk-tokens",
                                     param_hint="--overlap")
        with Progress(transient=True, disable=as_json) as progress:
            task = progress.add_task(f"adding to {collection}", total=None)
            report = ingest(
                memory, embedder, collection, paths, chunk_tokens=chunks,
                overlap_tokens=overlap, text_field=text_field,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    _echo_report(report, as_json)


@kb.command("promote")
@workspace_option
@click.argument("collection")
@click.option("--trajectory", "trajectory_ids", multiple=True,
              help="A trajectory id; repeat for several.")
@click.option("--metric", default=None, help="Select trajectories with feedback on METRIC...")
@click.option("--value", default=None, help="...equal to this JSON value (true, 0.8, \"label\").")
@click.option("--function", default=None, help="Only trajectories of this function.")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True,
              help="At most this many selected trajectories (newest first).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def promote_(workspace: str | None, collection: str, trajectory_ids: tuple[str, ...],
             metric: str | None, value: str | None, function: str | None, limit: int,
             as_json: bool) -> None:
    """Add trajectories to COLLECTION as question/answer memory linked back to them.

    Choose them by id (--trajectory), or by feedback (--metric resolved --value true), or both.
    """
    if value is not None and metric is None:
        raise click.BadParameter("needs --metric", param_hint="--value")
    if not trajectory_ids and metric is None and function is None:
        raise click.UsageError("choose trajectories: --trajectory ID, or --metric (and --value)")
    with _opened(workspace) as (_, config, store, memory):
        check_function(config, store, function)
        ids = list(trajectory_ids)
        if metric is not None or function is not None:
            ids += _select(store, metric, None if value is None else _json_value(value),
                           function, limit)
        report = promote(memory, _embedder(config), store, collection, ids)
    _echo_report(report, as_json)


def _select(store: Store, metric: str | None, value: Any, function: str | None,
            limit: int) -> list[str]:
    """Ids of the newest trajectories whose latest feedback on `metric` equals `value`."""
    chosen: list[str] = []
    cursor = None
    while len(chosen) < limit:
        page, cursor = store.trajectories(TrajectoryFilter(metric=metric, function=function),
                                          limit=200, cursor=cursor)
        for summary in page:
            if metric is None or value is None:
                chosen.append(summary.id)
                continue
            feedback = store.trajectory(summary.id).feedback or []
            latest = [f for f in sorted(feedback, key=lambda f: f.created_at)
                      if f.metric == metric]
            if latest and latest[-1].value == value:
                chosen.append(summary.id)
        if cursor is None:
            break
    return chosen[:limit]


@kb.command("list")
@workspace_option
@click.argument("collection", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_(workspace: str | None, collection: str | None, as_json: bool) -> None:
    """The collections; with COLLECTION, its documents."""
    with _opened(workspace) as (_, _config, _store, memory):
        if collection is None:
            rows: list[dict[str, Any]] = [
                {"name": c.name, "documents": c.documents, "chunks": c.chunks,
                 "embedder": c.embedder, "dim": c.dim, "chunk_tokens": c.chunk_tokens,
                 "overlap_tokens": c.overlap_tokens, "generation": c.generation,
                 "updated_at": c.updated_at}
                for c in memory.collections()
            ]
        else:
            if memory.collection(collection) is None:
                raise NotFound(f"no collection {collection!r}")
            rows = [
                {"source": d.source, "chunks": d.chunks, "size": d.size,
                 "content_hash": d.content_hash, "ingested_at": d.ingested_at,
                 "metadata": d.metadata}
                for d in memory.documents(collection).values()
            ]
    if as_json:
        click.echo(orjson.dumps({"data": rows}).decode())
        return
    columns = (["name", "documents", "chunks", "embedder", "chunk_tokens", "overlap_tokens"]
               if collection is None else ["source", "chunks", "size"])
    numbers = {"documents", "chunks", "chunk_tokens", "overlap_tokens", "size"} & set(columns)
    table = Grid(*columns, ids={"name", "embedder", "source"} & set(columns), right=numbers)
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    _console().print(table)


@kb.command()
@workspace_option
@click.argument("collection")
@click.argument("source", required=False)
def remove(workspace: str | None, collection: str, source: str | None) -> None:
    """Remove COLLECTION, or only its document SOURCE (a folder: every document below it)."""
    with _opened(workspace) as (_, _config, _store, memory):
        if source is None:
            memory.delete_collection(collection)
            click.echo(f"removed collection {collection}")
            return
        if memory.collection(collection) is None:
            raise NotFound(f"no collection {collection!r}")
        prefix = source.rstrip("/") + "/"
        sources = [s for s in memory.documents(collection)
                   if s == source or s.startswith(prefix)]
        if not sources:
            raise VeteranError(f"no document {source!r} in collection {collection!r}")
        for found in sources:
            memory.delete_document(collection, found)
    click.echo(f"removed {len(sources)} document{'s' if len(sources) != 1 else ''}")


@kb.command()
@workspace_option
@click.argument("collection")
@click.argument("query")
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid",
              show_default=True)
@click.option("--filter", "filters", multiple=True,
              help="KEY=VALUE on chunk metadata (VALUE as JSON, else a string); repeatable.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None,
              help="Leave out chunks less relevant than this: the larger of their similarity "
                   "to QUERY and the share of its keywords they hold (default: [memory] "
                   "min_score, 0.25; 0 shows every match).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def search(workspace: str | None, collection: str, query: str, k: int, mode: str,
           filters: tuple[str, ...], min_score: float | None, as_json: bool) -> None:
    """The K chunks of COLLECTION that best answer QUERY, with their scores.

    Each hit shows its rank score (how it placed against the other matches) and the two
    measures of relevance that --min-score is compared with: similarity (cosine of the
    embeddings; none in bm25 mode) and keywords (share of the query's keyword weight).
    """
    from veteran.memory.search import MemoryIndex, Mode

    parsed: dict[str, Any] = {}
    for item in filters:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter("must look like KEY=VALUE", param_hint="--filter")
        parsed[key] = _json_value(raw)
    with _opened(workspace) as (ws, config, _store, memory):
        floor = config.memory.min_score if min_score is None else min_score
        index = MemoryIndex(memory, _embedder(config), cache_dir=ws.path / "memory")
        hits = index.search(collection, query, k=k, filters=parsed or None,
                            mode=cast(Mode, mode), min_score=floor)
    if as_json:
        click.echo(orjson.dumps({"min_score": floor, "data": [
            {"score": h.score, "relevance": h.relevance, "similarity": h.similarity,
             "keywords": h.keywords, "bm25_rank": h.bm25_rank, "dense_rank": h.dense_rank,
             "id": h.chunk.id, "source": h.chunk.source, "text": h.chunk.text,
             "metadata": h.chunk.metadata}
            for h in hits
        ]}).decode())
        return
    if not hits:
        click.echo(f"no chunk of {collection} reaches min score {floor:g} for this query"
                   + ("; --min-score 0 shows every match" if floor > 0 else ""), err=True)
    console = _console()
    for rank, hit in enumerate(hits, start=1):
        heading = " > ".join(str(h) for h in hit.chunk.metadata.get("heading") or [])
        where = f"{hit.chunk.source}" + (f" ({heading})" if heading else "")
        similarity = "-" if hit.similarity is None else f"{hit.similarity:.3f}"
        console.print(f"[bold]{rank}. {where}[/bold]  score {hit.score:.4f}  similarity "
                      f"{similarity}  keywords {hit.keywords or 0:.3f}", highlight=False)
        console.print(hit.chunk.text, markup=False, highlight=False)
        console.print()
