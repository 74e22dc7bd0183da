"""Calling providers dependably: retries with backoff, fallbacks, circuit breakers, switches.

`Caller` runs one request's plan: the chosen route, then its function's fallbacks in order. Each
route is tried up to `1 + max_retries` times; only retryable failures are retried (no
connection, 429, 500, 502, 503, 504, 529), after a jittered, doubling, capped backoff that
honours a provider's `Retry-After` (one longer than `retry_after_max` is not waited for: the
call moves on).
A request the provider refused as wrong (400, 404, 413, 422 ...) is neither retried nor sent to
a fallback: it would fail there too. Every other failure moves on to the next route.

The circuit breaker counts failed requests, not attempts: a request whose attempts at a
provider all failed (retries included) is one failure of that provider, however many attempts it
made and however many of its routes went there. A provider that fails `breaker.failures` requests
in a row (no request answered between them) within `breaker.window` seconds is marked down for
`breaker.cooldown` seconds: traffic skips it and goes to the fallbacks. So one bad request, or
one client sending a request the provider chokes on, cannot take a provider down for everyone;
a provider that is really down fails every request, and those add up within the window. After
the cooldown the next call is let through as a probe, a single attempt: its success closes the
circuit, its failure opens it again. A provider an operator switched off (`veteran providers
disable`) is skipped the same way until switched on.

Every attempt, skipped routes included, is recorded on the trajectory (`attempts`).
Streams are retried only until their first chunk: what reached the client cannot be taken back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from veteran.errors import (
    HTTPError,
    ProviderUnavailable,
    StreamInterrupted,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from veteran.gateway.routing import Route
from veteran.providers.base import BreakerSettings, ModelRequest, Provider
from veteran.types import TrajectoryRecord

UPSTREAM_FAILURES = (UpstreamError, UpstreamTimeout, UpstreamRejected)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 529})  # 529: Anthropic overloaded
T = TypeVar("T")
Stream = tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]


def retryable(exc: HTTPError) -> bool:
    """Worth trying the same provider again: no connection, 429, 500, 502, 503, 504, 529."""
    if isinstance(exc, (ProviderUnavailable, StreamInterrupted, UpstreamTimeout)):
        return False
    status = getattr(exc, "upstream_status", None)
    if status is None:
        return isinstance(exc, UpstreamError)  # no HTTP answer: connection refused, reset ...
    return status in RETRYABLE_STATUS


def fails_over(exc: HTTPError) -> bool:
    """Worth trying another route: anything but the provider refusing the request as wrong."""
    return not (isinstance(exc, UpstreamRejected) and exc.status != 429)


class Breaker:
    """One provider's circuit: closed, open until `open_until`, or half-open with one probe.

    `failed` is told once per failed request (see `Caller._run`), `succeeded` once per answer."""

    __slots__ = ("settings", "recent", "open_until", "probing", "opened", "reason")

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.recent: deque[float] = deque()  # times of the failed requests in a row, oldest first
        self.open_until = 0.0  # monotonic time; 0: closed
        self.probing = False
        self.opened = 0  # how many times the circuit opened
        self.reason = ""  # why it opened last

    def admit(self, now: float) -> bool | None:
        """True: call (a probe when half-open); None: a plain call; False: skip, it is down."""
        if not self.open_until:
            return None
        if now < self.open_until or self.probing:
            return False
        self.probing = True
        return True

    def succeeded(self) -> None:
        self.recent.clear()
        self.open_until = 0.0
        self.probing = False

    def failed(self, now: float) -> None:
        """One failed request (or a failed probe)."""
        if self.probing:
            self._open(now, "its probe call failed")
        elif not self.open_until:  # while open, a request that started before adds nothing
            recent, settings = self.recent, self.settings
            recent.append(now)
            while recent[0] < now - settings.window:
                recent.popleft()
            if len(recent) >= settings.failures:
                self._open(now, f"{len(recent)} failed requests in a row within "
                                f"{settings.window:g} s")
        self.probing = False

    def released(self) -> None:
        """A probe ended without a verdict (the client left): let the next call probe."""
        self.probing = False

    def state(self, now: float) -> str:
        if not self.open_until:
            return "closed"
        return "open" if now < self.open_until or self.probing else "half-open"

    def _open(self, now: float, reason: str) -> None:
        self.opened += 1
        self.open_until = now + self.settings.cooldown
        self.reason = reason
        self.recent.clear()


class Caller:
    def __init__(self, providers: dict[str, Provider], disabled: dict[str, str]) -> None:
        self.breakers = {name: Breaker(p.settings.breaker) for name, p in providers.items()}
        # provider name -> reason; kept current by the gateway's switch poller (switches.py)
        self.disabled = disabled

    async def complete(self, route: Route, body: dict[str, Any], record: TrajectoryRecord
                       ) -> tuple[dict[str, Any], Route]:
        """The answer of the first route that gives one, and that route."""
        return await self._run(route, body, record, _complete)

    async def stream(self, route: Route, body: dict[str, Any], record: TrajectoryRecord
                     ) -> tuple[Stream, Route]:
        """The first chunk and the rest of the stream of the first route that starts one."""
        return await self._run(route, body, record, _open_stream)

    def states(self) -> dict[str, str]:
        now = time.monotonic()
        return {
            name: "disabled" if name in self.disabled else breaker.state(now)
            for name, breaker in self.breakers.items()
        }

    async def _run(
        self,
        route: Route,
        body: dict[str, Any],
        record: TrajectoryRecord,
        attempt: Callable[[Provider, ModelRequest], Awaitable[T]],
    ) -> tuple[T, Route]:
        attempts: list[dict[str, Any]] = []
        record.attempts = attempts
        failure: HTTPError | None = None
        counted: set[str] = set()  # providers this request already counted as failed
        for candidate in route.plan():
            provider = candidate.provider
            breaker = self.breakers.get(provider.name)
            if breaker is None:  # a call routed before a reload removed its provider
                breaker = Breaker(provider.settings.breaker)
            request = ModelRequest(candidate.model, candidate.upstream_body(body),
                                   candidate.timeouts)
            _describe(record, candidate, request)
            failing = False  # this route's attempts failed, none answered
            try:
                for n in range(candidate.max_retries + 1):
                    skipped = self._unavailable(provider, breaker)
                    if skipped is not None:
                        attempts.append(_attempt(candidate, "skipped", skipped.message))
                        failure = failure or skipped
                        break
                    probe = breaker.admit(time.monotonic())
                    started = time.perf_counter()
                    try:
                        result = await attempt(provider, request)
                    except UPSTREAM_FAILURES as exc:
                        attempts.append(_attempt(candidate, "error", exc.message, exc, started))
                        if not fails_over(exc):
                            failing = False
                            breaker.succeeded()  # it answered: the provider is up
                            raise
                        failure = exc
                        if probe:  # a probe is one attempt: its failure opens the circuit
                            breaker.failed(time.monotonic())
                            counted.add(provider.name)
                            break
                        failing = True
                        wait = self._wait(candidate, n, exc)
                        if wait is None:
                            break
                        attempts[-1]["retry_in_ms"] = round(wait * 1000, 3)
                        await asyncio.sleep(wait)
                        continue
                    except BaseException:
                        if probe:
                            breaker.released()
                        raise
                    failing = False
                    breaker.succeeded()
                    attempts.append(_attempt(candidate, "ok", None, None, started))
                    return result, candidate
            finally:
                # once per request and provider, when the request gives up on it (moves on,
                # fails, or its client leaves while it waits to retry)
                if failing and provider.name not in counted:
                    counted.add(provider.name)
                    breaker.failed(time.monotonic())
        assert failure is not None
        raise failure

    def _unavailable(self, provider: Provider, breaker: Breaker) -> ProviderUnavailable | None:
        reason = self.disabled.get(provider.name)
        if reason is not None:
            why = f": {reason}" if reason else ""
            return ProviderUnavailable(
                f"provider {provider.name!r} is switched off by an operator{why}"
            )
        now = time.monotonic()
        if breaker.open_until and (now < breaker.open_until or breaker.probing):
            wait = max(breaker.open_until - now, 0.0)
            return ProviderUnavailable(
                f"provider {provider.name!r} is marked down ({breaker.reason}); "
                f"next probe in {wait:.0f} s",
                retry_after=wait,
            )
        return None

    def _wait(self, route: Route, n: int, exc: HTTPError) -> float | None:
        """Seconds to wait before retry `n + 1`, or None: do not retry this route."""
        if n >= route.max_retries or not retryable(exc):
            return None
        settings = route.provider.settings.retry
        backoff = min(settings.backoff_max, settings.backoff_initial * 2.0**n)
        backoff *= random.uniform(0.5, 1.0)  # jitter: retries of many clients do not align
        asked: float | None = getattr(exc, "retry_after", None)
        if asked is None:
            return backoff
        if asked > settings.retry_after_max:
            return None
        return max(asked, backoff)


def _describe(record: TrajectoryRecord, route: Route, request: ModelRequest) -> None:
    """The trajectory shows the route tried last: on success, the one that answered."""
    record.provider = route.provider.name
    record.model = route.model
    record.variant = route.variant
    record.request = request.body


def _attempt(
    route: Route,
    status: str,
    error: str | None,
    exc: HTTPError | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "provider": route.provider.name, "model": route.model, "variant": route.variant,
        "status": status,
    }
    if started is not None:
        out["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    if error is not None:
        out["error"] = error
    upstream_status = getattr(exc, "upstream_status", None)
    if upstream_status is not None:
        out["upstream_status"] = upstream_status
    return out


async def _complete(provider: Provider, request: ModelRequest) -> dict[str, Any]:
    return await provider.complete(request)


async def _open_stream(provider: Provider, request: ModelRequest) -> Stream:
    chunks = provider.stream(request)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise StreamInterrupted(f"provider {provider.name!r} sent an empty stream") from None
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise
    return first, chunks
