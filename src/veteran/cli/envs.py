"""`veteran env`: reinforcement-learning environments from a function's tasks and a suite."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from veteran.cli.options import CONTEXT, workspace_option
from veteran.envs import export_suite
from veteran.workspace import Workspace


@click.group(name="env", context_settings=CONTEXT)
def envs() -> None:
    """Environments: a function's real tasks, rewarded by a suite's graders."""


@envs.command(name="export")
@workspace_option
@click.argument("function")
@click.option("--suite", required=True,
              help="Suite whose graders are the reward (evals/SUITE.toml).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write the package in (new or empty).")
@click.option("--source", type=click.Choice(["suite", "store"]), default="suite",
              show_default=True,
              help="Tasks from the suite's dataset, or from FUNCTION's trajectories that have "
                   "a reference (a demonstration, or an answer with positive feedback).")
@click.option("--package", default=None,
              help="Python package name (default: FUNCTION_SUITE, lower case).")
@click.option("--grader", "graders", multiple=True,
              help="Reward by these graders only (repeatable; default: all, equal weights).")
@click.option("--include-evals", is_flag=True,
              help="With --source store: keep evaluation calls (eval samples, judges, "
                   "canaries), left out by default.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_command(workspace: str | None, function: str, suite: str, out_dir: str,
                   source: str, package: str | None, graders: tuple[str, ...],
                   include_evals: bool, as_json: bool) -> None:
    """Export FUNCTION's environment on SUITE as an installable verifiers package."""
    ws = Workspace.resolve(workspace)
    weights = dict.fromkeys(graders, 1.0) if graders else None
    env, folder = export_suite(ws.path, ws.load_config(), suite, Path(out_dir),
                               function=function, package=package,
                               source="store" if source == "store" else "suite",
                               weights=weights, include_evals=include_evals)
    result = {"environment": env.name, "package": folder.name, "path": str(folder.parent),
              "tasks": len(env), "graders": list(env.graders), "weights": env.weights}
    if as_json:
        click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"exported {env.name}: {len(env)} tasks, graders {', '.join(env.graders)}")
    click.echo(f"  pip install {folder.parent}   then   vf eval {folder.name}")
