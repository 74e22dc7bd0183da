"""`veteran models`: the registry of owned models (list, show, remove), promotion and rollback."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from veteran.cli.options import CONTEXT, workspace_option
from veteran.cli.reload import announce
from veteran.cli.store import open_store
from veteran.models import ModelRecord, Registry, StagedModel
from veteran.train.promote import PromotionRefused, promote, rollback
from veteran.workspace import Workspace


@click.group(name="models", context_settings=CONTEXT)
def models() -> None:
    """Owned models: trained by `veteran train`, promoted to variants after their eval gate."""


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _figures(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in values.items())


@models.command(name="list")
@workspace_option
@click.argument("function", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_command(workspace: str | None, function: str | None, as_json: bool) -> None:
    """Registered models (of FUNCTION), oldest first, and unfinished trainings."""
    registry = Registry(Workspace.resolve(workspace).path)
    records = registry.list(function)
    staged = registry.list_staged(function)
    if as_json:
        _echo_json({"models": [r.to_json() for r in records],
                    "unfinished": [{"id": s.id, **s.job} for s in staged]})
        return
    if not records and not staged:
        click.echo("no models yet (train one with `veteran train FUNCTION --recipe NAME`)")
        return
    for r in records:
        click.echo(f"{r.id}  {r.recipe:<10} {r.kind:<10} {r.status:<11} "
                   f"{_when(r.created_at)}  {_figures(r.metrics)}")
    for s in staged:
        click.echo(f"{s.id}  {s.job.get('recipe')!s:<10} {'':<10} {'unfinished':<11} "
                   f"resume: veteran train {s.job.get('function')} --recipe "
                   f"{s.job.get('recipe')} --resume {s.id}")


def _show(record: ModelRecord) -> list[str]:
    lineage = record.lineage
    dataset = lineage.dataset
    code = lineage.code_version + (f" (git {lineage.git_commit})" if lineage.git_commit else "")
    lines = [
        f"model     {record.id}",
        f"function  {record.function}",
        f"recipe    {record.recipe} ({record.kind}), seed {record.seed}",
        f"base      {record.base_model or '-'}",
        f"status    {record.status}, created {_when(record.created_at)}, "
        f"trained in {record.seconds:.1f}s",
        f"params    {orjson.dumps(record.params).decode()}",
        f"code      {code}",
        f"dataset   {dataset.get('format')} {dataset.get('content_hash')}, "
        f"rows {orjson.dumps(dataset.get('counts')).decode()}",
        f"filters   {orjson.dumps(dataset.get('filters')).decode()}",
        f"metrics   {_figures(record.metrics) or '-'}",
    ]
    if lineage.suite:
        lines.append(f"rewards   suite {lineage.suite}")
    for suite, scores in record.scores.items():
        lines.append(f"gate      {suite}, run {scores.get('run')}: {scores.get('message')}")
    return lines


@models.command(name="show")
@workspace_option
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show_command(workspace: str | None, model: str, as_json: bool) -> None:
    """One model's record: lineage (dataset manifest, recipe, parameters, base model, code
    version), metrics and eval scores."""
    record = Registry(Workspace.resolve(workspace).path).get(model)
    if as_json:
        _echo_json(record.to_json())
        return
    click.echo("\n".join(_show(record)))


@models.command(name="promote")
@workspace_option
@click.argument("function")
@click.argument("model")
@click.option("--weight", type=click.FloatRange(0, 1, min_open=True), required=True,
              help="The model's share of FUNCTION's traffic, above 0 and at most 1.")
@click.option("--skip-gate", is_flag=True,
              help="Promote without running the function's eval gate.")
@click.option("--accept-inconclusive", is_flag=True,
              help="Promote (with a warning) when the gate is inconclusive: the suite could "
                   "not show the model within max_drop, nor worse beyond it.")
@click.option("--json", "as_json", is_flag=True, help="Print the promotion as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def promote_command(workspace: str | None, function: str, model: str, weight: float,
                    skip_gate: bool, accept_inconclusive: bool, as_json: bool,
                    quiet: bool) -> None:
    """Make MODEL a variant of FUNCTION with --weight of its traffic, if it passes the gate.

    The gate (`[functions.FUNCTION.gate]`) runs its suite on the function's main variant and
    the model (called fresh), a non-inferiority test: the model passes only when it is shown
    no worse than max_drop; veteran.toml is written (comments kept) only then. Exit status:
    0 promoted, 1 refused by the gate (failed or inconclusive), 2 usage or configuration
    error."""
    ws, store = open_store(workspace)
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                      disable=quiet or as_json) as bar:
            tasks: list[Any] = []  # the bar appears once the gate runs

            def progress(advance: int, total: int) -> None:
                if not tasks:
                    tasks.append(bar.add_task(f"gate {model}", total=None))
                bar.update(tasks[0], advance=advance, total=total)

            done = promote(ws, ws.load_config(), store, function, model, weight=weight,
                           skip_gate=skip_gate, accept_inconclusive=accept_inconclusive,
                           progress=progress)
        announce(ws, store, "promote", err=as_json)
    except PromotionRefused as refused:
        if as_json:
            _echo_json({"promoted": False, "message": refused.message,
                        "comparison": refused.verdict.comparison.to_json(),
                        "gate": refused.verdict.to_json()})
        else:
            click.echo(refused.message)
        sys.exit(1)
    finally:
        store.close()
    if done.gate is not None and done.gate.get("accepted_inconclusive"):
        click.echo(f"warning: {model} promoted on an inconclusive gate (--accept-inconclusive)",
                   err=True)
    if as_json:
        _echo_json({"promoted": True, **done.to_json()})
        return
    if done.gate is not None:
        click.echo(done.gate["message"])
    weights = ", ".join(f"{k} {v:.4g}" for k, v in done.weights.items())
    click.echo(f"promoted {model} to {weight:.0%} of {function} (weights: {weights}); "
               f"undo with: veteran models rollback {function}")


@models.command(name="rollback")
@workspace_option
@click.argument("function")
@click.option("--json", "as_json", is_flag=True, help="Print the rollback as JSON.")
def rollback_command(workspace: str | None, function: str, as_json: bool) -> None:
    """Undo FUNCTION's latest promotion: remove the model's variant (or restore its earlier
    weight) and restore the weights the promotion replaced."""
    ws, store = open_store(workspace)
    try:
        done = rollback(ws, function)
        announce(ws, store, "rollback", err=as_json)
    finally:
        store.close()
    if as_json:
        _echo_json(done.to_json())
        return
    what = "removed" if done.removed else "re-weighted"
    weights = ", ".join(f"{k} {v:.4g}" for k, v in done.weights.items())
    click.echo(f"rolled back {done.model} ({what}) in {function}; weights: {weights}")


@models.command(name="remove")
@workspace_option
@click.argument("model")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def remove_command(workspace: str | None, model: str, yes: bool) -> None:
    """Delete MODEL's folder: a trained model that veteran.toml no longer routes to (roll a
    promoted one back first), or an unfinished training (stop it first).

    Refused, with exit status 2, while a variant, a provider's `paths` or another model
    trained on top of it still uses the model."""
    ws = Workspace.resolve(workspace)
    registry = Registry(ws.path)
    config = ws.load_config()
    found = registry.find(model)
    if isinstance(found, StagedModel):
        what, users = f"unfinished training {model}", []
    else:
        what, users = f"model {model} ({found.recipe})", registry.users(model, config)
    if not yes and not users:  # one in use is refused below, without asking
        click.confirm(f"delete {what} and all its files?", abort=True, err=True)
    registry.remove(model, config)
    click.echo(f"removed {what}")
