"""The openai provider, driven directly against the fake upstream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from veteran.errors import StreamInterrupted, UpstreamError, UpstreamRejected, VeteranError
from veteran.providers.base import ModelRequest
from veteran.providers.openai import OpenAIProvider, OpenAISettings
from veteran.testing.fake_upstream import FakeUpstream


def provider(url: str, **extra: object) -> OpenAIProvider:
    return OpenAIProvider("up", OpenAISettings(kind="openai", base_url=url, **extra))


def body(text: str, **fields: object) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **fields}


def test_complete_and_stream(upstream: FakeUpstream) -> None:
    async def main() -> None:
        p = provider(upstream.url)
        await p.start()
        try:
            answer = await p.complete(ModelRequest("m", body("hi")))
            assert answer["choices"][0]["message"]["content"] == "echo: hi"
            chunks = [c async for c in p.stream(ModelRequest("m", body("hi", stream=True)))]
            text = "".join(c["choices"][0]["delta"].get("content") or ""
                           for c in chunks if c["choices"])
            assert text == "echo: hi"
            assert chunks[-1]["usage"]["total_tokens"] > 0
        finally:
            await p.close()

    asyncio.run(main())


@dataclass
class Answer:
    """What `_rejection` reads of an `http.Response`."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def test_retry_after_is_read_from_the_answer(upstream: FakeUpstream) -> None:
    p = provider(upstream.url)
    seconds = p._rejection(Answer(429, [(b"Retry-After", b"7")]), b"{}")
    assert isinstance(seconds, UpstreamRejected) and seconds.retry_after == 7.0
    assert seconds.type == "rate_limit_error"
    date = p._rejection(
        Answer(503, [(b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")]), b"{}")
    assert isinstance(date, UpstreamError) and date.retry_after == 0.0  # a date in the past
    junk = p._rejection(Answer(503, [(b"retry-after", b"soon")]), b"{}")
    assert isinstance(junk, UpstreamError) and junk.retry_after is None


def test_api_key_is_sent_and_never_echoed(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UP_KEY", "sk-secret-123")

    async def main() -> None:
        p = provider(upstream.url, api_key_env="UP_KEY")
        await p.start()
        try:
            error = p._rejection(
                Answer(400), b'{"error": {"message": "bad key sk-secret-123 here"}}')
            assert isinstance(error, UpstreamRejected)
            assert "sk-secret-123" not in str(error) and "***" in str(error)
            with pytest.raises(StreamInterrupted) as caught:
                p._chunk('{"error": {"message": "oops sk-secret-123"}}')
            assert "sk-secret-123" not in str(caught.value)
            error = p._rejection(
                Answer(401), b'{"error": {"message": "Incorrect API key sk-secret-123"}}')
            assert isinstance(error, UpstreamError) and "sk-secret-123" not in str(error)
        finally:
            await p.close()

    asyncio.run(main())


def test_missing_key_variable_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    p = provider("http://127.0.0.1:1/v1", api_key_env="NOT_SET_KEY")
    with pytest.raises(VeteranError, match="NOT_SET_KEY"):
        asyncio.run(p.start())


def test_stream_cut_raises_interrupted(upstream: FakeUpstream) -> None:
    async def main() -> list[dict[str, object]]:
        p = provider(upstream.url)
        await p.start()
        got = []
        try:
            with pytest.raises(StreamInterrupted):
                async for c in p.stream(ModelRequest("m", body("fault:cut=2 x", stream=True))):
                    got.append(c)
        finally:
            await p.close()
        return got

    assert len(asyncio.run(main())) >= 2
