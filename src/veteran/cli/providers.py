"""`veteran providers`: see the configured providers and switch one off or on without a restart.

The switch is stored in the workspace's store; every running gateway on that store reads it
within a second (`veteran.gateway.poll_switches`) and skips the provider, sending its traffic to
the functions' fallbacks: the "vendor suspended us at 5:21 PM" case.
"""

from __future__ import annotations

import click

from veteran.cli.options import workspace_option
from veteran.cli.store import open_store
from veteran.errors import VeteranError


@click.group()
def providers() -> None:
    """List providers; switch one off or back on for every running gateway."""


@providers.command("list")
@workspace_option
def list_(workspace: str | None) -> None:
    """Providers in veteran.toml, their kind, and whether an operator switched them off."""
    ws, store = open_store(workspace)
    try:
        disabled = store.disabled_providers()
    finally:
        store.close()
    for name, settings in ws.load_config().providers.items():
        state = "disabled" if name in disabled else "enabled"
        reason = f"  ({disabled[name]})" if disabled.get(name) else ""
        click.echo(f"{name}\t{settings.kind}\t{state}{reason}")
    for name in sorted(disabled.keys() - ws.load_config().providers.keys()):
        click.echo(f"{name}\t-\tdisabled (not in veteran.toml)")


@providers.command()
@workspace_option
@click.argument("name")
@click.option("--reason", default=None, help="Why, shown in errors and `providers list`.")
def disable(workspace: str | None, name: str, reason: str | None) -> None:
    """Switch provider NAME off: running gateways stop calling it within a second."""
    _switch(workspace, name, disabled=True, reason=reason)
    click.echo(f"provider {name} disabled; gateways on this store skip it within a second")


@providers.command()
@workspace_option
@click.argument("name")
def enable(workspace: str | None, name: str) -> None:
    """Switch provider NAME back on."""
    _switch(workspace, name, disabled=False, reason=None)
    click.echo(f"provider {name} enabled")


def _switch(workspace: str | None, name: str, *, disabled: bool, reason: str | None) -> None:
    ws, store = open_store(workspace)
    try:
        known = ws.load_config().providers
        if name not in known:
            raise VeteranError(
                f"no provider {name!r} in {ws.config_path}; known: {', '.join(known) or 'none'}"
            )
        if reason is not None and len(reason) > 500:
            raise VeteranError("--reason is longer than 500 characters")
        store.switch_provider(name, disabled=disabled, reason=reason)
    finally:
        store.close()
