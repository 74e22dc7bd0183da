"""The fake upstream against real clients on loopback: the official SDK and raw aiohttp."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionToolParam

from veteran.testing.fake_upstream import FakeUpstream, Fault

TOOLS: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def client(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.url, api_key="x", max_retries=0) as sdk:
        yield sdk


@dataclass
class Raw:
    """What a raw aiohttp client saw: status, headers, HTTP body pieces, and any read error."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    pieces: list[bytes] = field(default_factory=list)
    error: Exception | None = None

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)

    def events(self) -> list[str]:
        """The SSE `data:` payloads, in order."""
        text = self.body.decode().replace("\r\n", "\n")
        return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Raw:
    async def go() -> Raw:
        raw = Raw()
        async with (
            aiohttp.ClientSession() as session,
            session.post(url + "/chat/completions", json=body, headers=headers) as resp,
        ):
            raw.status, raw.headers = resp.status, dict(resp.headers)
            try:
                async for data, _ in resp.content.iter_chunks():
                    raw.pieces.append(data)
            except aiohttp.ClientPayloadError as exc:
                raw.error = exc
        return raw

    return asyncio.run(go())


def chat(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": content}], **extra}


def test_plain_completion(fake: FakeUpstream, client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi you"}],
        extra_body={"veteran_tags": {"a": "b"}},
    )
    assert answer.choices[0].message.content == "echo: hi you"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 3
    sent = fake.requests[-1]
    assert sent["model"] == "fake-model"
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["veteran_tags"] == {"a": "b"}


def test_streamed_completion_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_stream_without_usage_ends_with_done(fake: FakeUpstream) -> None:
    raw = post(fake.url, chat(stream=True))
    assert raw.status == 200 and raw.headers["Content-Type"] == "text/event-stream"
    events = raw.events()
    assert events[-1] == "[DONE]"
    assert all(orjson.loads(e)["choices"] for e in events[:-1])


def test_tool_call(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="fake-model", messages=[], tools=TOOLS)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather" and call.function.arguments == "{}"


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            assert delta.function is not None
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert calls == {0: {"name": "get_weather", "arguments": "{}"}}
    assert finish == "tool_calls"


def test_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["fake-model"]


@pytest.mark.parametrize("how", ["header", "message"])
def test_status_fault(fake: FakeUpstream, how: str) -> None:
    if how == "header":
        raw = post(fake.url, chat(), {"x-fake-fault": "status=503"})
    else:
        raw = post(fake.url, chat("fault:status=503 please", stream=True))
    assert raw.status == 503
    assert orjson.loads(raw.body)["error"]["code"] == "fake_503"


def test_status_fault_in_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "fault:status=429"}]
        )


def test_server_wide_fault_and_header_override() -> None:
    with FakeUpstream(fault="status=500") as fake:
        assert post(fake.url, chat()).status == 500
        assert post(fake.url, chat(), {"x-fake-fault": ""}).status == 200


def test_delay_fault(fake: FakeUpstream) -> None:
    started = time.perf_counter()
    raw = post(fake.url, chat(), {"x-fake-fault": "delay=150"})
    assert raw.status == 200 and time.perf_counter() - started >= 0.15


def test_cut_fault_ends_the_body_abruptly(fake: FakeUpstream) -> None:
    raw = post(fake.url, chat("a b c d", stream=True), {"x-fake-fault": "cut=2"})
    assert raw.status == 200
    assert isinstance(raw.error, aiohttp.ClientPayloadError)
    deltas = [orjson.loads(e)["choices"][0]["delta"] for e in raw.events()]
    assert deltas[1:] == [{"content": "echo: "}, {"content": "a "}]


def test_cut_fault_in_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "fault:cut=1"}], stream=True
    )
    # openai 3 wraps the cut in an APIError; openai 2 (what verifiers pins) lets httpx's through
    with pytest.raises((openai.APIError, httpx.RemoteProtocolError)):
        list(stream)


def test_nodone_fault(fake: FakeUpstream) -> None:
    raw = post(fake.url, chat(stream=True), {"x-fake-fault": "nodone"})
    events = raw.events()
    assert raw.error is None and "[DONE]" not in events
    assert orjson.loads(events[-1])["choices"][0]["finish_reason"] == "stop"


def test_crlf_fault(fake: FakeUpstream) -> None:
    raw = post(fake.url, chat(stream=True), {"x-fake-fault": "crlf"})
    assert b": keep-alive\r\n" in raw.body and b"\n\n" not in raw.body.replace(b"\r\n", b"")
    assert raw.body.endswith(b"data: [DONE]\r\n\r\n")


def test_split_fault(fake: FakeUpstream, client: openai.OpenAI) -> None:
    raw = post(fake.url, chat(stream=True), {"x-fake-fault": "split,crlf"})
    assert len(raw.pieces) > 20 and max(len(p) for p in raw.pieces) <= 7
    assert raw.events()[-1] == "[DONE]"
    whole = post(fake.url, chat(), {"x-fake-fault": "split"})
    assert orjson.loads(whole.body)["choices"][0]["message"]["content"] == "echo: hello"
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "fault:split é"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "echo: fault:split é"


def test_badjson_fault(fake: FakeUpstream) -> None:
    raw = post(fake.url, chat(), {"x-fake-fault": "badjson"})
    assert raw.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw.body)
    events = post(fake.url, chat(stream=True), {"x-fake-fault": "badjson"}).events()
    with pytest.raises(orjson.JSONDecodeError):
        [orjson.loads(e) for e in events[:-1]]


def test_unknown_fault_and_bad_body(fake: FakeUpstream) -> None:
    assert post(fake.url, chat(), {"x-fake-fault": "explode"}).status == 400
    with pytest.raises(ValueError, match="unknown"):
        Fault.parse("nodone=1")
    assert Fault.parse("delay=5, split") == Fault(delay_ms=5.0, split=True)


def test_requests_are_capped() -> None:
    with FakeUpstream() as fake:
        fake.app.max_requests = 3
        for i in range(5):
            post(fake.url, chat(str(i)))
        assert [r["messages"][0]["content"] for r in fake.requests] == ["2", "3", "4"]


def test_main_serves_in_the_foreground() -> None:
    command = [sys.executable, "-m", "veteran.testing.fake_upstream", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[-1]
            assert post(url, chat()).status == 200
        finally:
            process.terminate()
            process.wait(timeout=10)
