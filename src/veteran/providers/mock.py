"""`kind = "mock"`: a scriptable model for tests and demos, in the spirit of llm's MockModel.

Without a script it echoes the last user message (or answers `reply` from its settings).
`rules` (regular expression -> reply, first match on the last user message wins) make it a
scripted stand-in for a stronger model in demos and eval tests; `error_rate` makes that share
of messages (chosen by a hash of the message, so reruns agree) get another rule's reply. Tests
script it: `provider.enqueue("text")`, `provider.enqueue(completion_dict)`, or
`provider.enqueue(SomeHTTPError(...))` to make the next call fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import Field

from veteran.errors import StreamInterrupted
from veteran.protocols import shapes
from veteran.providers.base import ModelRequest, Provider, ProviderSettings

Scripted = str | dict[str, Any] | Exception


class MockSettings(ProviderSettings):
    kind: Literal["mock"]
    reply: str | None = None
    delay_ms: float = Field(default=0.0, ge=0)
    rules: dict[str, str] = Field(default_factory=dict)
    error_rate: float = Field(default=0.0, ge=0, le=1)

    NOT_DECIDING = ProviderSettings.NOT_DECIDING | {"delay_ms"}


class MockProvider(Provider):
    kind = "mock"
    Settings = MockSettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, MockSettings)
        self.config = settings
        self.script: deque[Scripted] = deque()
        self.requests: list[ModelRequest] = []

    def enqueue(self, *items: Scripted) -> None:
        self.script.extend(items)

    def _next(self, request: ModelRequest) -> dict[str, Any]:
        self.requests.append(request)
        item: Scripted = self.script.popleft() if self.script else self._default(request)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, dict):
            return item
        words = _words(request.body)
        return shapes.completion(
            model=request.model, content=item, prompt_tokens=words,
            completion_tokens=len(item.split()),
        )

    def _default(self, request: ModelRequest) -> str:
        last: str | None = None
        for message in reversed(request.body.get("messages", [])):
            if message.get("role") == "user":
                content = message.get("content")
                last = content if isinstance(content, str) else "[parts]"
                break
        if self.config.rules and last is not None:
            replies = list(dict.fromkeys(self.config.rules.values()))
            for pattern, reply in self.config.rules.items():
                if re.search(pattern, last, re.IGNORECASE):
                    digest = hashlib.sha256(last.encode()).digest()
                    if len(replies) > 1 and digest[0] / 256 < self.config.error_rate:
                        others = [r for r in replies if r != reply]
                        return others[digest[1] % len(others)]
                    return reply
        if self.config.reply is not None:
            return self.config.reply
        return f"echo: {last}" if last is not None else "echo"

    async def complete(self, request: ModelRequest) -> dict[str, Any]:
        if self.config.delay_ms:
            await asyncio.sleep(self.config.delay_ms / 1000)
        return self._next(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        """Streams word by word; a scripted `StreamInterrupted` cuts the stream after one word."""
        error = self.script.popleft() if self.script and isinstance(
            self.script[0], StreamInterrupted) else None
        cut = error is not None
        answer = self._next(request) if not cut else shapes.completion(
            model=request.model, content="partial answer")
        message = answer["choices"][0]["message"]
        head = {"id": answer["id"], "model": answer["model"], "created": answer["created"]}
        yield shapes.chunk(**head, delta={"role": "assistant", "content": ""})
        for i, word in enumerate((message.get("content") or "").split(" ")):
            if self.config.delay_ms:
                await asyncio.sleep(self.config.delay_ms / 1000)
            yield shapes.chunk(**head, delta={"content": word if i == 0 else " " + word})
            if isinstance(error, StreamInterrupted):
                raise error
        if message.get("tool_calls"):
            calls = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
            yield shapes.chunk(**head, delta={"tool_calls": calls})
        yield shapes.chunk(**head, finish_reason=answer["choices"][0]["finish_reason"])
        yield shapes.chunk(**head, usage_=answer["usage"])


def _words(body: dict[str, Any]) -> int:
    return sum(
        len(m["content"].split())
        for m in body.get("messages", [])
        if isinstance(m.get("content"), str)
    )
