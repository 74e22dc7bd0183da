"""Open the workspace's store for a command."""

from __future__ import annotations

import click

from veteran.config import Config
from veteran.store import Store
from veteran.workspace import Workspace


def open_store(workspace: str | None) -> tuple[Workspace, Store]:
    ws = Workspace.resolve(workspace)
    config = ws.load_config()
    return ws, Store.open(ws.database_url(config),
                          sqlite_synchronous=config.capture.sqlite_synchronous)


def check_function(config: Config, store: Store, function: str | None, *,
                   param: str = "--function") -> None:
    """A usage error (exit 2) naming the known functions when `function` is neither in
    veteran.toml nor in the store (a function removed from veteran.toml keeps its history)."""
    if function is None or function in config.functions or store.has_function(function):
        return
    configured = sorted(config.functions)
    stored = [f for f in store.functions() if f not in config.functions]
    known = f"veteran.toml has {', '.join(configured) or 'none'}"
    if stored:
        known += f"; the store also has {', '.join(stored)}"
    raise click.BadParameter(f"no function {function!r} ({known})", param_hint=param)
