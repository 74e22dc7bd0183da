"""The provider plugin contract: one class, one required method.

A provider turns an OpenAI chat-completions body into an answer. The gateway speaks the OpenAI
wire format internally, so a provider receives `ModelRequest.body` in that shape (model already
set to the provider's own model name) and returns an OpenAI `chat.completion` dict from
`complete`. Streaming providers also override `stream`, yielding `chat.completion.chunk` dicts;
the default `stream` turns `complete`'s answer into chunks, so a new backend needs one method.

Providers may also emit a final usage-only chunk (`choices: []`, `usage: {...}`); the gateway
forwards it only to clients that asked for `stream_options.include_usage`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from veteran.errors import HTTPError, UpstreamError, UpstreamRejected
from veteran.providers.http1 import Timeouts, retry_after
from veteran.providers.shapes import completion_to_chunks


class ModelInfo(BaseModel):
    """A model a provider offers, with optional prices in currency units per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)


class RetrySettings(BaseModel):
    """`[providers.NAME.retry]`: how failed calls to a provider are retried (gateway/resilience.py).
    Only retryable failures are retried: no connection, 429, 500, 502, 503, 504, 529."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_initial: float = Field(default=0.25, gt=0, le=60)  # seconds before the first retry
    backoff_max: float = Field(default=8.0, gt=0, le=600)  # cap of the doubling backoff
    # A Retry-After longer than this is not waited for: the call moves on to the fallbacks.
    retry_after_max: float = Field(default=30.0, ge=0, le=3600)


class BreakerSettings(BaseModel):
    """`[providers.NAME.breaker]`: after `failures` failed calls in a row the provider is marked
    down for `cooldown` seconds; then one probe call decides whether it is back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(default=5, ge=1, le=1000)
    cooldown: float = Field(default=30.0, gt=0, le=86400)


class ProviderSettings(BaseModel):
    """Settings shared by every provider; a provider's own `Settings` subclass adds its keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    models: dict[str, ModelInfo] = Field(default_factory=dict)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)

    def knows_model(self, name: str) -> bool:
        """Whether `PROVIDER/name` is servable. Default: any (remote servers know their own)."""
        return True

    def model_names(self) -> list[str]:
        """Models listed by `GET /v1/models` for this provider."""
        return sorted(self.models)


@dataclass(slots=True)
class ModelRequest:
    """One call to a provider: its model name, the OpenAI-shaped body to send, and timeouts
    that replace the provider's own for this call (a variant's), if any."""

    model: str
    body: dict[str, Any]
    timeouts: Timeouts | None = None


class Provider(ABC):
    """Base of every provider. Subclasses set `kind` and `Settings` and implement `complete`."""

    kind: ClassVar[str]
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.settings = settings

    async def start(self) -> None:
        """Open pools or load weights; called once when the gateway starts."""

    async def close(self) -> None:
        """Release what `start` opened."""

    @abstractmethod
    async def complete(self, request: ModelRequest) -> dict[str, Any]:
        """Answer with an OpenAI `chat.completion` dict, or raise an `errors.HTTPError`."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        """Yield `chat.completion.chunk` dicts. Default: one answer from `complete`, as chunks."""
        completion = await self.complete(request)
        for chunk in completion_to_chunks(completion):
            yield chunk


def rejection(
    provider: str,
    resp: Any,
    raw: bytes,
    message_of: Callable[[Any], str | None],
    scrub: Callable[[str], str],
) -> HTTPError:
    """The error for an upstream HTTP error answer (`resp`: an `http1.Response`): our credentials
    refused (401/403) is a 502 without the provider's text; another 4xx keeps its status
    (`UpstreamRejected`); the rest is `UpstreamError`. `message_of` reads the provider's error
    JSON, `scrub` removes the provider key from what is kept; `Retry-After` is carried along."""
    status = resp.status
    if status in (401, 403):
        return UpstreamError(
            f"provider {provider!r} rejected the gateway's credentials (HTTP {status})",
            upstream_status=status,
        )
    try:
        message = message_of(orjson.loads(raw))
    except orjson.JSONDecodeError:
        message = None
    message = scrub(message or raw[:300].decode("utf-8", errors="replace"))
    text = f"provider {provider!r} answered HTTP {status}: {message}"
    wait = retry_after(resp.headers)
    if 400 <= status < 500:
        return UpstreamRejected(status, text, retry_after=wait)
    return UpstreamError(text, upstream_status=status, retry_after=wait)
