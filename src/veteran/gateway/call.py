"""The one call path: every model call in veteran goes through `Gateway.call` or
`Gateway.call_stream`, whatever asked for it (the HTTP surfaces, eval samples and judges,
canaries, pairwise judges, environment rewards).

One call is: the route (resolved once, by `Gateway.prepare`), the hooks (`CallHook`: the
company's rules, gateway/policy.py), the function's recall (memory put into the prompt; an
answer from the semantic cache), or an answer from a caller's own cache (`AnswerCache`: the
eval call cache), else the provider call with retries and fallbacks (`resilience.Caller`),
then cost, and the capture of exactly one trajectory, whatever happened: answered, cached,
failed, cut short or abandoned by the client.

What is stored and what the caller gets may differ: the hooks `seal` the trajectory just before
it is captured (storage redaction), and a hook may set `Call.outbound`, applied to the answer
on its way to the caller only (placeholders turned back into the caller's values, a hand-off's
note). Caches (semantic, eval) keep the sealed answer, as the store does.

Failures are raised after their trajectory is handed to the writer: `UPSTREAM_FAILURES` for a
provider's, `asyncio.CancelledError` when the caller went away.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from veteran.errors import HTTPError
from veteran.gateway.assemble import StreamAssembler
from veteran.gateway.recall import Recalled
from veteran.gateway.resilience import UPSTREAM_FAILURES
from veteran.gateway.routing import Route
from veteran.protocols.shapes import completion_to_chunks
from veteran.providers.base import ModelInfo
from veteran.types import TrajectoryRecord

if TYPE_CHECKING:
    from veteran.gateway.core import Gateway

CLIENT_GONE = "client disconnected before the answer was complete"


@dataclass(slots=True)
class Call:
    """One model call on its way: made by `Gateway.prepare`, run by `Gateway.call[_stream]`."""

    route: Route
    body: dict[str, Any]  # the request as the caller sent it (memory context is added later)
    record: TrajectoryRecord  # the trajectory this call leaves, filled in as it goes
    started: float  # time.perf_counter() when the caller's request started
    recall: bool = True  # memory and semantic cache, where the function declares them
    rules: bool = True  # the company's rules decide (False: the rules' own classifier calls)
    outbound: Outbound | None = None  # what the caller's answer goes through (set by hooks)
    policy: Any = None  # the policy hook's state for this call (gateway/policy.py)


@dataclass(slots=True)
class Answer:
    """A whole answer, and what it took."""

    response: dict[str, Any]
    route: Route  # the route that answered (a fallback's, when one took over)
    cost: float | None  # what the answer cost when it was made (a cache hit's record costs 0)
    latency_ms: float  # likewise: the original call's, for an answer from a cache
    cached: bool = False
    cache: str | None = None  # the semantic cache: "hit", "miss", or None when not asked
    cached_from: str | None = None  # the trajectory a semantic-cache answer was first given in


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """An earlier answer a caller's own cache gives again."""

    response: dict[str, Any]
    cost: float | None
    latency_ms: float
    context: dict[str, Any] = field(default_factory=dict)  # kept on the trajectory


class AnswerCache(Protocol):
    """A caller's own cache of answers (the eval call cache: a re-run calls no model)."""

    def get(self, call: Call) -> CachedAnswer | None: ...

    def put(self, call: Call, answer: Answer) -> None: ...


class OutboundStream(Protocol):
    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]: ...

    def flush(self) -> dict[str, Any] | None:
        """A last chunk with what is still held when the stream ends, or None."""


class Outbound(Protocol):
    """What a caller's answer goes through on its way out (never what is stored)."""

    def response(self, completion: dict[str, Any]) -> dict[str, Any]: ...

    def stream(self) -> OutboundStream: ...


class CallHook(Protocol):
    """Rules applied to every call (policies: redaction, routing of request classes,
    disclosure, hand-off detection). `before`: before the provider sees the request; it may
    change `call.body`, `call.route` and `call.record`, set `call.outbound`, and raise an
    `HTTPError` to refuse the call. `after`: on a provider's whole answer (not on cache hits),
    before it is captured. `seal`: on the trajectory just before it is captured, whatever the
    call's end (answered, refused, failed, cut short); it must not raise and must not mutate
    objects the caller still holds (it replaces `record.request`/`response`)."""

    async def before(self, call: Call) -> None: ...

    async def after(self, call: Call, response: dict[str, Any]) -> None: ...

    def seal(self, call: Call) -> None: ...


def cost(prices: ModelInfo | None, usage: dict[str, Any] | None) -> float | None:
    """Cost of one call from per-million-token prices, when the config gives them."""
    if prices is None or usage is None:
        return None
    if prices.input_per_mtok is None and prices.output_per_mtok is None:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    per_mtok = prompt * (prices.input_per_mtok or 0) + completion * (prices.output_per_mtok or 0)
    return per_mtok / 1e6


def elapsed_ms(call: Call) -> float:
    return (time.perf_counter() - call.started) * 1000


class AnswerStream:
    """A streamed answer: the first chunk is in (a provider that fails outright fails the
    call, not the stream); iterating yields every chunk, the first included. The trajectory is
    captured when the stream ends: in durable mode the iteration ends only once it is stored.
    A stream broken by the provider raises its `HTTPError` after capturing an `incomplete`
    trajectory with the partial answer; a consumer that stops early (the client left) leaves
    the same, and the provider's stream is closed."""

    def __init__(self, gateway: Gateway, call: Call, route: Route, first: dict[str, Any],
                 rest: AsyncIterator[dict[str, Any]] | None, recalled: Recalled | None,
                 cache: str | None = None, cached_from: str | None = None) -> None:
        self.route = route
        self.cache = cache
        self.cached_from = cached_from
        self._gateway = gateway
        self._call = call
        self._first = first
        self._rest = rest
        self._recalled = recalled

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        gateway, call, record = self._gateway, self._call, self._call.record
        assembler = StreamAssembler()
        outbound = call.outbound.stream() if call.outbound is not None else None
        chunk: dict[str, Any] | None = self._first
        try:
            while chunk is not None:
                if record.ttft_ms is None and _has_output(chunk):
                    record.ttft_ms = elapsed_ms(call)
                assembler.add(chunk)
                yield chunk if outbound is None else outbound.chunk(chunk)
                chunk = await anext(self._rest, None) if self._rest is not None else None
            if outbound is not None and (last := outbound.flush()) is not None:
                yield last
        except HTTPError as exc:
            record.status, record.error = "incomplete", exc.message
            self._finish(assembler)
            await _capture(gateway, call, exc)
            raise
        except BaseException as exc:
            # The consumer went away (cancellation, or the generator closed early) or something
            # broke: keep what was said, stop the provider, and re-raise.
            record.status, record.error = "incomplete", CLIENT_GONE
            self._finish(assembler)
            _capture_nowait(gateway, call, exc)
            if self._rest is not None:
                with anyio.CancelScope(shield=True):
                    await self._rest.aclose()  # type: ignore[attr-defined]
            raise
        self._finish(assembler)
        if not record.cached:
            await gateway.run_after(call, record.response or {})
        await _capture(gateway, call)
        if self._recalled is not None and record.response is not None and not record.cached:
            gateway.remember(self._recalled, record.response, record.id)

    def _finish(self, assembler: StreamAssembler) -> None:
        record = self._call.record
        record.latency_ms = elapsed_ms(self._call)
        if record.cached:
            return
        record.response = assembler.completion()
        record.usage = assembler.usage
        record.cost = cost(self.route.prices, record.usage)


async def run_call(gateway: Gateway, call: Call, cache: AnswerCache | None) -> Answer:
    """`Gateway.call`: see the module's docstring."""
    record = call.record
    try:
        recalled = await _before(gateway, call)
        if recalled is not None and recalled.cached is not None:
            answer = _semantic_hit(call, recalled)
            await _capture(gateway, call)
            return _shown(call, answer)
        hit = cache.get(call) if cache is not None else None
        if hit is not None:
            answer = _replay(call, hit)
            await _capture(gateway, call)
            return _shown(call, answer)
        try:
            if gateway.unstarted:
                await gateway.ready(call.route)
            response, route = await gateway.caller.complete(call.route, call.body, record)
        except UPSTREAM_FAILURES as exc:
            await _failed(gateway, call, exc)
            raise
        record.latency_ms = record.ttft_ms = elapsed_ms(call)
        record.response, record.usage = response, response.get("usage")
        record.cost = cost(route.prices, record.usage)
        await gateway.run_after(call, response)
    except asyncio.CancelledError:
        _gone(gateway, call)
        raise
    await _capture(gateway, call)
    # Caches keep the answer as stored (sealed); the caller gets it through `call.outbound`.
    stored = record.response if record.response is not None else response
    answer = Answer(stored, route, record.cost, record.latency_ms,
                    cache="miss" if recalled is not None and recalled.guard else None)
    if recalled is not None:
        gateway.remember(recalled, stored, record.id)
    if cache is not None:
        cache.put(call, answer)
    answer.response = response  # what the provider said, not what was stored of it
    return _shown(call, answer)


async def run_stream(gateway: Gateway, call: Call) -> AnswerStream:
    """`Gateway.call_stream`: see the module's docstring and `AnswerStream`."""
    record = call.record
    record.stream = True
    try:
        recalled = await _before(gateway, call)
        if recalled is not None and recalled.cached is not None:
            answer = _semantic_hit(call, recalled)
            chunks = completion_to_chunks(answer.response)
            return AnswerStream(gateway, call, call.route, chunks[0], _iterate(chunks[1:]),
                                None, "hit", answer.cached_from)
        try:
            if gateway.unstarted:
                await gateway.ready(call.route)
            (first, rest), route = await gateway.caller.stream(call.route, call.body, record)
        except UPSTREAM_FAILURES as exc:
            await _failed(gateway, call, exc)
            raise
    except asyncio.CancelledError:
        _gone(gateway, call)
        raise
    cache = "miss" if recalled is not None and recalled.guard else None
    return AnswerStream(gateway, call, route, first, rest, recalled, cache)


async def _before(gateway: Gateway, call: Call) -> Recalled | None:
    """The hooks, then the function's recall: a semantic-cache hit, or memory put into the
    prompt (the trajectory keeps the request as the caller sent it, and what was added)."""
    try:
        await gateway.run_before(call)
    except HTTPError as refused:  # a rule refused the call: on the record, like any failure
        await _failed(gateway, call, refused)
        raise
    function = call.route.function
    if not call.recall or function is None or not gateway.recall.wants(function):
        return None
    hide = functools.partial(gateway.policy.stored_text, call)  # the cache keeps no more
    recalled = await gateway.recall.prepare(function, call.body, hide)
    if recalled.cached is None and recalled.context is not None:
        call.record.context = recalled.context.record
        if recalled.context.message is not None:
            call.body = {**call.body,
                         "messages": [recalled.context.message, *call.body["messages"]]}
    return recalled


def _shown(call: Call, answer: Answer) -> Answer:
    """The answer as the caller gets it (`call.outbound`: the stored one is left as it is)."""
    if call.outbound is not None:
        answer.response = call.outbound.response(answer.response)
    return answer


def _semantic_hit(call: Call, recalled: Recalled) -> Answer:
    """An earlier answer given again: no provider call, no tokens spent; marked `cached`."""
    hit = recalled.cached
    assert hit is not None
    record = call.record
    response = {**hit.response, "id": f"chatcmpl-{record.id}", "created": int(record.created_at),
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
    record.cached = True
    if recalled.origin is not None:  # the answer is the one its first trajectory's model gave
        origin = recalled.origin
        record.provider, record.model, record.variant = (origin.provider, origin.model,
                                                         origin.variant)
    record.response, record.usage, record.cost = response, response["usage"], 0.0
    record.latency_ms = record.ttft_ms = elapsed_ms(call)
    record.context = {"cache": {"entry": hit.entry_id, "similarity": round(hit.similarity, 6),
                                "trajectory_id": hit.trajectory_id}}
    return Answer(response, call.route, 0.0, record.latency_ms, cached=True, cache="hit",
                  cached_from=hit.trajectory_id or None)


def _replay(call: Call, hit: CachedAnswer) -> Answer:
    """An answer from the caller's cache: recorded as a cached trajectory costing nothing."""
    record, route = call.record, call.route
    record.variant, record.provider, record.model = route.variant, route.provider.name, route.model
    record.cached = True
    record.cost = 0.0
    record.context = dict(hit.context) or None
    record.response, record.usage = hit.response, hit.response.get("usage")
    record.latency_ms = elapsed_ms(call)
    return Answer(hit.response, route, hit.cost, hit.latency_ms, cached=True)


async def _failed(gateway: Gateway, call: Call, exc: HTTPError) -> None:
    record = call.record
    record.status, record.error = "error", exc.message
    record.latency_ms = elapsed_ms(call)
    await _capture(gateway, call, exc)


def _gone(gateway: Gateway, call: Call) -> None:
    """The caller left before the answer started: the provider call was cancelled."""
    record = call.record
    record.status, record.error = "incomplete", CLIENT_GONE
    record.latency_ms = elapsed_ms(call)
    _capture_nowait(gateway, call, asyncio.CancelledError())


# Where a call ends: counted once in the gateway's metrics (metrics.py), then its trajectory
# handed to the writer.

async def _capture(gateway: Gateway, call: Call, error: BaseException | None = None) -> None:
    gateway.metrics.observe(call, gateway.config, error)
    gateway.seal(call)
    await gateway.capture(call.record)


def _capture_nowait(gateway: Gateway, call: Call, error: BaseException) -> None:
    gateway.metrics.observe(call, gateway.config, error)
    gateway.seal(call)
    gateway.capture_nowait(call.record)


async def _iterate(chunks: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for chunk in chunks:
        yield chunk


def _has_output(chunk: dict[str, Any]) -> bool:
    """Whether a chunk carries answer text or a tool call (a role-only first chunk does not)."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
            return True
    return False
