"""Canaries: a small suite re-run against production variants on a schedule, as a time series.

A vendor can change what a model name answers without notice. A canary re-runs a suite (its
variants are the production variants it lists) with the eval call cache off, summarises each
(variant, grader) as one point (mean, 95% interval, samples, run id) in `canary_points`, and
judges the new point against that series' own history:

    history   = the latest earlier points that did not alert (at most 50: HISTORY_WINDOW)
    baseline  = mean of the history's means
    allowed   = max(min_drop, 3 x stdev of the history's means, the new point's CI half-width)
    alert     when len(history) >= min_history and new mean < baseline - allowed

`min_drop` keeps a perfectly stable series (stdev 0) from alerting on a single flipped sample;
3 standard deviations is the series' own noise between runs; the half-width is the new point's
noise within the run. Alerting points are left out of later histories, so a degradation that
persists keeps alerting until the variant recovers instead of becoming the new normal.

An alert is a WARNING on the `veteran.canary` logger, a JSON POST to `[canaries] webhook`
(failures logged, never raised; the URL is never logged, it may hold a token), and the point's
`alert` flag, which `GET /metrics` exports as `veteran_canary_alert`.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from dataclasses import dataclass
from functools import partial

from veteran import http
from veteran.evals import report
from veteran.evals.runner import run_suite
from veteran.evals.runs import Runs
from veteran.evals.suite import load_suite
from veteran.gateway import Gateway
from veteran.store.canaries import CanaryPoint, CanaryPoints
from veteran.types import now
from veteran.workspace import Workspace

log = logging.getLogger("veteran.canary")
# the alert POST, its failures logged as the canary's
post_webhook = partial(http.post_webhook, log=log, what="canary webhook",
                       user_agent="veteran-canary")


@dataclass(frozen=True, slots=True)
class CanaryRun:
    suite: str
    run_id: str
    points: list[CanaryPoint]

    @property
    def alerts(self) -> list[CanaryPoint]:
        return [p for p in self.points if p.alert]


def judge(history: list[float], mean: float, low: float, high: float, *, min_history: int,
          min_drop: float) -> tuple[float | None, float | None, bool]:
    """(baseline, allowed drop, alert) of a new mean against its series' earlier means (see
    the module's docstring for the rule)."""
    if len(history) < min_history:
        return None, None, False
    baseline = statistics.fmean(history)
    noise = 3 * statistics.stdev(history) if len(history) > 1 else 0.0
    allowed = max(min_drop, noise, (high - low) / 2)
    return baseline, allowed, mean < baseline - allowed


async def run_canary(gateway: Gateway, workspace: Workspace, suite_name: str) -> CanaryRun:
    """Run the suite once through the running `gateway` (cache off: a canary must call the
    models), store one point per (variant, grader), judge each against its history and raise
    the alerts."""
    config, store = gateway.config, gateway.store
    suite = load_suite(workspace.path, suite_name, config)
    outcome = await run_suite(gateway, workspace, suite, use_cache=False, role="canary")
    # reading and summarising (bootstrap intervals) happen off the event loop: under
    # `veteran serve` it is the gateway's
    summary = await asyncio.to_thread(
        lambda: report.summarize(Runs(store.engine).results(outcome.run_id)))
    settings = config.canaries
    table = CanaryPoints(store.engine)
    created_at = now()
    points = []
    for variant, entry in summary["variants"].items():
        for grader, estimate in entry["graders"].items():
            history = await asyncio.to_thread(table.history, suite.name, variant, grader)
            baseline, allowed, alert = judge(
                [p.mean for p in history], estimate["mean"], estimate["low"], estimate["high"],
                min_history=settings.min_history, min_drop=settings.min_drop)
            points.append(CanaryPoint(
                suite=suite.name, variant=variant, grader=grader, run_id=outcome.run_id,
                created_at=created_at, mean=estimate["mean"], low=estimate["low"],
                high=estimate["high"], n=estimate["n"], baseline=baseline,
                allowed_drop=allowed, alert=alert))
    stored = await asyncio.to_thread(table.add, points)
    run = CanaryRun(suite.name, outcome.run_id, stored)
    for point in run.alerts:
        await raise_alert(point, settings.webhook)
    return run


async def raise_alert(point: CanaryPoint, webhook: str | None) -> None:
    log.warning("canary alert: %s %s %s fell to %.4f (history %.4f, allowed drop %.4f, n=%d, "
                "run %s)", point.suite, point.variant, point.grader, point.mean,
                point.baseline or 0.0, point.allowed_drop or 0.0, point.n, point.run_id)
    if webhook is not None:
        await post_webhook(webhook, {"type": "veteran.canary.alert", **point.to_json()})


async def canary_loop(gateway: Gateway, workspace: Workspace) -> None:
    """`[canaries]` under `veteran serve`, through the live gateway: run each suite every
    `every`, the first time when its latest stored point is `every` old (a restart does not
    run them again early). Runs until cancelled; a failed run is logged and tried again after
    `every`."""
    store = gateway.store
    settings = gateway.config.canaries
    every = settings.every_seconds
    table = CanaryPoints(store.engine)
    tried: dict[str, float] = {}
    while True:
        try:
            due: dict[str, float] = {}
            for suite in settings.suites:
                last = await asyncio.to_thread(table.last_time, suite)
                due[suite] = max(last or 0.0, tried.get(suite, 0.0)) + every
            wait = min(due.values(), default=time.time() + every) - time.time()
            if wait > 0:
                await asyncio.sleep(min(wait, every))
                continue
            for suite, at in due.items():
                if at > time.time():
                    continue
                tried[suite] = time.time()
                try:
                    run = await run_canary(gateway, workspace, suite)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("canary %s failed", suite)
                    continue
                log.info("canary %s: run %s, %d points, %d alerts", suite, run.run_id,
                         len(run.points), len(run.alerts))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("canary schedule failed; trying again in %s", settings.every)
            await asyncio.sleep(every)
