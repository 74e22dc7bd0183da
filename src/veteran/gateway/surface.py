"""A surface: the wire format a client speaks to the gateway.

Inside, the gateway speaks OpenAI chat completions: providers take and return that shape and the
store keeps it. A surface turns the internal answer, stream chunks and errors into what its
clients expect. `OPENAI` passes things through; the Anthropic Messages surface
(`gateway/messages.py`) translates. The chat pipeline (`chat.serve_chat`) takes a surface, so
routing, limits, retries, streaming and capture are the same code for every wire format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from starlette.responses import Response

from veteran.errors import HTTPError, to_openai_error
from veteran.gateway.http import JSON, error_response

DONE = b"data: [DONE]\n\n"


class StreamRenderer(Protocol):
    """Turns one stream's `chat.completion.chunk` dicts into the bytes a client receives."""

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """Bytes for one chunk (may be empty: nothing to send for it)."""

    def done(self) -> bytes:
        """The stream's closing bytes, sent after the trajectory is captured."""

    def error(self, exc: HTTPError) -> bytes:
        """An explicit error event ending a stream that broke."""


class Surface(Protocol):
    name: str

    def answer(self, completion: dict[str, Any], headers: Mapping[str, str]) -> Response:
        """The response to a plain (non-streamed) call."""

    def renderer(self, body: dict[str, Any]) -> StreamRenderer:
        """A renderer for one stream; `body` is the internal (OpenAI) request."""

    def error(self, exc: HTTPError, headers: Mapping[str, str] | None = None) -> Response:
        """An error response in this surface's shape."""


class OpenAIRenderer:
    __slots__ = ("include_usage",)

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        # a usage-only chunk (`choices: []`) goes only to clients that asked for it
        if self.include_usage or chunk.get("choices"):
            return b"data: " + orjson.dumps(chunk) + b"\n\n"
        return b""

    def done(self) -> bytes:
        return DONE

    def error(self, exc: HTTPError) -> bytes:
        return b"data: " + orjson.dumps(to_openai_error(exc)) + b"\n\n"


class OpenAISurface:
    name = "openai"

    def answer(self, completion: dict[str, Any], headers: Mapping[str, str]) -> Response:
        return Response(orjson.dumps(completion), headers=headers, media_type=JSON)

    def renderer(self, body: dict[str, Any]) -> StreamRenderer:
        options = body.get("stream_options") or {}
        return OpenAIRenderer(bool(options.get("include_usage")))

    def error(self, exc: HTTPError, headers: Mapping[str, str] | None = None) -> Response:
        return error_response(exc, headers)


OPENAI: Surface = OpenAISurface()
