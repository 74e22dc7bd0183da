"""`veteran train FUNCTION --recipe NAME`: train an owned model on the function's trajectories."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from veteran.cli.curation import curation_from_options, curation_options, evals_note
from veteran.cli.options import CONTEXT, workspace_option
from veteran.cli.store import open_store
from veteran.train import types
from veteran.train.job import TrainingStopped, train_model
from veteran.train.recipes import RECIPES


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`K=V` pairs; a V that parses as JSON is that value (`learning_rate=1e-4`,
    `gradient_checkpointing=true`), else it is the string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            params[key] = value
    return params


def _figures(metrics: dict[str, float]) -> str:
    """The headline figures; namespaced ones (`rewards/NAME/mean`, `eval_completions/...`) are
    left to `veteran models show`."""
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items() if "/" not in k)


@click.command(name="train", context_settings=CONTEXT)
@workspace_option
@click.argument("function")
@click.option("--recipe", required=True,
              help=f"The training method: {', '.join(RECIPES)} (see docs/recipes.md).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A recipe parameter (repeatable); VALUE is JSON when it parses, else a "
                   "string.")
@click.option("--base-model", default=None,
              help="The model to start from: an owned model's id (e.g. sft-lora's, to train "
                   "grpo on it), a Hugging Face folder or a .gguf file (default: the "
                   "built-in model).")
@click.option("--suite", default=None,
              help="For grpo: the suite whose graders give the rewards (default: the "
                   "function's gate suite).")
@curation_options
@click.option("--resume", default=None, metavar="MODEL_ID",
              help="Continue an interrupted training from its latest checkpoint (its saved "
                   "options are used).")
@click.option("--json", "as_json", is_flag=True, help="Print the model's record as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(workspace: str | None, function: str, recipe: str, params: tuple[str, ...],
          base_model: str | None, suite: str | None, resume: str | None, as_json: bool,
          quiet: bool, **curation: Any) -> None:
    """Train an owned model for FUNCTION on its captured trajectories with --recipe, and
    register it (models/MODEL_ID in the workspace, with its lineage).

    Ctrl-C stops the training; its checkpoints stay and `--resume MODEL_ID` continues it.
    Promote the model with `veteran models promote FUNCTION MODEL_ID --weight 0.1`."""
    parsed = parse_params(params)
    chosen = curation_from_options(curation)
    ws, store = open_store(workspace)
    console = Console(stderr=True)
    try:
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[figures]}"), console=console,
                      disable=quiet or as_json) as bar:
            task = bar.add_task(f"train {function} ({recipe})", total=None, figures="")

            def progress(p: types.Progress) -> None:
                bar.update(task, completed=p.step, total=p.total or None,
                           figures=_figures(p.metrics))

            record = train_model(ws, ws.load_config(), store, function, recipe,
                                 params=parsed, base_model=base_model, suite=suite,
                                 resume=resume, progress=progress,
                                 **chosen.curate_kwargs())
    except TrainingStopped as stopped:
        click.echo(f"stopped; resume with: veteran train {function} --recipe {recipe} "
                   f"--resume {stopped.model_id}", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("stopped before training started", err=True)
        sys.exit(130)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps(record.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"model {record.id} ({record.kind}) trained in {record.seconds:.1f}s: "
               f"{_figures(record.metrics) or 'no metrics'}")
    if (note := evals_note(record.lineage.dataset.get("counts") or {})) is not None:
        click.echo(note)
    click.echo(f"promote with: veteran models promote {function} {record.id} --weight 0.1")

