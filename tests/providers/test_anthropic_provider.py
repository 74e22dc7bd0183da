"""The `anthropic` provider: a real gateway whose provider points at the fake upstream's
`/v1/messages`, used through the official `openai` SDK (and once through the `anthropic` SDK,
Anthropic on both sides)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from tests.conftest import serve, write_workspace
from veteran.errors import StreamInterrupted, UpstreamError, UpstreamRejected, VeteranError
from veteran.protocols.anthropic import ChunkDecoder
from veteran.providers.anthropic import AnthropicProvider, AnthropicSettings
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread

KEY = "sk-ant-test-secret-42"
CONFIG = """
[providers.claude]
kind = "anthropic"
base_url = "{root}"
api_key_env = "VETERAN_TEST_ANTHROPIC_KEY"
default_max_tokens = 64
read_timeout = 1
[providers.claude.models.claude-x]
input_per_mtok = 3.0
output_per_mtok = 15.0
"""
TOOLS: list[ChatCompletionToolParam] = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def server(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    monkeypatch.setenv("VETERAN_TEST_ANTHROPIC_KEY", KEY)
    ws = write_workspace(tmp_path / "ws", CONFIG.format(root=upstream.root_url))
    with serve(ws) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0,
                       timeout=20) as c:
        yield c


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=20) as c:
        yield c


def stored(http: httpx.Client, trajectory_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/trajectories/{trajectory_id}")
    assert response.status_code == 200, response.text
    assert KEY not in response.text
    return dict(response.json())


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_plain_call_is_translated_both_ways(
    client: openai.OpenAI, http: httpx.Client, upstream: FakeUpstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude/claude-x", temperature=0.2,
        messages=[{"role": "system", "content": "Be brief."}, *user("hello there")],
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.id.startswith("msg_fake_")
    sent, headers = upstream.requests[-1], upstream.headers[-1]
    assert sent == {
        "model": "claude-x", "max_tokens": 64, "system": "Be brief.", "temperature": 0.2,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
    }
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    t = stored(http, raw.headers["x-veteran-trajectory-id"])
    assert (t["status"], t["provider"], t["model"]) == ("ok", "claude", "claude-x")
    assert t["request"]["messages"][0] == {"role": "system", "content": "Be brief."}
    usage = answer.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert t["usage"]["completion_tokens"] == usage.completion_tokens == 3
    assert t["cost"] == pytest.approx((usage.prompt_tokens * 3 + 3 * 15) / 1e6)


def test_streamed_call(client: openai.OpenAI, http: httpx.Client, upstream: FakeUpstream) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="claude/claude-x", messages=user("one two three"), stream=True, max_tokens=50,
        stream_options={"include_usage": True},
    ) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        chunks = list(response.parse())
    assert upstream.requests[-1]["stream"] is True
    assert upstream.requests[-1]["max_tokens"] == 50
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    t = stored(http, trajectory_id)
    assert (t["status"], t["stream"]) == ("ok", True)
    assert t["response"]["choices"][0]["message"]["content"] == text
    assert t["usage"] == chunks[-1].usage.model_dump(exclude_none=True)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_and_result(
    client: openai.OpenAI, upstream: FakeUpstream, stream: bool
) -> None:
    if stream:
        with client.chat.completions.stream(
            model="claude/claude-x", messages=user("weather?"), tools=TOOLS,
        ) as s:
            answer = s.get_final_completion()
    else:
        answer = client.chat.completions.create(model="claude/claude-x",
                                                messages=user("weather?"), tools=TOOLS,
                                                tool_choice="required")
        assert upstream.requests[-1]["tool_choice"] == {"type": "any"}
    assert upstream.requests[-1]["tools"] == [{
        "name": "get_weather", "description": "Weather in a city",
        "input_schema": TOOLS[0]["function"]["parameters"]}]  # type: ignore[typeddict-item]
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.id == "toolu_fake_1"
    assert (call.function.name, call.function.arguments) == ("get_weather", "{}")  # type: ignore[union-attr]

    again = client.chat.completions.create(
        model="claude/claude-x", tools=TOOLS, tool_choice="none",
        messages=[*user("weather?"), choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
                  {"role": "tool", "tool_call_id": call.id, "content": "sunny"}],
    )
    assert again.choices[0].finish_reason == "stop"
    assert upstream.requests[-1]["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_fake_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_fake_1", "content": "sunny"}]},
    ]


def test_stop_sequences_and_max_tokens(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="claude/claude-x", stop=["END"],
                                            messages=user("a END b"))
    assert (answer.choices[0].message.content, answer.choices[0].finish_reason) == (
        "echo: a ", "stop")
    answer = client.chat.completions.create(model="claude/claude-x", max_tokens=2,
                                            messages=user("a b c d"))
    assert (answer.choices[0].message.content, answer.choices[0].finish_reason) == (
        "echo: a ", "length")


def test_anthropic_on_both_sides_keeps_the_stop_sequence(server: ServerThread) -> None:
    with anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0) as sdk:
        message = sdk.messages.create(model="claude/claude-x", max_tokens=20,
                                      stop_sequences=["END"], messages=user("a END b"))
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
        with sdk.messages.stream(model="claude/claude-x", max_tokens=20,
                                 stop_sequences=["END"], messages=user("a END b")) as stream:
            final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "END")
    assert final.content[0].text == "echo: a "  # type: ignore[union-attr]


FAILURES = [
    ("status=400", openai.BadRequestError, 400),
    ("status=429", openai.RateLimitError, 429),
    ("status=401", openai.InternalServerError, 502),
    ("status=500", openai.InternalServerError, 502),
    ("status=529", openai.InternalServerError, 502),
    ("delay=1500", openai.InternalServerError, 504),
]


# a bad event after a stream started is an interrupted stream (test below)
@pytest.mark.parametrize(("fault", "error", "status", "stream"), [
    *[(*f, False) for f in FAILURES], ("badjson", openai.InternalServerError, 502, False),
    *[(*f, True) for f in FAILURES],
])
def test_upstream_failures_are_mapped(
    client: openai.OpenAI, http: httpx.Client, fault: str, error: type[openai.APIStatusError],
    status: int, stream: bool,
) -> None:
    with pytest.raises(error) as caught:
        client.chat.completions.create(model="claude/claude-x", stream=stream,
                                       messages=user(f"fault:{fault} x"))
    assert caught.value.status_code == status
    assert KEY not in str(caught.value.body)
    t = stored(http, caught.value.response.headers["x-veteran-trajectory-id"])
    assert t["status"] == "error"


@pytest.mark.parametrize("fault", ["cut=2", "badjson"])
def test_broken_stream_ends_with_an_error_event(
    client: openai.OpenAI, http: httpx.Client, fault: str
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="claude/claude-x", stream=True, messages=user(f"fault:{fault} x"),
    ) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        with pytest.raises(openai.APIError):
            list(response.parse())
    t = stored(http, trajectory_id)
    assert t["status"] == "incomplete"


@pytest.mark.parametrize("fault", ["nodone", "split", "crlf,split"])
def test_stream_framing_faults_still_decode(
    client: openai.OpenAI, http: httpx.Client, fault: str
) -> None:
    """Without `message_stop` the answer is still complete after `message_delta`."""
    stream = client.chat.completions.create(model="claude/claude-x", stream=True,
                                            messages=user(f"fault:{fault} a b"))
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"echo: fault:{fault} a b"
    listed = http.get("/v1/trajectories", params={"limit": 1}).json()["data"]
    assert listed[0]["status"] == "ok"


@pytest.mark.parametrize(("fields", "param"), [
    ({"n": 2}, "n"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"),
])
def test_requests_anthropic_cannot_serve_are_refused(
    client: openai.OpenAI, upstream: FakeUpstream, fields: dict[str, Any], param: str
) -> None:
    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude/claude-x", messages=user("x"),
                                       **fields)
    body: Any = caught.value.body
    assert (body["param"], body["code"]) == (param, "unsupported")
    assert len(upstream.requests) == before


def test_key_is_scrubbed_from_upstream_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", KEY)
    provider = AnthropicProvider("claude", AnthropicSettings(
        kind="anthropic", base_url="http://127.0.0.1:1", api_key_env="ANTHROPIC_TEST_KEY"))

    async def main() -> None:
        await provider.start()
        try:
            resp: Any = SimpleNamespace(status=400, headers=[])
            body = b'{"type": "error", "error": {"type": "x", "message": "bad key ' + (
                KEY.encode() + b'"}}')
            error = provider._rejection(resp, body)
            assert isinstance(error, UpstreamRejected)
            assert KEY not in error.message and "***" in error.message
            resp = SimpleNamespace(status=401, headers=[])
            error = provider._rejection(resp, body)
            assert isinstance(error, UpstreamError) and KEY not in error.message
            with pytest.raises(StreamInterrupted) as caught:
                provider._chunks(ChunkDecoder(), "error",
                                 '{"type": "error", "error": {"message": "oops ' + KEY + '"}}')
            assert KEY not in caught.value.message
        finally:
            await provider.close()

    asyncio.run(main())


def test_missing_key_variable_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    provider = AnthropicProvider("claude", AnthropicSettings(
        kind="anthropic", api_key_env="NOT_SET_KEY"))
    assert provider.config.base_url == "https://api.anthropic.com"
    with pytest.raises(VeteranError, match="NOT_SET_KEY"):
        asyncio.run(provider.start())
