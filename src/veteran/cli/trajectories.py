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
from veteran.cli.store import check_function, open_store
from veteran.errors import VeteranError
from veteran.store import AuditLog, TrajectoryFilter
from veteran.store.imports import ImportReport, Mapping, Rule, parse_openai_log
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


def _function(filters: dict[str, object]) -> str | None:
    function = filters.get("function")
    return function if isinstance(function, str) else None


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
    ws, store = open_store(workspace)
    try:
        check_function(ws.load_config(), store, _function(filters))
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
                      t.variant or "-", f"{t.provider}/{t.model}" if t.provider else "-",
                      t.status,
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
    ws, store = open_store(workspace)
    count = 0
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        check_function(ws.load_config(), store, _function(filters))
        out = stack.enter_context(Path(output).open("wb")) if output else sys.stdout.buffer
        for trajectory in store.export(_filter(**filters)):  # type: ignore[arg-type]
            out.write(orjson.dumps(trajectory.model_dump(mode="json")) + b"\n")
            count += 1
        AuditLog(store.engine).record(
            action="trajectories.export",
            target=str(Path(output).resolve()) if output else "standard output",
            details={"exported": count,
                     "filters": {k: v for k, v in filters.items() if v not in (None, ())}})
    if output:
        click.echo(f"exported {count} trajectories to {output}", err=True)


def _rules(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
           ) -> tuple[Rule, ...]:
    try:
        return tuple(Rule.parse(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@trajectories.command("import")
@workspace_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--function", default=None,
              help="The function of every record that no --map rule maps to one.")
@click.option("--map", "rules", multiple=True, callback=_rules, metavar="RULE",
              help="Map a field (`model`, `metadata.KEY`) to a function or a tag: "
                   "FIELD:VALUE=FUNCTION, FIELD=function (the value names it) or "
                   "FIELD=tag:NAME. Repeatable; the first function rule that matches wins.")
@click.option("--json", "as_json", is_flag=True, help="Print what was mapped as JSON.")
def import_(workspace: str | None, file: str, function: str | None, rules: tuple[Rule, ...],
            as_json: bool) -> None:
    """Import an OpenAI-format log: one {"request": ..., "response": ...} per line.

    Each record keeps its time (`created_at`, else the response's `created`). A record feeds
    `data export FUNCTION` and `train` once it belongs to a function: give --function for all,
    or --map rules, e.g. --map model:gpt-4o=triage --map metadata.team=tag:team. What was not
    mapped is reported (see docs/datasets.md, "Importing history")."""
    ws, store = open_store(workspace)
    try:
        config = ws.load_config()
        check_function(config, store, function)
        for rule in rules:
            if rule.target == "function" and rule.name is not None:
                check_function(config, store, rule.name, param=f"--map {rule.text}")
        known: dict[str, bool] = {}

        def is_function(name: str) -> bool:
            if name not in known:
                known[name] = name in config.functions or store.has_function(name)
            return known[name]

        report = ImportReport()
        with open(file, "rb") as handle:
            try:
                records = parse_openai_log(handle, Mapping(rules, function, is_function), report)
            except VeteranError as exc:
                raise VeteranError(f"{file}: {exc.message}; nothing imported") from None
        count = store.insert(records)
        AuditLog(store.engine).record(
            action="trajectories.import", target=str(Path(file).resolve()),
            details={"imported": count, "function": function})
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps({"imported": count, "file": file, **report.to_json()}).decode())
        return
    click.echo(f"imported {count} trajectories from {file}")
    for line in report.lines():
        click.echo(line)
