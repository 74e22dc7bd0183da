"""`veteran data`: curate a function's trajectories and export them as training data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console

from veteran.cli.curation import curation_from_options, curation_options, evals_note
from veteran.cli.options import CONTEXT, workspace_option
from veteran.cli.store import open_store
from veteran.datasets import FORMATS, KINDS, Kind, curate, export, manifest_to_json
from veteran.evals.graders import to_openai_grader
from veteran.evals.suite import load_suite
from veteran.store import AuditLog
from veteran.terminal import Grid

# The kind a format needs, when --kind is not given.
DEFAULT_KIND: dict[str, Kind] = {
    "openai-dpo": "preference", "hf-dpo": "preference", "openai-rft": "environment",
}


@click.group(name="data", context_settings=CONTEXT)
def data() -> None:
    """Training data: curated trajectories exported in open formats."""


@data.command(name="export")
@workspace_option
@click.argument("function")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="openai-sft | openai-dpo | openai-rft | hf-sft | hf-dpo | parquet.")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder to write (created; must be empty unless --overwrite).")
@click.option("--kind", type=click.Choice(KINDS), default=None,
              help="sft, preference (pairs) or environment (prompt + reference); default: "
                   "what the format needs (sft for SFT formats and parquet).")
@click.option("--grader", "grader_name", default=None, metavar="SUITE:GRADER",
              help="openai-rft: also write this eval grader as grader.json (OpenAI graders).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@curation_options
def export_command(workspace: str | None, function: str, fmt: str, out: str, kind: Kind | None,
                   grader_name: str | None, overwrite: bool, as_json: bool,
                   **options: Any) -> None:
    """Curate FUNCTION's trajectories and write them in --format to --out, with manifest.json."""
    curation = curation_from_options(options)
    ws, store = open_store(workspace)
    try:
        config = ws.load_config()
        grader = None
        if grader_name is not None:
            suite_name, sep, name = grader_name.partition(":")
            suite = load_suite(ws.path, suite_name, config)
            if not sep or name not in suite.config.graders:
                raise click.BadParameter(
                    f"give SUITE:GRADER; {suite_name}'s graders: "
                    f"{', '.join(suite.config.graders)}", param_hint="--grader")
            grader = to_openai_grader(name, suite.config.graders[name].spec())
        curated = curate(store, config, function, kind=kind or DEFAULT_KIND.get(fmt, "sft"),
                         **curation.curate_kwargs())
        manifest = export(curated, fmt, Path(out), grader=grader, overwrite=overwrite)
        AuditLog(store.engine).record(
            action="data.export", target=function,
            details={"format": fmt, "kind": curated.kind, "out": str(Path(out).resolve()),
                     "counts": dict(curated.counts)})
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps({**manifest_to_json(manifest),
                                 "manifest": str(Path(out) / "manifest.json")},
                                option=orjson.OPT_INDENT_2).decode())
        return
    table = Grid("count", "trajectories / examples", ids={"count"},
                 right={"trajectories / examples"})
    for key, value in curated.counts.items():
        table.add_row(key, str(value))
    click.echo(f"{function}: {curated.kind} examples as {fmt}")
    Console().print(table)
    if (note := evals_note(curated.counts)) is not None:
        click.echo(note)
    click.echo(f"wrote {len(manifest.files)} files to {out}")
    click.echo(f"manifest: {Path(out) / 'manifest.json'} ({manifest.content_hash})")
