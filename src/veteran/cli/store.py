"""Open the workspace's store for a command."""

from __future__ import annotations

from veteran.store import Store
from veteran.workspace import Workspace


def open_store(workspace: str | None) -> tuple[Workspace, Store]:
    ws = Workspace.resolve(workspace)
    config = ws.load_config()
    return ws, Store.open(ws.database_url(config),
                          sqlite_synchronous=config.capture.sqlite_synchronous)
