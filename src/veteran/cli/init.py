from __future__ import annotations

import click

from veteran.workspace import init_workspace


@click.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
def init(directory: str) -> None:
    """Create a workspace in DIRECTORY with a commented veteran.toml."""
    workspace = init_workspace(directory)
    click.echo(f"created {workspace.config_path}")
    click.echo(f"next: veteran serve --workspace {workspace.path}")
