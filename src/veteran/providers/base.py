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

import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

# The settings every provider shares live with the rest of the config (which must not import
# this room); a plugin finds them here, beside the class it subclasses.
from veteran.config import BreakerSettings, ModelInfo, ProviderSettings, RetrySettings
from veteran.errors import HTTPError, UpstreamError, UpstreamRejected, VeteranError
from veteran.http import Timeouts, retry_after
from veteran.protocols.shapes import completion_to_chunks

__all__ = [
    "BreakerSettings",
    "ModelInfo",
    "ModelRequest",
    "Provider",
    "ProviderSettings",
    "RetrySettings",
    "rejection",
]


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

    def check(self) -> None:
        """Cheap checks of what `start` needs (an API key's environment variable): run for every
        provider before any starts, so a mistake is reported before a model loads."""

    async def start(self) -> None:
        """Open pools or load weights; called once, when the gateway starts or on first use."""

    def adopt(self, settings: ProviderSettings) -> bool:
        """Take changed `settings` in place on a live config reload, keeping what is loaded:
        True when done. False (the default): the gateway starts a new provider instead."""
        return False

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


def api_key(provider: str, env: str | None) -> str | None:
    """The API key in the environment variable `env` (None when no variable is named); a
    `VeteranError` naming the provider and the variable when it is not set."""
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise VeteranError(f"provider {provider!r}: environment variable {env} is not set")
    return key


def rejection(
    provider: str,
    resp: Any,
    raw: bytes,
    message_of: Callable[[Any], str | None],
    scrub: Callable[[str], str],
) -> HTTPError:
    """The error for an upstream HTTP error answer (`resp`: an `http.Response`): our credentials
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
