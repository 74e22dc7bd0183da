"""`kind = "openai"`: any OpenAI-compatible chat-completions endpoint (OpenAI, Azure, vLLM,
Ollama, llama.cpp server, ...).

The upstream URL comes only from the config (`base_url`); nothing in a request can change it.
Calls go through `veteran.http.ConnectionPool` (keep-alive, streams read as they arrive, never
buffered whole); see `veteran/http/client.py` for why not aiohttp or httpx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlencode

import orjson
from pydantic import Field, field_validator

from veteran import http
from veteran.errors import (
    StreamInterrupted,
    UpstreamError,
    UpstreamTimeout,
    VeteranError,
)
from veteran.providers.base import (
    ModelRequest,
    Provider,
    ProviderSettings,
    api_key,
    rejection,
)
from veteran.providers.sse import SSEDecoder


class OpenAISettings(ProviderSettings):
    kind: Literal["openai"]
    base_url: str
    api_key_env: str | None = None
    # Azure sends the key as `api-key`; everyone else as `Authorization: Bearer`.
    api_key_header: Literal["authorization", "api-key"] = "authorization"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=300.0, gt=0)
    total_timeout: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=512, ge=1)
    # Ask streams for a final usage chunk, so streamed calls are captured with token counts.
    stream_usage: bool = True

    NOT_DECIDING = ProviderSettings.NOT_DECIDING | {
        "connect_timeout", "read_timeout", "total_timeout", "max_connections", "stream_usage"}

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")


class OpenAIProvider(Provider):
    kind = "openai"
    Settings = OpenAISettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, OpenAISettings)
        self.config = settings
        self._pool: http.ConnectionPool | None = None
        self._key: str | None = None
        self._headers = b""
        query = f"?{urlencode(settings.query)}" if settings.query else ""
        self._path = f"/chat/completions{query}"

    def check(self) -> None:
        self._key = api_key(self.name, self.config.api_key_env)

    async def start(self) -> None:
        cfg = self.config
        self.check()
        headers = {"Content-Type": "application/json", **cfg.headers}
        if self._key:
            if cfg.api_key_header == "api-key":
                headers["api-key"] = self._key
            else:
                headers["Authorization"] = f"Bearer {self._key}"
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

    def _post(self, request: ModelRequest, body: dict[str, Any]) -> http.RequestContext:
        if self._pool is None:
            raise UpstreamError(f"provider {self.name!r} is not started")
        return self._pool.request(
            "POST", self._path, self._headers, orjson.dumps(body), request.timeouts
        )

    async def complete(self, request: ModelRequest) -> dict[str, Any]:
        try:
            async with self._post(request, request.body) as resp:
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
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            raise UpstreamError(f"provider {self.name!r} answered without choices")
        return answer

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        body = request.body
        if self.config.stream_usage:
            options = body.get("stream_options") or {}
            body = {**body, "stream_options": {**options, "include_usage": True}}
        done = finished = started = False
        try:
            async with self._post(request, body) as resp:
                if resp.status >= 400:
                    raise self._rejection(resp, await resp.read())
                decoder = SSEDecoder()
                async for piece in resp.iter_chunks():
                    for event in decoder.feed(piece):
                        if event.data == "[DONE]":
                            done = True
                            break
                        chunk = self._chunk(event.data)
                        finished = finished or _has_finish(chunk)
                        started = True
                        yield chunk
                    if done:
                        break
                if not done:
                    for event in decoder.close():
                        if event.data != "[DONE]":
                            chunk = self._chunk(event.data)
                            finished = finished or _has_finish(chunk)
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
        if not done and not finished:
            raise StreamInterrupted(
                f"provider {self.name!r} stream ended before the answer was complete"
            )

    def _chunk(self, data: str) -> dict[str, Any]:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StreamInterrupted(
                f"provider {self.name!r} sent a stream event that is not JSON"
            ) from None
        if not isinstance(chunk, dict):
            raise StreamInterrupted(f"provider {self.name!r} sent a stream event that is not JSON")
        if "error" in chunk:
            message = _message(chunk) or "error event in stream"
            raise StreamInterrupted(f"provider {self.name!r}: {self._scrub(message)}")
        return chunk

    def _rejection(self, resp: http.Response, raw: bytes) -> Exception:
        return rejection(self.name, resp, raw, _message, self._scrub)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _has_finish(chunk: dict[str, Any]) -> bool:
    return any(c.get("finish_reason") for c in chunk.get("choices") or ())


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return None
