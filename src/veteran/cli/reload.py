"""`veteran reload`: every running gateway on the store swaps to veteran.toml as it is now.

The commands that edit veteran.toml (`models promote`, `models rollback`, `drill --apply`)
publish it themselves; this is for an edit made by hand (a serving gateway also notices its own
file change within a second, and reloads on SIGHUP). How it travels: veteran.gateway's live.py.
"""

from __future__ import annotations

import click

from veteran.cli.options import workspace_option
from veteran.cli.store import open_store
from veteran.gateway import publish
from veteran.store import Store
from veteran.workspace import Workspace


@click.command()
@workspace_option
def reload(workspace: str | None) -> None:
    """Check veteran.toml and make every running gateway on this store serve it within 2 s.

    A file that does not validate is refused with its error, and the gateways keep serving the
    config they have. Changes to [server], [capture], [memory], [canaries] and database_url
    apply only after a restart."""
    ws, store = open_store(workspace)
    try:
        announce(ws, store, "reload")
    finally:
        store.close()


def announce(ws: Workspace, store: Store, source: str, *, err: bool = False) -> None:
    """Publish the workspace's veteran.toml (`source`: what changed it) and say so (on stderr
    with `err`: a command printing JSON)."""
    version, new = publish(ws, store, source)
    if new:
        click.echo(f"published {ws.config_path} as config version {version.version}; running "
                   "gateways on this store follow within 2 s", err=err)
    else:
        click.echo(f"{ws.config_path} is config version {version.version} already; running "
                   "gateways on this store serve it", err=err)
