"""`veteran drill`: what if a provider disappeared now (and `--apply`: move its traffic)."""

from __future__ import annotations

import click
import orjson

from veteran.cli.options import workspace_option
from veteran.cli.reload import announce
from veteran.cli.store import open_store
from veteran.evals.drill import DrillPlan, FunctionDrill, apply_drill, plan_drill
from veteran.evals.runs import Runs


def _num(value: float | None, why: str | None = None) -> str:
    if value is None:
        return f"unknown ({why})" if why else "unknown"
    return f"{value:.3f}"


def _describe(f: FunctionDrill) -> list[str]:
    lines = [f"{f.function}: loses {', '.join(f.lost)} ({f.lost_weight:.0%} of traffic)"]
    if f.best is None:
        lines.append("  no fallback: every variant is on this provider, the function would fail")
        return lines
    best = f.scores.get(f.best)
    scored = (f"{best.mean:.3f} [{best.low:.3f}, {best.high:.3f}] by {best.grader}, "
              f"run {best.run_id}" if best else "no eval scores")
    lines.append(f"  best remaining: {f.best} ({scored})")
    now = _num(f.current, f.missing.get("current"))
    if f.current is not None and f.unscored:
        now += f" (scored variants only: without {', '.join(f.unscored)})"
    lines.append(f"  expected quality now: {now}")
    lines.append(f"  expected quality after: {_num(f.after, f.missing.get('after'))}")
    if f.change is not None:
        c = f.change
        source = f"paired on {c.n} samples of run {c.run_id}" if c.method == "paired" \
            else "independent latest scores"
        lines.append(f"  change on the moved traffic: {c.diff:+.3f} "
                     f"[{c.low:+.3f}, {c.high:+.3f}] ({source})")
    elif "change" in f.missing:
        lines.append(f"  change on the moved traffic: unknown ({f.missing['change']})")
    for change in f.changes:
        lines.append(f"  set {change.describe()}")
    if not f.changes:
        lines.append("  nothing to move")
    return lines


def _print(plan: DrillPlan) -> None:
    if not plan.functions:
        click.echo(f"no function has a variant on provider {plan.provider!r}")
        return
    for f in plan.functions:
        click.echo("\n".join(_describe(f)))


@click.command(name="drill")
@workspace_option
@click.option("--without", "provider", required=True, metavar="PROVIDER",
              help="The provider that disappears.")
@click.option("--grader", default=None,
              help="Score variants by this grader (default: each run's first grader).")
@click.option("--apply", "do_apply", is_flag=True,
              help="Write the config change to veteran.toml (comments and layout kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def drill(workspace: str | None, provider: str, grader: str | None, do_apply: bool,
          as_json: bool) -> None:
    """If PROVIDER disappeared now: per function that uses it, the best remaining variant by the
    latest eval runs, the expected quality change with its 95% interval, and the config change
    (lost variants get weight 0, the chosen variant their weight). `--apply` writes it."""
    ws, store = open_store(workspace)
    try:
        plan = plan_drill(ws.load_config(), Runs(store.engine), provider, grader=grader)
        applied = apply_drill(ws.config_path, plan) if do_apply else []
        if applied:
            announce(ws, store, "drill", err=as_json)
    finally:
        store.close()
    if as_json:
        out = {**plan.to_json(), "applied": [c.to_json() for c in applied]}
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    _print(plan)
    if do_apply:
        click.echo(f"applied {len(applied)} change(s) to {ws.config_path}" if applied
                   else "nothing to apply")
