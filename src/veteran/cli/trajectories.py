from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console

from veteran.cli.options import workspace_option
from veteran.cli.store import open_store
from veteran.errors import VeteranError
from veteran.store import TrajectoryFilter
from veteran.store.imports import parse_openai_log
from veteran.terminal import Grid
from veteran.types import parse_timestamp

F = TypeVar("F", bound=Callable[..., Any])


def _filters(func: F) -> F:
    for option in reversed([
        click.option("--function", default=None, help="Only this function."),
        click.option("--variant", default=None, help="Only this variant."),
        click.option("--status", type=click.Choice(["ok", "error", "incomplete"]), default=None),
        click.option("--since", default=None, help="ISO 8601 time or UNIX seconds (inclusive)."),
        click.option("--until", default=None, help="ISO 8601 time or UNIX seconds (exclusive)."),
        click.option("--metric", default=None, help="Only trajectories with feedback on METRIC."),
        click.option("--tag", "tags", multiple=True, help="KEY=VALUE; repeat to require several."),
    ]):
        func = option(func)
    return workspace_option(func)


def _filter(function: str | None, variant: str | None, status: str | None, since: str | None,
            until: str | None, metric: str | None, tags: tuple[str, ...]) -> TrajectoryFilter:
    parsed = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter("must look like KEY=VALUE", param_hint="--tag")
        parsed[key] = value
    try:
        return TrajectoryFilter(
            function=function, variant=variant, status=status, metric=metric, tags=parsed,
            since=parse_timestamp(since) if since else None,
            until=parse_timestamp(until) if until else None,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from None


@click.group()
def trajectories() -> None:
    """List, show, export and import captured calls."""


@trajectories.command("list")
@_filters
@click.option("--limit", type=click.IntRange(1, 1000), default=20)
@click.option("--cursor", default=None, help="next_cursor of a previous page.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_(workspace: str | None, limit: int, cursor: str | None, as_json: bool,
          **filters: object) -> None:
    """The newest trajectories, one line each."""
    _, store = open_store(workspace)
    try:
        page, next_cursor = store.trajectories(_filter(**filters), limit=limit,  # type: ignore[arg-type]
                                               cursor=cursor)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps({
            "data": [t.model_dump(mode="json", exclude_none=True) for t in page],
            "next_cursor": next_cursor,
        }).decode())
        return
    table = Grid("id", "created", "function", "variant", "model", "status", "ms", "tokens",
                 ids={"id", "function", "variant", "model"}, right={"ms", "tokens"})
    for t in page:
        row = t.model_dump(mode="json")
        table.add_row(t.id, row["created_at"][:19].replace("T", " "), t.function or "-",
                      t.variant or "-", f"{t.provider}/{t.model}", t.status,
                      f"{t.latency_ms:.0f}" if t.latency_ms is not None else "-",
                      str(t.usage.total_tokens or "-"))
    Console().print(table)
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}")


@trajectories.command()
@workspace_option
@click.argument("trajectory_id")
def show(workspace: str | None, trajectory_id: str) -> None:
    """One trajectory in full, with its feedback, as JSON."""
    _, store = open_store(workspace)
    try:
        trajectory = store.trajectory(trajectory_id)
    finally:
        store.close()
    click.echo(orjson.dumps(trajectory.model_dump(mode="json"), option=orjson.OPT_INDENT_2))


@trajectories.command()
@_filters
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: standard output).")
def export(workspace: str | None, fmt: str, output: str | None, **filters: object) -> None:
    """Every matching trajectory in full, with feedback, one JSON object per line."""
    _, store = open_store(workspace)
    count = 0
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        out = stack.enter_context(Path(output).open("wb")) if output else sys.stdout.buffer
        for trajectory in store.export(_filter(**filters)):  # type: ignore[arg-type]
            out.write(orjson.dumps(trajectory.model_dump(mode="json")) + b"\n")
            count += 1
    if output:
        click.echo(f"exported {count} trajectories to {output}", err=True)


@trajectories.command("import")
@workspace_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_(workspace: str | None, file: str) -> None:
    """Import an OpenAI-format log: one {"request": ..., "response": ...} per line."""
    with open(file, "rb") as handle:
        try:
            records = parse_openai_log(handle)
        except VeteranError as exc:
            raise VeteranError(f"{file}: {exc.message}; nothing imported") from None
    _, store = open_store(workspace)
    try:
        count = store.insert(records)
    finally:
        store.close()
    click.echo(f"imported {count} trajectories from {file}")
