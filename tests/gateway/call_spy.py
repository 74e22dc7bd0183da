"""A spy on the one call path: counts `Gateway.call` / `Gateway.call_stream`, and checks that
every model call a provider receives happens inside one of them."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from veteran.gateway import AnswerCache, AnswerStream, Call, Gateway
from veteran.gateway.call import Answer
from veteran.providers.base import ModelRequest, Provider
from veteran.providers.registry import provider_class

_inside = contextvars.ContextVar("inside_call_path", default=False)


@dataclass
class CallSpy:
    calls: list[Call] = field(default_factory=list)  # every call that took the path
    model_calls: int = 0  # what the providers received
    outside: int = 0  # provider calls that did not come through the path

    @property
    def trajectory_ids(self) -> list[str]:
        return [c.record.id for c in self.calls]


@contextmanager
def spy_on_calls(monkeypatch: pytest.MonkeyPatch, kinds: tuple[str, ...] = ("mock", "openai")
                 ) -> Iterator[CallSpy]:
    spy = CallSpy()
    call, call_stream = Gateway.call, Gateway.call_stream

    async def spied_call(self: Gateway, c: Call, *, cache: AnswerCache | None = None
                         ) -> Answer:
        spy.calls.append(c)
        token = _inside.set(True)
        try:
            return await call(self, c, cache=cache)
        finally:
            _inside.reset(token)

    async def spied_stream(self: Gateway, c: Call) -> AnswerStream:
        spy.calls.append(c)
        token = _inside.set(True)
        try:
            return await call_stream(self, c)
        finally:
            _inside.reset(token)

    monkeypatch.setattr(Gateway, "call", spied_call)
    monkeypatch.setattr(Gateway, "call_stream", spied_stream)
    for kind in kinds:
        cls = provider_class(kind)
        complete, stream = cls.complete, cls.stream

        async def spied_complete(self: Provider, request: ModelRequest, _c: Any = complete
                                 ) -> dict[str, Any]:
            _count(spy)
            result: dict[str, Any] = await _c(self, request)
            return result

        def spied_provider_stream(self: Provider, request: ModelRequest, _s: Any = stream
                                  ) -> AsyncIterator[dict[str, Any]]:
            _count(spy)
            chunks: AsyncIterator[dict[str, Any]] = _s(self, request)
            return chunks

        monkeypatch.setattr(cls, "complete", spied_complete)
        monkeypatch.setattr(cls, "stream", spied_provider_stream)
    yield spy


def _count(spy: CallSpy) -> None:
    spy.model_calls += 1
    if not _inside.get():
        spy.outside += 1
