"""`veteran eval`: run suites (`evals/NAME.toml`), report, compare runs, gate a candidate."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from veteran.cli.options import workspace_option
from veteran.cli.store import open_store
from veteran.evals import render, report
from veteran.evals.runner import RunOutcome, run_suite
from veteran.evals.runs import Runs
from veteran.evals.suite import list_suites, load_suite
from veteran.gateway import running
from veteran.store import Store
from veteran.workspace import Workspace


@click.group(name="eval")
def evals() -> None:
    """Private evaluations: suites in evals/NAME.toml, runs stored in the store."""


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _run(ws: Workspace, store: Store, suite_name: str, *, resume: str | None,
         variants: list[str] | None, epochs: int | None, concurrency: int | None,
         use_cache: bool, quiet: bool, fresh: tuple[str, ...] = ()) -> RunOutcome:
    config = ws.load_config()
    suite = load_suite(ws.path, suite_name, config)
    if resume == "latest":
        latest = Runs(store.engine).latest(suite.name, unfinished=True)
        resume = latest.id if latest is not None else None
    console = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, disable=quiet) as bar:
        task = bar.add_task(f"eval {suite.name}", total=None)

        def progress(advance: int, total: int) -> None:
            bar.update(task, advance=advance, total=total)

        async def run() -> RunOutcome:
            async with running(config, store, ws) as gateway:
                return await run_suite(gateway, ws, suite, resume=resume, variants=variants,
                                       epochs=epochs, concurrency=concurrency,
                                       use_cache=use_cache, fresh=fresh, progress=progress)

        return asyncio.run(run())


@evals.command(name="run")
@workspace_option
@click.argument("suite")
@click.option("--variant", "variants", multiple=True,
              help="Only these variants of the suite (repeatable).")
@click.option("--epochs", type=click.IntRange(1, 100), default=None, help="Override the suite's.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=None,
              help="Calls in flight per provider (default: the suite's).")
@click.option("--resume", default=None, metavar="RUN_ID",
              help="Finish a stored run (`latest`: the suite's latest unfinished run), skipping "
                   "every (sample, variant, epoch) already stored.")
@click.option("--no-cache", is_flag=True, help="Call the models even for cached requests.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run_command(workspace: str | None, suite: str, variants: tuple[str, ...],
                epochs: int | None, concurrency: int | None, resume: str | None, no_cache: bool,
                as_json: bool, quiet: bool) -> None:
    """Run SUITE (evals/SUITE.toml): every variant on every sample, graded and stored."""
    ws, store = open_store(workspace)
    try:
        outcome = _run(ws, store, suite, resume=resume, variants=list(variants) or None,
                       epochs=epochs, concurrency=concurrency, use_cache=not no_cache,
                       quiet=quiet or as_json)
        runs = Runs(store.engine)
        results = runs.results(outcome.run_id)
        order = runs.get(outcome.run_id).config.get("variants")
    finally:
        store.close()
    summary = report.summarize(results, variants=order)
    if as_json:
        _echo_json({"run": outcome.run_id, "ran": outcome.ran, "skipped": outcome.skipped,
                    "cached": outcome.cached, "errors": outcome.errors,
                    "left_out": outcome.left_out.to_json(), **summary})
        return
    Console().print(render.table(summary, title=f"{suite}: run {outcome.run_id}"))
    click.echo(f"run {outcome.run_id}: {outcome.ran} ran, {outcome.skipped} already done, "
               f"{outcome.cached} from cache, {outcome.errors} failed calls")
    for line in outcome.left_out.lines():
        click.echo(line)


@evals.command(name="report")
@workspace_option
@click.argument("run_id")
@click.option("--baseline", default=None,
              help="Variant the others are compared with (default: the suite's first).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report to this file: run metadata, scores, "
                   "charts (inline SVG) and the failures with input, expected and output.")
def report_command(workspace: str | None, run_id: str, baseline: str | None, as_json: bool,
                   html_path: str | None) -> None:
    """Summarise a stored run (RUN_ID, or a suite name for its latest run)."""
    ws, store = open_store(workspace)
    try:
        runs = Runs(store.engine)
        latest = runs.latest(run_id)  # a suite's name: its latest run
        info = runs.get(latest.id if latest is not None else run_id)
        results = runs.results(info.id)
    finally:
        store.close()
    try:
        summary = report.summarize(results, baseline=baseline,
                                   variants=info.config.get("variants"))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if html_path is not None:
        failed = report.failures(results, variants=list(summary["variants"]))
        Path(html_path).write_text(render.html(summary, info.to_json(), failed),
                                   encoding="utf-8")
    if as_json:
        _echo_json({"run": info.to_json(), **summary})
        return
    console = Console()
    console.print(render.table(summary, title=f"{info.suite}: run {info.id} ({info.status})"))
    if summary["comparisons"]:
        console.print(render.comparisons_table(summary))


@evals.command(name="pairwise")
@workspace_option
@click.argument("run_id")
@click.option("--grader", required=True, help="A grader of the suite with type = \"pairwise\".")
@click.option("--baseline", required=True, help="Variant as in the suite, e.g. triage:big.")
@click.option("--candidate", required=True, help="Variant as in the suite, e.g. triage:small.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pairwise_command(workspace: str | None, run_id: str, grader: str, baseline: str,
                     candidate: str, as_json: bool) -> None:
    """Judge CANDIDATE against BASELINE on a stored run (RUN_ID, or a suite name for its latest
    run), sample by sample, with the suite's pairwise grader: the candidate's win rate with a
    95% interval (ties count half)."""
    from veteran.evals.pairwise import PairwiseResult, pairwise

    ws, store = open_store(workspace)
    try:
        runs = Runs(store.engine)
        latest = runs.latest(run_id)
        info = runs.get(latest.id if latest is not None else run_id)
        config = ws.load_config()
        suite = load_suite(ws.path, info.suite, config)

        async def judge() -> PairwiseResult:
            async with running(config, store, ws) as gateway:
                return await pairwise(gateway, ws, suite, info.id, grader=grader,
                                      baseline=baseline, candidate=candidate)

        result = asyncio.run(judge())
    finally:
        store.close()
    if as_json:
        _echo_json(result.to_json())
        return
    e = result.win_rate
    click.echo(f"{candidate} against {baseline} ({grader}, run {info.id}): win rate "
               f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}] over {e.n} samples; "
               f"{result.wins} wins, {result.losses} losses, {result.ties} ties, "
               f"{result.skipped} skipped")


@evals.command(name="compare")
@workspace_option
@click.argument("run_a")
@click.argument("run_b")
@click.option("--grader", default=None, help="Only this grader's scores.")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
def compare_command(workspace: str | None, run_a: str, run_b: str, grader: str | None,
                    as_json: bool) -> None:
    """What changed per sample from RUN_A to RUN_B: score deltas and outputs."""
    ws, store = open_store(workspace)
    try:
        runs = Runs(store.engine)
        a, b = runs.results(runs.get(run_a).id), runs.results(runs.get(run_b).id)
    finally:
        store.close()
    changes = report.compare_runs(a, b, grader=grader)
    if as_json:
        _echo_json(changes)
        return
    for c in changes["changed"]:
        deltas = ", ".join(f"{g} {d['a']} -> {d['b']}" for g, d in c["scores"].items())
        click.echo(f"{c['sample_id']} [{c['variant']}] {deltas or 'output changed'}")
        click.echo(f"    A: {str(c['output_a'])[:100]!r}\n    B: {str(c['output_b'])[:100]!r}")
    click.echo(f"{changes['compared']} compared, {len(changes['changed'])} changed "
               f"({changes['better']} better, {changes['worse']} worse)")


@evals.command(name="gate")
@workspace_option
@click.argument("suite")
@click.option("--baseline", required=True, help="The variant in production.")
@click.option("--candidate", required=True, help="The variant that would replace it.")
@click.option("--max-drop", type=click.FloatRange(0), default=0.02, show_default=True,
              help="Largest allowed drop of the grader's mean.")
@click.option("--grader", default=None, help="Grader to gate on (default: the suite's first).")
@click.option("--run", "run_id", default=None,
              help="Use this stored run instead of running the suite (its answers are judged "
                   "as stored, cached ones included).")
@click.option("--test", "test", type=click.Choice(report.GATE_TESTS),
              default="non-inferiority", show_default=True,
              help="non-inferiority: pass only what is shown within --max-drop. no-shown-drop "
                   "(the old gate, for screening): fail only what is shown worse beyond it, "
                   "pass the rest, unmeasured included.")
@click.option("--accept-inconclusive", is_flag=True,
              help="Exit 0 on an inconclusive verdict (with a warning) instead of 1.")
@click.option("--no-cache", is_flag=True,
              help="Call the baseline fresh too (the candidate always is).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def gate_command(workspace: str | None, suite: str, baseline: str, candidate: str,
                 max_drop: float, grader: str | None, run_id: str | None, test: report.GateTest,
                 accept_inconclusive: bool, no_cache: bool, as_json: bool, quiet: bool) -> None:
    """Judge CANDIDATE against BASELINE: is it no worse beyond --max-drop?

    A non-inferiority test on the paired difference candidate - baseline (over samples) and
    its 95% bootstrap interval: PASS when the whole interval is above -max-drop, FAIL when it
    is all below, INCONCLUSIVE when it holds -max-drop (with roughly how many samples would
    decide it). The candidate is called fresh; the baseline may come from the eval call cache,
    and the verdict says how much of it did and how old it was.
    Exit status: 0 pass, 1 fail or inconclusive, 2 usage or configuration error."""
    if run_id is not None and no_cache:
        raise click.UsageError("--no-cache calls models, --run judges a stored run: pick one")
    ws, store = open_store(workspace)
    try:
        suite_config = load_suite(ws.path, suite, ws.load_config())
        chosen = grader or next(iter(suite_config.config.graders))
        if chosen not in suite_config.config.graders:
            raise click.UsageError(f"suite {suite!r} has no grader {chosen!r}")
        if baseline == candidate:
            raise click.UsageError("--baseline and --candidate are the same variant")
        if run_id is None:
            run_id = _run(ws, store, suite, resume=None, variants=[baseline, candidate],
                          epochs=None, concurrency=None, use_cache=not no_cache,
                          quiet=quiet or as_json, fresh=(candidate,)).run_id
        results = Runs(store.engine).results(run_id)
    finally:
        store.close()
    try:
        verdict = report.gate(results, chosen, baseline, candidate, max_drop, test=test)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    accepted = verdict.verdict == "inconclusive" and accept_inconclusive
    if as_json:
        _echo_json({"run": run_id, "suite": suite, "grader": chosen, "baseline": baseline,
                    "candidate": candidate, **verdict.to_json(),
                    "accepted_inconclusive": accepted})
    else:
        click.echo(f"run {run_id}: {verdict.message}")
    if accepted:
        click.echo("warning: the gate is inconclusive; exit 0 by --accept-inconclusive", err=True)
    elif not verdict.passed:
        sys.exit(1)


@evals.command(name="list")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_command(workspace: str | None, as_json: bool) -> None:
    """The workspace's suites and its latest runs."""
    ws, store = open_store(workspace)
    try:
        runs = Runs(store.engine).list(limit=20)
    finally:
        store.close()
    suites = list_suites(ws.path)
    if as_json:
        _echo_json({"suites": suites, "runs": [r.to_json() for r in runs]})
        return
    click.echo("suites: " + (", ".join(suites) or "none (add evals/NAME.toml)"))
    for r in runs:
        click.echo(f"{r.id}  {r.suite:<20} {r.status:<9} {r.results} results")


@evals.command(name="canary")
@workspace_option
@click.argument("suite")
@click.option("--every", default=None, metavar="DURATION",
              help="Run again every DURATION (30s, 15m, 1h, 1d) until interrupted.")
@click.option("--once", is_flag=True, help="Run once (the default without --every); exit 1 "
                                           "when a point alerted.")
def canary_command(workspace: str | None, suite: str, every: str | None, once: bool) -> None:
    """Re-run SUITE against its (production) variants and judge each point against its history.

    Each (variant, grader) gets one point (mean, 95% interval, n) in the canary time series. A
    point alerts when, with at least `[canaries] min_history` earlier points, its mean is below
    the history's mean by more than max(min_drop, 3 x the history's stdev, the point's interval
    half-width); alerts are logged, POSTed to `[canaries] webhook` and shown in `/metrics`."""
    from veteran.config import parse_duration
    from veteran.evals.canary import run_canary

    if every is not None and once:
        raise click.UsageError("--every and --once exclude each other")
    try:
        seconds = parse_duration(every) if every is not None else None
    except ValueError as exc:
        raise click.UsageError(f"--every: {exc}") from None
    ws, store = open_store(workspace)
    try:
        config = ws.load_config()
        load_suite(ws.path, suite, config)  # a missing or invalid suite fails before any run
    except BaseException:
        store.close()
        raise

    async def loop() -> int:
        async with running(config, store, ws) as gateway:
            while True:
                started = asyncio.get_running_loop().time()
                run = await run_canary(gateway, ws, suite)
                click.echo(f"run {run.run_id}:")
                for point in run.points:
                    click.echo(f"  {point.describe()}")
                if seconds is None:
                    return 1 if run.alerts else 0
                elapsed = asyncio.get_running_loop().time() - started
                await asyncio.sleep(max(0.0, seconds - elapsed))

    try:
        status = asyncio.run(loop())
    except KeyboardInterrupt:
        status = 0
    finally:
        store.close()
    if status:
        sys.exit(status)


@evals.command(name="canary-history")
@workspace_option
@click.argument("suite")
@click.option("--variant", default=None, help="Only this variant's series.")
@click.option("--grader", default=None, help="Only this grader's series.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="The latest this many points.")
@click.option("--json", "as_json", is_flag=True, help="Print the points as JSON.")
def canary_history_command(workspace: str | None, suite: str, variant: str | None,
                           grader: str | None, limit: int, as_json: bool) -> None:
    """SUITE's canary time series, oldest first."""
    from veteran.store.canaries import CanaryPoints

    ws, store = open_store(workspace)
    try:
        points = CanaryPoints(store.engine).series(suite, variant=variant, grader=grader,
                                                   limit=limit)
    finally:
        store.close()
    if as_json:
        _echo_json({"suite": suite, "points": [p.to_json() for p in points]})
        return
    if not points:
        click.echo(f"no canary points for {suite!r} (run `veteran eval canary {suite}`)")
    for p in points:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.created_at))
        click.echo(f"{when}  {p.describe()}  run {p.run_id}")
