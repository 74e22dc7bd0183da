"""`kind = "anthropic"`: Anthropic's Messages API (`POST {base_url}/v1/messages`).

The gateway's OpenAI body is translated by `protocols.anthropic` (`to_anthropic_request`), the
answer back (`to_openai_completion`, `ChunkDecoder`), so the rest of the gateway sees an
OpenAI-compatible provider. Transport, timeouts and error mapping follow the openai provider:
the same pooled HTTP/1.1 client and SSE decoder; the key travels in `x-api-key` and is scrubbed
from any upstream text before it is wrapped in an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator

from veteran import http
from veteran.errors import (
    StreamInterrupted,
    UpstreamError,
    UpstreamTimeout,
    VeteranError,
)
from veteran.protocols.anthropic import ChunkDecoder, to_anthropic_request, to_openai_completion
from veteran.providers.base import (
    ModelRequest,
    Provider,
    ProviderSettings,
    api_key,
    rejection,
)
from veteran.providers.sse import SSEDecoder

PATH = "/v1/messages"


class AnthropicSettings(ProviderSettings):
    kind: Literal["anthropic"]
    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = None
    anthropic_version: str = "2023-06-01"
    # Anthropic requires `max_tokens`; OpenAI clients often leave it out.
    default_max_tokens: int = Field(default=4096, ge=1, le=1_000_000)
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=300.0, gt=0)
    total_timeout: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=512, ge=1)

    NOT_DECIDING = ProviderSettings.NOT_DECIDING | {
        "connect_timeout", "read_timeout", "total_timeout", "max_connections"}

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")


class AnthropicProvider(Provider):
    kind = "anthropic"
    Settings = AnthropicSettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, AnthropicSettings)
        self.config = settings
        self._pool: http.ConnectionPool | None = None
        self._key: str | None = None
        self._headers = b""

    def check(self) -> None:
        self._key = api_key(self.name, self.config.api_key_env)

    async def start(self) -> None:
        cfg = self.config
        self.check()
        headers = {"Content-Type": "application/json",
                   "anthropic-version": cfg.anthropic_version, **cfg.headers}
        if self._key:
            headers["x-api-key"] = self._key
        try:
            self._headers = http.header_block(headers)
        except ValueError:
            raise VeteranError(f"provider {self.name!r}: a header contains a line break") from None
        self._pool = http.ConnectionPool(
            cfg.base_url, max_connections=cfg.max_connections,
            timeouts=http.Timeouts(cfg.connect_timeout, cfg.read_timeout, cfg.total_timeout),
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _post(self, request: ModelRequest, stream: bool) -> http.RequestContext:
        # translated first: a request Anthropic cannot take is a 400 before any connection
        body = to_anthropic_request(
            {**request.body, "stream": stream}, request.model, self.config.default_max_tokens
        )
        if self._pool is None:
            raise UpstreamError(f"provider {self.name!r} is not started")
        return self._pool.request(
            "POST", PATH, self._headers, orjson.dumps(body), request.timeouts
        )

    async def complete(self, request: ModelRequest) -> dict[str, Any]:
        try:
            async with self._post(request, False) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise self._rejection(resp, raw)
        except (http.ReadTimeout, http.TotalTimeout):
            raise UpstreamTimeout(f"provider {self.name!r} did not answer in time") from None
        except http.HTTPClientError as exc:
            raise UpstreamError(f"provider {self.name!r} failed: {exc}") from None
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"provider {self.name!r} answered with invalid JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
            raise UpstreamError(f"provider {self.name!r} answered without content")
        return to_openai_completion(answer)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        decoder = ChunkDecoder()
        started = False
        try:
            async with self._post(request, True) as resp:
                if resp.status >= 400:
                    raise self._rejection(resp, await resp.read())
                sse = SSEDecoder()
                async for piece in resp.iter_chunks():
                    for event in sse.feed(piece):
                        for chunk in self._chunks(decoder, event.event, event.data):
                            started = True
                            yield chunk
                    if decoder.stopped:
                        break
                if not decoder.stopped:
                    for event in sse.close():
                        for chunk in self._chunks(decoder, event.event, event.data):
                            yield chunk
        except (http.ReadTimeout, http.TotalTimeout) as exc:
            if not started:
                raise UpstreamTimeout(f"provider {self.name!r} did not answer in time") from None
            raise StreamInterrupted(f"provider {self.name!r} stream timed out: {exc}") from None
        except http.ConnectionClosed:
            if not started:
                raise UpstreamError(f"provider {self.name!r} closed the connection") from None
            raise StreamInterrupted(f"provider {self.name!r} stream was cut") from None
        except http.HTTPClientError as exc:
            raise UpstreamError(f"provider {self.name!r} failed: {exc}") from None
        if not decoder.finished:
            raise StreamInterrupted(
                f"provider {self.name!r} stream ended before the answer was complete"
            )

    def _chunks(self, decoder: ChunkDecoder, name: str | None, data: str
                ) -> list[dict[str, Any]]:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise StreamInterrupted(f"provider {self.name!r} sent a stream event that is not JSON")
        try:
            return decoder.event(name, parsed)
        except StreamInterrupted as exc:
            raise StreamInterrupted(f"provider {self.name!r}: {self._scrub(exc.message)}") from None

    def _rejection(self, resp: http.Response, raw: bytes) -> Exception:
        return rejection(self.name, resp, raw, _message, self._scrub)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _message(body: Any) -> str | None:
    """The message of Anthropic's error JSON: `{"type": "error", "error": {"message": ...}}`."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return None
