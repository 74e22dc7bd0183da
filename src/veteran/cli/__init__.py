"""`veteran`: one command group per concept; each command parses arguments and calls the library."""

from __future__ import annotations

import sys

import click

from veteran.cli import (
    audit,
    data,
    drill,
    envs,
    evals,
    feedback,
    init,
    kb,
    keys,
    models,
    policy,
    providers,
    reload,
    serve,
    train,
    trajectories,
)
from veteran.errors import VeteranError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="veteran")
def cli() -> None:
    """veteran: a company's own learning loop around any model."""


cli.add_command(serve.serve)
cli.add_command(init.init)
cli.add_command(trajectories.trajectories)
cli.add_command(feedback.feedback)
cli.add_command(keys.keys)
cli.add_command(providers.providers)
cli.add_command(reload.reload)
cli.add_command(kb.kb)
cli.add_command(evals.evals)
cli.add_command(drill.drill)
cli.add_command(data.data)
cli.add_command(envs.envs)
cli.add_command(train.train)
cli.add_command(models.models)
cli.add_command(policy.policy)
cli.add_command(audit.audit)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VeteranError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
