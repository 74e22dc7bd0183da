"""The fake upstream's `POST /v1/messages` against the official `anthropic` SDK."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from veteran.testing.fake_upstream import FakeUpstream


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def sdk(fake: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.root_url, api_key="k", max_retries=0) as client:
        yield client


def test_plain_stream_and_tool_use(sdk: anthropic.Anthropic, fake: FakeUpstream) -> None:
    message = sdk.messages.create(model="fm", max_tokens=50, system="s",
                                  messages=[{"role": "user", "content": "hi there"}])
    assert message.content[0].text == "echo: hi there"  # type: ignore[union-attr]
    assert (message.stop_reason, message.model, message.usage.output_tokens) == (
        "end_turn", "fm", 3)
    assert fake.requests[-1]["system"] == "s"
    assert fake.headers[-1]["anthropic-version"]
    with sdk.messages.stream(model="fm", max_tokens=50,
                             messages=[{"role": "user", "content": "hi there"}]) as stream:
        assert "".join(stream.text_stream) == "echo: hi there"
        assert stream.get_final_message().stop_reason == "end_turn"
    tools: list[anthropic.types.ToolParam] = [{"name": "t", "input_schema": {"type": "object"}}]
    for streamed in (False, True):
        if streamed:
            with sdk.messages.stream(model="fm", max_tokens=50, tools=tools,
                                     messages=[{"role": "user", "content": "x"}]) as stream:
                message = stream.get_final_message()
        else:
            message = sdk.messages.create(model="fm", max_tokens=50, tools=tools,
                                          messages=[{"role": "user", "content": "x"}])
        assert message.stop_reason == "tool_use"
        assert [(b.type, b.name, b.input) for b in message.content] == [  # type: ignore[union-attr]
            ("tool_use", "t", {})]


def test_max_tokens_and_stop_sequences(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model="fm", max_tokens=2,
                                  messages=[{"role": "user", "content": "a b c"}])
    assert (message.content[0].text, message.stop_reason) == ("echo: a ", "max_tokens")  # type: ignore[union-attr]
    message = sdk.messages.create(model="fm", max_tokens=20, stop_sequences=["X", "c d"],
                                  messages=[{"role": "user", "content": "a b c d"}])
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "c d")
    assert message.content[0].text == "echo: a b "  # type: ignore[union-attr]


def test_faults(sdk: anthropic.Anthropic, fake: FakeUpstream) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk.messages.create(model="fm", max_tokens=5,
                            messages=[{"role": "user", "content": "fault:status=429"}])
    assert caught.value.body == {"type": "error", "error": {
        "type": "rate_limit_error", "message": "fake fault: 429"}}
    body = {"model": "fm", "max_tokens": 20, "stream": True,
            "messages": [{"role": "user", "content": "a b c"}]}
    url = fake.root_url + "/v1/messages"
    headers = {"anthropic-version": "2023-06-01"}
    text = httpx.post(url, json=body, headers={**headers, "x-fake-fault": "nodone"}).text
    assert "message_delta" in text and "message_stop" not in text
    text = httpx.post(url, json=body, headers={**headers, "x-fake-fault": "crlf"}).text
    assert "\r\nevent: message_stop\r\n" in text
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(url, json=body, headers={**headers, "x-fake-fault": "cut=1"})
    response = httpx.post(url, json=body)
    assert response.status_code == 400 and "anthropic-version" in response.text
