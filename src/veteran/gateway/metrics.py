"""`GET /metrics`: the gateway's gauges and counters in Prometheus' text format (0.0.4).

    veteran_requests_total{function,variant,provider,status}   calls, by outcome
    veteran_errors_total{function,variant,provider,error}      failed or cut-short calls, by kind
    veteran_request_duration_seconds{function,variant,provider}        histogram: answers
    veteran_time_to_first_token_seconds{function,variant,provider}     histogram: streamed answers
    veteran_prompt_tokens_total{function,variant,provider}
    veteran_completion_tokens_total{function,variant,provider}
    veteran_cost_total{function,variant,provider}              in the configured prices' currency
    veteran_policy_decisions_total{rule,action}  the company's rules applied (gateway/policy.py)
    veteran_handoffs_total{provider,asked,answered}  answers from another model than the one
                                                 asked (policies/handoff.py)
    veteran_fingerprint_changes_total{provider,model}  a route's new system_fingerprint
    veteran_canary_score{suite,variant,grader}   latest canary mean (see evals/canary.py)
    veteran_canary_alert{suite,variant,grader}   1 when that latest point alerted, else 0
    veteran_captured_total                       trajectories committed by this process
    veteran_capture_dropped_total                trajectories lost (store away, no spool room)
    veteran_capture_spooled                      trajectories waiting in the on-disk spool
    veteran_provider_up{provider}                0 when its breaker is open or an operator
                                                 disabled it, else 1

The call series are counted by `CallMetrics.observe`, once per call, where the one call path
hands the call's trajectory to the writer (call.py): a few list increments under the GIL, with
no lock and no formatting (1.1-1.3 µs per call measured on the 2-core bench machine, against
about 500 µs the gateway adds per request; no prometheus_client, whose labelled samples each
take a lock); the text is made only when `/metrics` is scraped. Their label values
come from the configuration alone: function, variant and provider names (a PROVIDER/MODEL
request is function and variant `(direct)`; the model is no label, since a client chooses it),
a status and an error kind from fixed sets. A name the configuration does not hold becomes
`(other)`, and past `MAX_SERIES` label sets every new one is counted as `(other)` too, so no
request can grow the scrape.

The policy, hand-off and fingerprint counters are counted where the decision is made (the
policy hook; `HandoffWatch` through its `on_count`, which is `CallMetrics.handoff`). Rule names
come from the configuration; actions from a fixed set. The model names of hand-offs come from
clients (a PROVIDER/MODEL request) and from the upstream's answer, so past `MAX_MODEL_SERIES`
label sets a new one is counted under `(other)` for both models (the provider is kept), and a
name is cut to `MAX_LABEL` characters.

Canary points are read from the store, so runs of `veteran eval canary` show up here as well as
the ones `[canaries]` schedules.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from veteran.errors import (
    HTTPError,
    ProviderUnavailable,
    RateLimited,
    StreamInterrupted,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from veteran.store.canaries import CanaryPoint, CanaryPoints

if TYPE_CHECKING:
    from veteran.config import Config
    from veteran.gateway.call import Call
    from veteran.gateway.core import Gateway

log = logging.getLogger("veteran.gateway")
K = TypeVar("K", bound=tuple[str, ...])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DOWN_STATES = frozenset({"open", "disabled"})

DIRECT = "(direct)"  # function and variant of a PROVIDER/MODEL request
OTHER = "(other)"  # a name the configuration does not hold, or a label set past MAX_SERIES
MAX_SERIES = 1000  # (function, variant, provider) label sets
MAX_MODEL_SERIES = 100  # label sets of each hand-off counter (model names are not configured)
MAX_LABEL = 200  # characters of a model name an upstream chose
# `cached`: answered from a cache (the semantic cache, or a caller's own), no provider call
STATUSES = ("ok", "cached", "error", "incomplete")
ERRORS = (
    "upstream",  # the provider failed: no connection, 5xx, an unreadable answer
    "timeout",  # the provider did not answer in time
    "rate_limited",  # 429, from the provider or a limit of the gateway's own
    "rejected",  # the provider refused the request as wrong (400, 404, 413, 422 ...)
    "unavailable",  # the provider's circuit is open or an operator switched it off
    "interrupted",  # the provider's stream broke
    "refused",  # a hook (a policy) refused the call
    "client_gone",  # the caller left before the answer was complete
    "internal",  # anything else that broke the call
)
# Fixed bounds, in seconds: from a cache hit's milliseconds to a long generation's minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STATUS = {name: i for i, name in enumerate(STATUSES)}
_ERROR = {name: i for i, name in enumerate(ERRORS)}


def error_kind(exc: BaseException) -> str:
    """The `error` label of a failure: one of `ERRORS`."""
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    if isinstance(exc, StreamInterrupted):
        return "interrupted"
    if isinstance(exc, UpstreamError):
        return "upstream"
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, RateLimited) or (isinstance(exc, UpstreamRejected) and exc.status == 429):
        return "rate_limited"
    if isinstance(exc, UpstreamRejected):
        return "rejected"
    if isinstance(exc, HTTPError):
        return "refused"
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return "client_gone"
    return "internal"


class _Series:
    """The counters of one (function, variant, provider)."""

    __slots__ = ("requests", "errors", "latency", "latency_sum", "ttft", "ttft_sum",
                 "prompt_tokens", "completion_tokens", "cost")

    def __init__(self) -> None:
        self.requests = [0] * len(STATUSES)
        self.errors = [0] * len(ERRORS)
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket, not cumulative; last: +Inf
        self.latency_sum = 0.0
        self.ttft = [0] * (len(TTFT_BUCKETS) + 1)
        self.ttft_sum = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0


class CallMetrics:
    """The call series of one gateway (see the module's docstring)."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self._series: dict[tuple[str, str, str], _Series] = {}  # by label set, as exported
        self._max_series = max_series
        # a call's (function, variant, provider) -> its series: one lookup per call
        self._known: dict[tuple[str | None, str | None, str], _Series] = {}
        self._policy: dict[tuple[str, str], int] = {}  # (rule, action)
        self._handoffs: dict[tuple[str, str, str], int] = {}  # (provider, asked, answered)
        self._fingerprints: dict[tuple[str, str], int] = {}  # (provider, model)

    def observe(self, call: Call, config: Config, error: BaseException | None = None) -> None:
        """Count one finished call: its trajectory says how it went, `error` why it failed."""
        record, route = call.record, call.route
        key = (record.function, record.variant or route.variant,
               record.provider or route.provider.name)
        series = self._known.get(key)
        if series is None:
            series = self._first(key, config)
        series.requests[_STATUS["cached" if record.cached else record.status]] += 1
        if error is not None:
            series.errors[_ERROR[error_kind(error)]] += 1
        if record.cached:
            return  # no provider call: no latency of a model, no tokens, no cost
        if record.status == "ok" and record.latency_ms is not None:
            seconds = record.latency_ms / 1000
            series.latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            series.latency_sum += seconds
            if record.stream and record.ttft_ms is not None:
                seconds = record.ttft_ms / 1000
                series.ttft[bisect_left(TTFT_BUCKETS, seconds)] += 1
                series.ttft_sum += seconds
        usage = record.usage
        if usage:
            series.prompt_tokens += usage.get("prompt_tokens") or 0
            series.completion_tokens += usage.get("completion_tokens") or 0
        if record.cost:
            series.cost += record.cost

    def policy(self, rule: str, action: str) -> None:
        """Count one decision of the company's rules."""
        _bump(self._policy, (rule, action), self._max_series, (OTHER, OTHER))

    def handoff(self, upstream: dict[str, Any], provider: str, asked: str) -> None:
        """Count what `HandoffWatch.observe`'s `upstream` record says: a substitution, a new
        fingerprint of the route (`provider`, `asked`), or both."""
        asked = asked[:MAX_LABEL]
        if upstream.get("substituted"):
            answered = str(upstream.get("model"))[:MAX_LABEL]
            _bump(self._handoffs, (provider, asked, answered), MAX_MODEL_SERIES,
                  (provider, OTHER, OTHER))
        if upstream.get("fingerprint_changed"):
            _bump(self._fingerprints, (provider, asked), MAX_MODEL_SERIES, (provider, OTHER))

    def _first(self, key: tuple[str | None, str | None, str], config: Config) -> _Series:
        """The series of names seen for the first time: checked against the configuration,
        and `(other)` once `max_series` label sets exist."""
        function, variant, provider = key
        spec = config.functions.get(function) if function is not None else None
        labels = (
            DIRECT if function is None else function if spec is not None else OTHER,
            (DIRECT if function is None and variant is None
             else variant if spec is not None and variant in spec.variants else OTHER),
            provider if provider in config.providers else OTHER,
        )
        series = self._series.get(labels)
        if series is None:
            if len(self._series) >= self._max_series:
                labels = (OTHER, OTHER, OTHER)
            series = self._series.setdefault(labels, _Series())
        if len(self._known) < 4 * self._max_series:
            self._known[key] = series
        return series

    def render(self, lines: list[str]) -> None:
        """Append the call series in the text format."""
        ordered = sorted(self._series.items())
        labels = [_labels(function=f, variant=v, provider=p)[:-1] for (f, v, p), _ in ordered]
        series = [s for _, s in ordered]

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        family("veteran_requests_total", "counter",
               "Calls through the gateway, by status (ok, cached, error, incomplete).")
        for head, s in zip(labels, series, strict=True):
            lines.extend(f'veteran_requests_total{head},status="{status}"}} {count}'
                         for status, count in zip(STATUSES, s.requests, strict=True))
        family("veteran_errors_total", "counter", "Failed or cut-short calls, by kind.")
        for head, s in zip(labels, series, strict=True):
            lines.extend(f'veteran_errors_total{head},error="{kind}"}} {count}'
                         for kind, count in zip(ERRORS, s.errors, strict=True))
        _histogram(lines, "veteran_request_duration_seconds",
                   "Seconds from request to whole answer, of calls a provider answered.",
                   LATENCY_BUCKETS, [(h, s.latency, s.latency_sum)
                                     for h, s in zip(labels, series, strict=True)])
        _histogram(lines, "veteran_time_to_first_token_seconds",
                   "Seconds from request to the first answer token, of streamed calls a "
                   "provider answered.",
                   TTFT_BUCKETS, [(h, s.ttft, s.ttft_sum)
                                  for h, s in zip(labels, series, strict=True)])
        for name, help_text, field in (
            ("veteran_prompt_tokens_total", "Prompt tokens the providers counted.",
             "prompt_tokens"),
            ("veteran_completion_tokens_total", "Completion tokens the providers counted.",
             "completion_tokens"),
            ("veteran_cost_total", "Cost of the calls, in the configured prices' currency.",
             "cost"),
        ):
            family(name, "counter", help_text)
            lines.extend(f"{name}{h}}} {getattr(s, field):g}"
                         for h, s in zip(labels, series, strict=True))
        family("veteran_policy_decisions_total", "counter",
               "Decisions of the company's rules, by rule and action.")
        lines.extend(f"veteran_policy_decisions_total{_labels(rule=r, action=a)} {n}"
                     for (r, a), n in sorted(self._policy.items()))
        family("veteran_handoffs_total", "counter",
               "Answers the upstream says another model gave than the one asked.")
        lines.extend(
            f"veteran_handoffs_total{_labels(provider=p, asked=a, answered=b)} {n}"
            for (p, a, b), n in sorted(self._handoffs.items()))
        family("veteran_fingerprint_changes_total", "counter",
               "Answers with another system_fingerprint than the route's last one.")
        lines.extend(f"veteran_fingerprint_changes_total{_labels(provider=p, model=m)} {n}"
                     for (p, m), n in sorted(self._fingerprints.items()))


def _bump(counts: dict[K, int], key: K, limit: int, other: K) -> None:
    """Count `key`, or `other` when `key` is new and `limit` label sets exist."""
    if key not in counts and len(counts) >= limit:
        key = other
    counts[key] = counts.get(key, 0) + 1


def _histogram(lines: list[str], name: str, help_text: str, bounds: tuple[float, ...],
               samples: list[tuple[str, list[int], float]]) -> None:
    """`samples`: each series' labels without the closing brace, bucket counts, sum."""
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} histogram")
    for head, counts, total in samples:
        running = 0
        for bound, count in zip(bounds, counts, strict=False):
            running += count
            lines.append(f'{name}_bucket{head},le="{bound:g}"}} {running}')
        running += counts[-1]
        lines.append(f'{name}_bucket{head},le="+Inf"}} {running}')
        lines.append(f"{name}_sum{head}}} {total:g}")
        lines.append(f"{name}_count{head}}} {running}")


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

    gateway.metrics.render(lines)
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
