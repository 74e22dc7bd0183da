"""`POST /v1/chat/completions` and the chat pipeline every surface shares: route, call, stream,
capture.

The hot path parses the body once (orjson), checks what it relies on, calls the provider, and
hands the trajectory to the capture writer. In durable mode the last byte a client receives
(the body of a plain answer, `data: [DONE]` of a stream) is sent only after the trajectory is
committed. A stream that breaks ends with an explicit error event and an `incomplete`
trajectory holding the partial answer; a client that goes away cancels the upstream call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from veteran.access import admit
from veteran.errors import HTTPError
from veteran.gateway.assemble import StreamAssembler
from veteran.gateway.core import Gateway, cost
from veteran.gateway.http import read_json_object
from veteran.gateway.recall import Recalled
from veteran.gateway.resilience import UPSTREAM_FAILURES
from veteran.gateway.routing import Route
from veteran.gateway.surface import OPENAI, StreamRenderer, Surface
from veteran.gateway.validate import check_chat, check_episode_id, parse_tags
from veteran.providers.shapes import completion_to_chunks
from veteran.store import new_id
from veteran.types import TrajectoryRecord, now

CLIENT_GONE = "client disconnected before the answer was complete"


async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    started = time.perf_counter()
    body = await read_json_object(request, gateway.max_body)
    check_chat(body)
    return await serve_chat(request, body, OPENAI, started)


async def serve_chat(
    request: Request, body: dict[str, Any], surface: Surface, started: float
) -> Response:
    """Serve a checked chat-completions `body` (already translated by a non-OpenAI surface),
    answering in `surface`'s format. `started` is `time.perf_counter()` at the request's start."""
    gateway: Gateway = request.app.state.gateway
    headers = request.headers
    tags = parse_tags(headers.get("x-veteran-tags"), body.get("veteran_tags"))
    episode = headers.get("x-veteran-episode-id")
    episode_id = check_episode_id(episode) if episode is not None else new_id()
    route = gateway.router.resolve(body["model"], headers.get("x-veteran-variant"))
    created_at = now()
    record = TrajectoryRecord(
        id=new_id(created_at), episode_id=episode_id, request=body, created_at=created_at,
        function=route.function, stream=bool(body.get("stream")), tags=tags,
    )
    admit(request.scope, record, body, route)  # team, key; 429 here stores nothing
    out_headers = {"x-veteran-trajectory-id": record.id, "x-veteran-episode-id": episode_id}
    recalled: Recalled | None = None
    if gateway.recall.wants(route.function):  # memory or semantic cache declared
        recalled = await gateway.recall.prepare(route.function, body)  # type: ignore[arg-type]
        if recalled.cached is not None:
            return await _from_cache(gateway, recalled, record, out_headers, started, surface,
                                     body)
        if recalled.guard is not None:
            out_headers["x-veteran-cache"] = "miss"
        if recalled.context is not None:
            record.context = recalled.context.record
            if recalled.context.message is not None:
                body = {**body, "messages": [recalled.context.message, *body["messages"]]}
    if record.stream:
        renderer = surface.renderer(body)
        return await _stream(gateway, route, body, record, out_headers, started, surface,
                             renderer, recalled)
    try:
        answer, route = await gateway.caller.complete(route, body, record)
    except UPSTREAM_FAILURES as exc:
        await _capture_failure(gateway, record, exc, started)
        return surface.error(exc, _answered_by(out_headers, record))
    except asyncio.CancelledError:
        _capture_gone(gateway, record, started)
        raise
    _answered_by(out_headers, record)
    record.latency_ms = record.ttft_ms = (time.perf_counter() - started) * 1000
    record.response = answer
    record.usage = answer.get("usage")
    record.cost = cost(route.prices, record.usage)
    await gateway.capture(record)
    if recalled is not None:
        _remember(gateway, recalled, answer, record.id)
    return surface.answer(answer, out_headers)


async def _from_cache(
    gateway: Gateway,
    recalled: Recalled,
    record: TrajectoryRecord,
    headers: dict[str, str],
    started: float,
    surface: Surface,
    body: dict[str, Any],
) -> Response:
    """Answer with an earlier answer: no provider call, no tokens spent; marked `cached`."""
    hit = recalled.cached
    assert hit is not None
    answer = {**hit.response, "id": f"chatcmpl-{record.id}", "created": int(record.created_at),
              "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
    record.cached = True
    record.response = answer
    record.usage = answer["usage"]
    record.cost = 0.0
    record.latency_ms = record.ttft_ms = (time.perf_counter() - started) * 1000
    record.context = {"cache": {"entry": hit.entry_id, "similarity": round(hit.similarity, 6),
                                "trajectory_id": hit.trajectory_id}}
    headers["x-veteran-cache"] = "hit"
    if hit.trajectory_id:
        headers["x-veteran-cached-from"] = hit.trajectory_id
    await gateway.capture(record)
    if not record.stream:
        return surface.answer(answer, headers)
    renderer = surface.renderer(body)

    async def events() -> AsyncIterator[bytes]:
        for chunk in completion_to_chunks(answer):
            out = renderer.chunk(chunk)
            if out:
                yield out
        yield renderer.done()

    return StreamingResponse(events(), headers={**headers, "cache-control": "no-cache"},
                             media_type="text/event-stream")


def _remember(
    gateway: Gateway, recalled: Recalled, answer: dict[str, Any], trajectory_id: str
) -> None:
    """Keep the answer in the semantic cache, off the event loop (nobody waits for it)."""
    if recalled.guard is None:
        return
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, gateway.recall.remember, recalled, answer, trajectory_id)


def _answered_by(headers: dict[str, str], record: TrajectoryRecord) -> dict[str, str]:
    """`x-veteran-variant`: the variant that answered (a fallback's, when one took over)."""
    if record.variant is not None:
        headers["x-veteran-variant"] = record.variant
    return headers


async def _capture_failure(
    gateway: Gateway, record: TrajectoryRecord, exc: HTTPError, started: float
) -> None:
    record.status = "error"
    record.error = exc.message
    record.latency_ms = (time.perf_counter() - started) * 1000
    await gateway.capture(record)


def _capture_gone(gateway: Gateway, record: TrajectoryRecord, started: float) -> None:
    """The client left before the answer started: the provider call was cancelled."""
    record.status = "incomplete"
    record.error = CLIENT_GONE
    record.latency_ms = (time.perf_counter() - started) * 1000
    gateway.capture_nowait(record)


async def _stream(
    gateway: Gateway,
    route: Route,
    body: dict[str, Any],
    record: TrajectoryRecord,
    headers: dict[str, str],
    started: float,
    surface: Surface,
    renderer: StreamRenderer,
    recalled: Recalled | None = None,
) -> Response:
    # The first chunk is awaited before answering, so a provider that fails outright gets a
    # proper HTTP error status rather than a 200 stream with an error inside (and retries and
    # fallbacks can still take over).
    try:
        (first, chunks), route = await gateway.caller.stream(route, body, record)
    except UPSTREAM_FAILURES as failure:
        await _capture_failure(gateway, record, failure, started)
        return surface.error(failure, _answered_by(headers, record))
    except asyncio.CancelledError:
        _capture_gone(gateway, record, started)
        raise
    _answered_by(headers, record)
    events = _events(gateway, route, chunks, first, record, started, renderer, recalled)
    return StreamingResponse(
        events, headers={**headers, "cache-control": "no-cache"}, media_type="text/event-stream"
    )


async def _events(
    gateway: Gateway,
    route: Route,
    chunks: AsyncIterator[dict[str, Any]],
    first: dict[str, Any],
    record: TrajectoryRecord,
    started: float,
    renderer: StreamRenderer,
    recalled: Recalled | None = None,
) -> AsyncIterator[bytes]:
    assembler = StreamAssembler()
    chunk: dict[str, Any] | None = first
    try:
        while chunk is not None:
            if record.ttft_ms is None and _has_output(chunk):
                record.ttft_ms = (time.perf_counter() - started) * 1000
            assembler.add(chunk)
            out = renderer.chunk(chunk)
            if out:
                yield out
            chunk = await anext(chunks, None)
    except HTTPError as exc:
        record.status = "incomplete"
        record.error = exc.message
        _finish(record, assembler, route, started)
        await gateway.capture(record)
        yield renderer.error(exc)
        return
    except BaseException:
        # The client went away (cancellation) or something broke: keep what was said, stop
        # the provider, and re-raise.
        record.status = "incomplete"
        record.error = CLIENT_GONE
        _finish(record, assembler, route, started)
        gateway.capture_nowait(record)
        with anyio.CancelScope(shield=True):
            await chunks.aclose()  # type: ignore[attr-defined]
        raise
    _finish(record, assembler, route, started)
    await gateway.capture(record)
    if recalled is not None and record.response is not None:
        _remember(gateway, recalled, record.response, record.id)
    yield renderer.done()


def _has_output(chunk: dict[str, Any]) -> bool:
    """Whether a chunk carries answer text or a tool call (a role-only first chunk does not)."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
            return True
    return False


def _finish(
    record: TrajectoryRecord, assembler: StreamAssembler, route: Route, started: float
) -> None:
    record.latency_ms = (time.perf_counter() - started) * 1000
    record.response = assembler.completion()
    record.usage = assembler.usage
    record.cost = cost(route.prices, record.usage)
