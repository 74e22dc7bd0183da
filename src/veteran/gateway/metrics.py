"""`GET /metrics`: the gateway's gauges and counters in Prometheus' text format (0.0.4).

    veteran_canary_score{suite,variant,grader}   latest canary mean (see evals/canary.py)
    veteran_canary_alert{suite,variant,grader}   1 when that latest point alerted, else 0
    veteran_captured_total                       trajectories committed by this process
    veteran_capture_dropped_total                trajectories lost (store away, no spool room)
    veteran_capture_spooled                      trajectories waiting in the on-disk spool
    veteran_provider_up{provider}                0 when its breaker is open or an operator
                                                 disabled it, else 1

Canary points are read from the store, so runs of `veteran eval canary` show up here as well as
the ones `[canaries]` schedules.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response

from veteran.gateway.core import Gateway
from veteran.store.canaries import CanaryPoint, CanaryPoints

log = logging.getLogger("veteran.gateway")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DOWN_STATES = frozenset({"open", "disabled"})


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def render(gateway: Gateway, points: list[CanaryPoint]) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    writer = gateway.writer
    metric("veteran_canary_score", "gauge", "Mean score of the latest canary point.",
           [(_labels(suite=p.suite, variant=p.variant, grader=p.grader), p.mean)
            for p in points])
    metric("veteran_canary_alert", "gauge", "1 when the latest canary point alerted.",
           [(_labels(suite=p.suite, variant=p.variant, grader=p.grader), float(p.alert))
            for p in points])
    metric("veteran_captured_total", "counter", "Trajectories committed to the store.",
           [("", float(writer.written))])
    metric("veteran_capture_dropped_total", "counter", "Trajectories dropped.",
           [("", float(writer.dropped))])
    metric("veteran_capture_spooled", "gauge", "Trajectories waiting in the on-disk spool.",
           [("", float(writer.spooled))])
    metric("veteran_provider_up", "gauge",
           "0 when the provider's breaker is open or it is disabled, else 1.",
           [(_labels(provider=name), float(state not in DOWN_STATES))
            for name, state in sorted(gateway.caller.states().items())])
    return "\n".join(lines) + "\n"


async def metrics(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        points = await asyncio.to_thread(CanaryPoints(gateway.store.engine).latest)
    except Exception as exc:  # the store is away: the process's own numbers still count
        log.warning("reading canary points for /metrics failed (%s)", type(exc).__name__)
        points = []
    return Response(render(gateway, points), media_type=CONTENT_TYPE)
