"""`POST /v1/messages` through the official `anthropic` SDK, against a real gateway on loopback
in front of the fake (OpenAI) upstream and the mock provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import ToolParam

from veteran.protocols import shapes
from veteran.providers.mock import MockProvider
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread

TOOLS: list[ToolParam] = [{
    "name": "get_weather", "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}]
ASK: list[Any] = [{"role": "user", "content": "my invoice is wrong"}]


@pytest.fixture
def sdk(gateway_server: ServerThread) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=gateway_server.url, api_key="x", max_retries=0, timeout=20
    ) as client:
        yield client


def stored(http: httpx.Client, trajectory_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/trajectories/{trajectory_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def count(http: httpx.Client) -> int:
    return len(http.get("/v1/trajectories", params={"limit": 1000}).json()["data"])


def test_plain_message_is_answered_and_captured(
    sdk: anthropic.Anthropic, http: httpx.Client, upstream: FakeUpstream
) -> None:
    raw = sdk.messages.with_raw_response.create(
        model="triage", max_tokens=100, system="Answer in English.", messages=ASK,
        metadata={"user_id": "u-1"}, extra_body={"temperature": 0.5},
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "echo: my invoice is wrong"  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    # the upstream got an OpenAI body: the function's system prompt, then the request's
    sent = upstream.requests[-1]
    assert sent["model"] == "gpt-x"
    assert sent["messages"] == [
        {"role": "system", "content": "You route support tickets."},
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "my invoice is wrong"},
    ]
    assert (sent["max_tokens"], sent["temperature"]) == (100, 0.5)
    assert "metadata" not in sent
    t = stored(http, raw.headers["x-veteran-trajectory-id"])
    assert (t["status"], t["function"], t["variant"], t["stream"]) == ("ok", "triage", "big", False)
    assert t["request"]["messages"][1:] == sent["messages"][1:]  # stored in the OpenAI shape
    assert t["usage"]["prompt_tokens"] == message.usage.input_tokens > 0
    assert t["usage"]["completion_tokens"] == message.usage.output_tokens > 0
    assert raw.headers["x-veteran-episode-id"]


def test_streamed_message(sdk: anthropic.Anthropic, http: httpx.Client) -> None:
    with sdk.messages.stream(model="triage", max_tokens=100, messages=ASK) as stream:
        trajectory_id = stream.response.headers["x-veteran-trajectory-id"]
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 2 and "".join(pieces) == "echo: my invoice is wrong"
    assert final.content[0].text == "echo: my invoice is wrong"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens == len(pieces)
    t = stored(http, trajectory_id)
    assert (t["status"], t["stream"]) == ("ok", True)
    assert t["response"]["choices"][0]["message"]["content"] == "echo: my invoice is wrong"
    assert t["usage"]["completion_tokens"] == final.usage.output_tokens


def test_raw_stream_is_the_anthropic_event_sequence(http: httpx.Client) -> None:
    body = {"model": "up/gpt-x", "max_tokens": 50, "stream": True, "messages": ASK}
    with http.stream("POST", "/v1/messages", json=body) as response:
        text = response.read().decode()
    names = [line[7:] for line in text.split("\n") if line.startswith("event: ")]
    assert names[0] == "message_start" and names[1] == "content_block_start"
    assert set(names[2:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_tool_use_then_tool_result(
    sdk: anthropic.Anthropic, http: httpx.Client, upstream: FakeUpstream
) -> None:
    first = sdk.messages.create(model="up/gpt-x", max_tokens=100, messages=ASK, tools=TOOLS,
                                tool_choice={"type": "any"})
    assert first.stop_reason == "tool_use"
    [call] = first.content
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {}
    sent = upstream.requests[-1]
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": TOOLS[0]["input_schema"]}}]
    assert sent["tool_choice"] == "required"

    raw = sdk.messages.with_raw_response.create(
        model="up/gpt-x", max_tokens=100, tools=TOOLS, tool_choice={"type": "none"},
        messages=[*ASK, {"role": "assistant", "content": first.content},  # type: ignore[list-item]
                  {"role": "user", "content": [
                      {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}],
    )
    second = raw.parse()
    assert second.stop_reason == "end_turn"
    sent = upstream.requests[-1]
    assert sent["messages"][-2:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    t = stored(http, raw.headers["x-veteran-trajectory-id"])
    assert t["request"]["messages"][-1]["role"] == "tool"


def test_streamed_tool_use(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model="up/gpt-x", max_tokens=100, messages=ASK,
                             tools=TOOLS) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [call] = final.content
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {}


@pytest.fixture
def mock(gateway_server: ServerThread) -> MockProvider:
    provider = gateway_server.gateway.providers["m"]  # type: ignore[attr-defined]
    assert isinstance(provider, MockProvider)
    return provider


def test_stop_reasons_and_usage(sdk: anthropic.Anthropic, mock: MockProvider) -> None:
    cut = shapes.completion(model="mm", content="a long", finish_reason="length",
                            prompt_tokens=9, completion_tokens=2)
    mock.enqueue(cut)
    message = sdk.messages.create(model="m/mm", max_tokens=2, messages=ASK)
    assert message.stop_reason == "max_tokens"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 2)
    assert message.model == "mm"

    matched = shapes.completion(model="mm", content="one two")
    matched["choices"][0]["stop_reason"] = "END"  # the matched stop sequence, vLLM-style
    mock.enqueue(matched)
    message = sdk.messages.create(model="m/mm", max_tokens=20, messages=ASK,
                                  stop_sequences=["END"])
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert mock.requests[-1].body["stop"] == ["END"]
    # streamed: tests/providers/test_anthropic_provider.py (the mock streams no stop_reason)


def test_bad_input_is_a_400_in_anthropic_shape_and_stores_nothing(
    sdk: anthropic.Anthropic, http: httpx.Client
) -> None:
    before = count(http)
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model="triage", max_tokens=0, messages=ASK)
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]

    with pytest.raises(anthropic.BadRequestError, match="messages\\[0\\].role"):
        sdk.messages.create(model="triage", max_tokens=10,
                            messages=[{"role": "system", "content": "x"}])  # type: ignore[typeddict-item]
    for payload in (b"{not json", b"[]", b""):
        response = http.post("/v1/messages", content=payload,
                             headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "invalid_request_error"
    response = http.post("/v1/messages", json={"model": "triage", "messages": ASK})
    assert response.status_code == 400 and "max_tokens" in response.json()["error"]["message"]
    with pytest.raises(anthropic.BadRequestError, match="thinking"):
        sdk.messages.create(model="triage", max_tokens=2000, messages=ASK,
                            thinking={"type": "enabled", "budget_tokens": 1024})
    assert count(http) == before


def test_unknown_model_is_a_404(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        sdk.messages.create(model="nope", max_tokens=10, messages=ASK)
    body: Any = caught.value.body
    assert body["error"]["type"] == "not_found_error" and "nope" in body["error"]["message"]


@pytest.mark.parametrize(("fault", "error", "kind"), [
    ("status=429", anthropic.RateLimitError, "rate_limit_error"),
    ("status=503", anthropic.InternalServerError, "api_error"),
    ("status=400", anthropic.BadRequestError, "invalid_request_error"),
])
def test_upstream_errors_keep_the_anthropic_shape(
    sdk: anthropic.Anthropic, http: httpx.Client, fault: str,
    error: type[anthropic.APIStatusError], kind: str,
) -> None:
    with pytest.raises(error) as caught:
        sdk.messages.create(model="up/gpt-x", max_tokens=10,
                            messages=[{"role": "user", "content": f"fault:{fault} x"}])
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == kind
    trajectory_id = caught.value.response.headers["x-veteran-trajectory-id"]
    assert stored(http, trajectory_id)["status"] == "error"


def test_stream_cut_by_the_upstream_ends_with_an_error_event(
    sdk: anthropic.Anthropic, http: httpx.Client
) -> None:
    pieces: list[str] = []
    with sdk.messages.stream(model="up/gpt-x", max_tokens=50,
                             messages=[{"role": "user", "content": "fault:cut=2 a b c"}]
                             ) as stream:
        trajectory_id = stream.response.headers["x-veteran-trajectory-id"]
        with pytest.raises(anthropic.APIStatusError) as caught:
            for piece in stream.text_stream:
                pieces.append(piece)
    assert "".join(pieces) == "echo: fault:cut=2 "
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert "cut" in body["error"]["message"]
    t = stored(http, trajectory_id)
    assert t["status"] == "incomplete"
    assert t["response"]["choices"][0]["message"]["content"] == "echo: fault:cut=2 "

    body_ = {"model": "up/gpt-x", "max_tokens": 50, "stream": True,
             "messages": [{"role": "user", "content": "fault:cut=1 x"}]}
    with http.stream("POST", "/v1/messages", json=body_) as response:
        text = response.read().decode()
    assert text.rstrip("\n").split("\n\n")[-1].startswith("event: error\ndata: ")
    assert "message_stop" not in text


def test_tags_episode_and_images_pass_through(
    sdk: anthropic.Anthropic, http: httpx.Client, upstream: FakeUpstream
) -> None:
    raw = sdk.messages.with_raw_response.create(
        model="up/gpt-x", max_tokens=10,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}}]}],
        extra_headers={"x-veteran-episode-id": "ep-1", "x-veteran-tags": "team=a"},
        extra_body={"veteran_tags": {"queue": "billing"}},
    )
    assert raw.headers["x-veteran-episode-id"] == "ep-1"
    assert upstream.requests[-1]["messages"][0]["content"][1] == {
        "type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert "veteran_tags" not in upstream.requests[-1]
    t = stored(http, raw.headers["x-veteran-trajectory-id"])
    assert t["tags"] == {"team": "a", "queue": "billing"}
    assert t["episode_id"] == "ep-1"
