from __future__ import annotations

import click
import orjson
from rich.console import Console

from veteran.access import ROLES, Limits, create_key, list_keys, revoke_key
from veteran.cli.options import workspace_option
from veteran.cli.store import open_store
from veteran.terminal import Grid


@click.group()
def keys() -> None:
    """API keys for the gateway: create, list, revoke (only a hash of each key is stored)."""


@keys.command()
@workspace_option
@click.option("--team", required=True, help="Team of the key; it sees only its team's data.")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="app: call models, send feedback; viewer: read; admin: everything.")
@click.option("--name", default=None, help="A label to tell keys apart.")
@click.option("--rpm", type=click.IntRange(min=1), default=None,
              help="Most model calls per minute with this key.")
@click.option("--tpm", type=click.IntRange(min=1), default=None,
              help="Most tokens per minute with this key.")
@click.option("--spend-per-day", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Most spend per UTC day with this key (the providers' price units).")
def create(workspace: str | None, team: str, role: str, name: str | None, rpm: int | None,
           tpm: int | None, spend_per_day: float | None) -> None:
    """Create a key and print it once: it cannot be shown again."""
    _, store = open_store(workspace)
    try:
        record, key = create_key(store, team=team, role=role, name=name,
                                 limits=Limits(rpm, tpm, spend_per_day))
    finally:
        store.close()
    click.echo(key)
    click.echo(f"created key {record.id} ({record.prefix}..., team {team}, role {role}); "
               "store it now: it is not shown again", err=True)


@keys.command("list")
@workspace_option
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_(workspace: str | None, include_revoked: bool, as_json: bool) -> None:
    """Keys by id, prefix, team and role (never the keys themselves)."""
    _, store = open_store(workspace)
    try:
        found = list_keys(store, include_revoked=include_revoked)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps({"data": [k.as_dict() for k in found]}).decode())
        return
    table = Grid("id", "prefix", "name", "team", "role", "limits", "revoked",
                 ids={"id", "prefix", "name", "team", "role"})
    for k in found:
        limits = ", ".join(f"{name}={value:g}" for name, value in k.limits.as_dict().items()
                           if value is not None)
        table.add_row(k.id, k.prefix + "...", k.name or "-", k.team, k.role, limits or "-",
                      "yes" if k.revoked_at is not None else "")
    Console().print(table)


@keys.command()
@workspace_option
@click.argument("key_id")
def revoke(workspace: str | None, key_id: str) -> None:
    """Revoke the key KEY_ID; running gateways refuse it within 2 seconds."""
    _, store = open_store(workspace)
    try:
        record = revoke_key(store, key_id)
    finally:
        store.close()
    click.echo(f"revoked key {record.id} ({record.prefix}..., team {record.team})")
