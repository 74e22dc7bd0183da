"""`veteran audit`: the audit chain (veteran.store.audit): who did what to the workspace, when."""

from __future__ import annotations

import datetime as dt
import sys

import click
import orjson
from rich.console import Console

from veteran.cli.options import CONTEXT, workspace_option
from veteran.cli.store import open_store
from veteran.store import AuditLog
from veteran.terminal import Grid


@click.group(name="audit", context_settings=CONTEXT)
def audit() -> None:
    """The audit chain: keys made and revoked, providers switched, configs published, data
    exported and imported; hash-chained, so an edit, a deletion or a reordering shows."""


@audit.command(name="list")
@workspace_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="How many entries, newest first.")
@click.option("--action", default=None, help="Only this action (key.create, config.publish...).")
@click.option("--before", type=click.IntRange(min=1), default=None,
              help="Only entries numbered below this one (the next page).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(workspace: str | None, limit: int, action: str | None, before: int | None,
                 as_json: bool) -> None:
    """The newest entries of the chain."""
    _, store = open_store(workspace)
    try:
        entries = AuditLog(store.engine).entries(limit=limit, action=action, before=before)
    finally:
        store.close()
    if as_json:
        for entry in entries:
            click.echo(orjson.dumps(entry.to_json()).decode())
        return
    if not entries:
        click.echo("no audit entries" + (f" for {action}" if action else ""))
        return
    table = Grid("#", "when (UTC)", "actor", "action", "target", "details", ids={"#"},
                 right={"#"})
    for entry in entries:
        when = dt.datetime.fromtimestamp(entry.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        details = orjson.dumps(entry.details).decode() if entry.details else ""
        table.add_row(str(entry.seq), when, entry.actor, entry.action, entry.target or "",
                      details)
    Console().print(table)


def _anchor(ctx: click.Context, param: click.Parameter, value: str | None
            ) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, sep, digest = value.partition(":")
    if not (sep and seq.isdigit() and int(seq) >= 1 and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)):
        raise click.BadParameter("give SEQ:HASH, as `audit verify` printed the head "
                                 "(e.g. 12:9f2c...: 64 hex digits)")
    return int(seq), digest


@audit.command()
@workspace_option
@click.option("--head", "anchor", callback=_anchor, metavar="SEQ:HASH", default=None,
              help="A head kept from an earlier verify: the chain must still hold it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(workspace: str | None, anchor: tuple[int, str] | None, as_json: bool) -> None:
    """Check every entry against its hash and the one before it; exit 1 at the first break.

    The head it prints (the last entry's number and hash) can be kept outside the workspace
    and given back with --head: a chain cut short at its end, which is still a valid chain, is
    only seen that way."""
    _, store = open_store(workspace)
    try:
        check = AuditLog(store.engine).verify(anchor=anchor)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps(check.to_json()).decode())
    elif check.ok:
        head = "empty" if check.head is None else f"head {check.head[0]}:{check.head[1]}"
        entries = "1 entry" if check.entries == 1 else f"{check.entries} entries"
        click.echo(f"audit chain intact: {entries}, {head}")
    else:
        intact = ("1 entry before it is" if check.entries == 1
                  else f"{check.entries} entries before it are")
        click.echo(f"audit chain broken at entry {check.broken_at}: {check.reason} "
                   f"({intact} intact)", err=True)
    if not check.ok:
        sys.exit(1)
