from __future__ import annotations

import click
import orjson

from veteran.cli.options import workspace_option
from veteran.cli.store import open_store
from veteran.gateway import parse_feedback, seal_feedback
from veteran.policies import Detector


@click.group()
def feedback() -> None:
    """Record outcomes for trajectories and episodes."""


@feedback.command()
@workspace_option
@click.option("--trajectory", "trajectory_id", default=None, help="Trajectory id.")
@click.option("--episode", "episode_id", default=None, help="Episode id.")
@click.option("--metric", required=True, help="A metric declared in veteran.toml.")
@click.option("--value", required=True, help="JSON value: true, 0.8, \"label\", ...")
@click.option("--source", default=None)
@click.option("--comment", default=None)
def add(workspace: str | None, trajectory_id: str | None, episode_id: str | None, metric: str,
        value: str, source: str | None, comment: str | None) -> None:
    """Record one piece of feedback (the same checks as POST /v1/feedback)."""
    try:
        parsed_value = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed_value = value  # a bare word is a string: --value billing
    ws, store = open_store(workspace)
    body = {"trajectory_id": trajectory_id, "episode_id": episode_id, "metric": metric,
            "value": parsed_value, "source": source, "comment": comment}
    config = ws.load_config()
    fields = seal_feedback(parse_feedback({k: v for k, v in body.items() if v is not None},
                                          config.metrics), config, Detector.for_config(config))
    try:
        item = store.add_feedback(**fields)
    finally:
        store.close()
    click.echo(orjson.dumps(item.model_dump(mode="json")).decode())
