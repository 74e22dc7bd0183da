"""`POST /v1/chat/completions`, and serving a chat through the one call path (call.py) in any
surface's format.

The hot path parses the body once (orjson), checks what it relies on, and runs the call. In
durable mode the last byte a client receives (the body of a plain answer, `data: [DONE]` of a
stream) is sent only after the trajectory is committed. A stream that breaks ends with an
explicit error event and an `incomplete` trajectory holding the partial answer; a client that
goes away cancels the upstream call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from veteran.access import admit
from veteran.errors import HTTPError
from veteran.gateway.call import AnswerStream, Call
from veteran.gateway.core import Gateway
from veteran.gateway.http import read_json_object
from veteran.gateway.policy import HEADER, header
from veteran.gateway.resilience import UPSTREAM_FAILURES
from veteran.gateway.surface import OPENAI, StreamRenderer, Surface
from veteran.gateway.validate import check_chat, check_episode_id, parse_tags


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
    call = gateway.prepare(
        body, variant=headers.get("x-veteran-variant"),
        episode_id=check_episode_id(episode) if episode is not None else None, tags=tags,
        started=started,
    )
    admit(request.scope, call.record, body, call.route)  # team, key; 429 here stores nothing
    out_headers = {"x-veteran-trajectory-id": call.record.id,
                   "x-veteran-episode-id": call.record.episode_id}
    if call.record.stream:
        return await _stream(gateway, call, out_headers, surface, surface.renderer(body))
    try:
        answer = await gateway.call(call)
    except UPSTREAM_FAILURES as exc:
        return surface.error(exc, _answered_by(out_headers, call))
    _answered_by(out_headers, call)
    _cache_headers(out_headers, answer.cache, answer.cached_from)
    return surface.answer(answer.response, out_headers)


def _answered_by(headers: dict[str, str], call: Call) -> dict[str, str]:
    """`x-veteran-variant`: the variant that answered (a fallback's, when one took over);
    `x-veteran-policy`: the company's rules applied (gateway/policy.py)."""
    if call.record.variant is not None:
        headers["x-veteran-variant"] = call.record.variant
    if (policy := header(call.record.policy)) is not None:
        headers[HEADER] = policy
    return headers


def _cache_headers(headers: dict[str, str], cache: str | None, cached_from: str | None) -> None:
    if cache is not None:
        headers["x-veteran-cache"] = cache
    if cached_from:
        headers["x-veteran-cached-from"] = cached_from


async def _stream(
    gateway: Gateway, call: Call, headers: dict[str, str], surface: Surface,
    renderer: StreamRenderer,
) -> Response:
    # The first chunk is awaited before answering, so a provider that fails outright gets a
    # proper HTTP error status rather than a 200 stream with an error inside (and retries and
    # fallbacks can still take over).
    try:
        stream = await gateway.call_stream(call)
    except UPSTREAM_FAILURES as failure:
        return surface.error(failure, _answered_by(headers, call))
    _answered_by(headers, call)
    _cache_headers(headers, stream.cache, stream.cached_from)
    return StreamingResponse(
        _events(stream, renderer), headers={**headers, "cache-control": "no-cache"},
        media_type="text/event-stream",
    )


async def _events(stream: AnswerStream, renderer: StreamRenderer) -> AsyncIterator[bytes]:
    chunks = aiter(stream)
    try:
        async for chunk in chunks:
            out = renderer.chunk(chunk)
            if out:
                yield out
    except HTTPError as exc:  # the provider broke the stream: captured as incomplete
        yield renderer.error(exc)
        return
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    yield renderer.done()

