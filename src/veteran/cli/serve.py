from __future__ import annotations

import click

from veteran.cli.options import workspace_option
from veteran.serving import serve as run_server
from veteran.workspace import Workspace


@click.command()
@workspace_option
@click.option("--host", default=None, help="Address to bind (default: server.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: server.port, 4000).")
def serve(workspace: str | None, host: str | None, port: int | None) -> None:
    """Run the gateway: OpenAI-compatible API, every call captured."""
    run_server(Workspace.resolve(workspace), host=host, port=port)
