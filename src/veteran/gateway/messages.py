"""`POST /v1/messages`: Anthropic's Messages API, so the official Anthropic SDK (and tools built
on it) work against the gateway unchanged.

The request is checked and translated to the internal OpenAI shape (`protocols.anthropic`) and
served by the same pipeline as `/v1/chat/completions` (`chat.serve_chat`): routing, capture and
stream handling are shared; only the rendering differs. The trajectory stores the translated
request, the body the provider received, like every other call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from veteran.errors import HTTPError
from veteran.gateway.chat import serve_chat
from veteran.gateway.core import Gateway
from veteran.gateway.http import json_response, read_json_object
from veteran.gateway.surface import StreamRenderer, Surface
from veteran.gateway.validate import check_chat
from veteran.protocols.anthropic import (
    MessageStreamRenderer,
    error_body,
    stop_list,
    to_anthropic_message,
    to_openai_request,
)


class AnthropicSurface:
    """Answers as Anthropic `message` JSON, streams as Anthropic events, errors as Anthropic
    error JSON. `stops` are the request's stop sequences: an OpenAI answer does not say which
    one matched, so the surface checks the provider's hint against them (`stop_sequence`)."""

    name = "anthropic"

    def __init__(self, stops: list[str] | None = None) -> None:
        self.stops = stops or []

    def answer(self, completion: dict[str, Any], headers: Mapping[str, str]) -> Response:
        try:
            message = to_anthropic_message(completion, self.stops)
        except HTTPError as exc:  # tool arguments that are not a JSON object
            return self.error(exc, headers)
        return json_response(message, headers=headers)

    def renderer(self, body: dict[str, Any]) -> StreamRenderer:
        return MessageStreamRenderer(stop_list(body))

    def error(self, exc: HTTPError, headers: Mapping[str, str] | None = None) -> Response:
        merged = {**(exc.headers or {}), **(headers or {})}
        return json_response(error_body(exc), exc.status, merged)


ANTHROPIC: Surface = AnthropicSurface()


async def messages(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    started = time.perf_counter()
    try:
        body = await read_json_object(request, gateway.max_body)
        openai_body = to_openai_request(body)
        check_chat(openai_body)
        surface = AnthropicSurface(stop_list(openai_body)) if "stop" in openai_body else ANTHROPIC
        return await serve_chat(request, openai_body, surface, started)
    except HTTPError as exc:
        return ANTHROPIC.error(exc)
