"""Anthropic Messages <-> OpenAI chat completions: each translation, both directions."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from veteran.errors import (
    BadRequest,
    HTTPError,
    NotFound,
    StreamInterrupted,
    Unsupported,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from veteran.gateway.assemble import StreamAssembler
from veteran.protocols import shapes
from veteran.protocols.anthropic import (
    ChunkDecoder,
    MessageStreamRenderer,
    error_body,
    to_anthropic_message,
    to_anthropic_request,
    to_openai_completion,
    to_openai_request,
)
from veteran.providers.sse import SSEDecoder

TOOL = {"name": "get_weather", "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
OPENAI_TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": TOOL["input_schema"], "description": "Weather in a city"}}


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
            **fields}


def events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    decoder = SSEDecoder()
    return [(e.event, orjson.loads(e.data)) for e in [*decoder.feed(raw), *decoder.close()]]


# --- inbound: Anthropic request -> OpenAI body ---------------------------------------------


def test_full_request_is_translated() -> None:
    body = request(
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.",
                                                        "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "text", "text": "rain"}, {"type": "text", "text": "5C"}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom",
                 "is_error": True},
                {"type": "text", "text": "thanks"},
            ]},
        ],
        tools=[TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        stop_sequences=["END"], temperature=0.5, top_p=0.9, top_k=40, stream=True,
        metadata={"user_id": "u1"}, thinking={"type": "disabled"},
        veteran_tags={"team": "a"},
    )
    original = copy.deepcopy(body)
    out = to_openai_request(body)
    assert body == original  # the input is not changed
    assert out == {
        "model": "m", "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "Be brief.\n\nBe kind."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "rain\n5C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [OPENAI_TOOL], "tool_choice": "auto", "parallel_tool_calls": False,
        "stop": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stream": True,
        "veteran_tags": {"team": "a"},
    }


def test_output_config_and_vendor_hints() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    out = to_openai_request(request(
        output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
        cache_control={"type": "ephemeral"}, inference_geo="us", speed="fast",
        service_tier="auto", diagnostics={"previous_message_id": None}, workspace_id="w",
        tools=[{**TOOL, "strict": True}],
    ))
    assert out["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}
    assert out["reasoning_effort"] == "low"
    assert out["tools"][0]["function"]["strict"] is True
    for hint in ("cache_control", "inference_geo", "speed", "service_tier", "workspace_id"):
        assert hint not in out
    back = to_anthropic_request(out, "c", 4096)
    assert back["output_config"] == {"format": {"type": "json_schema", "schema": schema},
                                     "effort": "low"}
    assert back["tools"][0]["strict"] is True


def test_no_tools_means_no_tool_choice() -> None:
    for body in (request(tools=[], tool_choice={"type": "auto"}),
                 request(tool_choice={"type": "none"})):
        out = to_openai_request(body)
        assert "tools" not in out and "tool_choice" not in out


def test_tool_only_assistant_turn_has_null_content() -> None:
    out = to_openai_request(request(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
    ]))
    assert out["messages"][1]["content"] is None
    assert out["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": ""}
    assert len(out["messages"]) == 3  # no empty user message after the tool results


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"),
    ({"type": "any"}, "required"),
    ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"},
     {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    out = to_openai_request(request(tools=[TOOL], tool_choice=choice))
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


@pytest.mark.parametrize(("fields", "param"), [
    ({"model": None}, "model"),
    ({"model": ""}, "model"),
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 1_000_001}, "max_tokens"),
    ({"max_tokens": "10"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": ["hi"]}, "messages[0]"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
     "messages[0].content[0].text"),
    ({"messages": [{"role": "user", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": "{}"}]}]},
     "messages[0].content[0].input"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/tiff",
                                     "data": "x"}}]}]},
     "messages[0].content[0].source.media_type"),
    ({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "content": "x"}]}]}, "messages[0].content[0].tool_use_id"),
    ({"system": 5}, "system"),
    ({"system": [{"type": "image"}]}, "system[0]"),
    ({"temperature": 1.5}, "temperature"),
    ({"top_p": "high"}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
    ({"stream": "yes"}, "stream"),
    ({"tools": {"name": "x"}}, "tools"),
    ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
    ({"tools": [{"name": "x"}]}, "tools[0].input_schema"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({"tools": [TOOL], "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"tool_choice": {"type": "any"}}, "tool_choice"),
    ({"metadata": "x"}, "metadata"),
    ({"output_config": {"format": {"type": "json_object"}}}, "output_config.format"),
    ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format.schema"),
    ({"output_config": {"effort": 3}}, "output_config.effort"),
])
def test_bad_requests_name_the_field(fields: dict[str, Any], param: str) -> None:
    body = request(**fields)
    with pytest.raises(BadRequest) as caught:
        to_openai_request({k: v for k, v in body.items() if v is not None})
    assert caught.value.param == param
    assert caught.value.status == 400
    assert not isinstance(caught.value, Unsupported)


@pytest.mark.parametrize(("fields", "param"), [
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
    ({"container": "cntr_1"}, "container"),
    ({"frequency_penalty": 1}, "frequency_penalty"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "data": "x"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
        "content": [{"type": "image", "source": {}}]}]}]},
     "messages[0].content[0].content[0]"),
])
def test_untranslatable_requests_are_refused(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(Unsupported) as caught:
        to_openai_request(request(**fields))
    assert caught.value.param == param


# --- outbound: OpenAI answer -> Anthropic message ------------------------------------------


def test_completion_becomes_a_message() -> None:
    completion = shapes.completion(model="gpt-x", content="Checking.", finish_reason="tool_calls",
                                   prompt_tokens=12, completion_tokens=7, id="chatcmpl-abc",
                                   tool_calls=[{"id": "call_1", "type": "function", "function": {
                                       "name": "get_weather", "arguments": '{"city": "Oslo"}'}}])
    assert to_anthropic_message(completion, []) == {
        "id": "msg_abc", "type": "message", "role": "assistant", "model": "gpt-x",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather",
             "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 7},
    }


@pytest.mark.parametrize(("finish", "reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"), (None, "end_turn"),
])
def test_stop_reasons(finish: str | None, reason: str) -> None:
    completion = shapes.completion(model="m", content="x")
    completion["choices"][0]["finish_reason"] = finish
    message = to_anthropic_message(completion, ["END"])
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, None)


def test_matched_stop_sequence_is_reported_when_known() -> None:
    completion = shapes.completion(model="m", content="one two")
    completion["choices"][0]["stop_reason"] = "END"  # vLLM's (and the anthropic provider's)
    assert to_anthropic_message(completion, ["END"])["stop_reason"] == "stop_sequence"
    assert to_anthropic_message(completion, ["END"])["stop_sequence"] == "END"
    assert to_anthropic_message(completion, ["OTHER"])["stop_reason"] == "end_turn"


def test_tool_arguments_that_are_not_an_object_are_an_upstream_error() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2"}}
    completion = shapes.completion(model="m", content=None, tool_calls=[call])
    with pytest.raises(UpstreamError, match="not a JSON object"):
        to_anthropic_message(completion, [])


@pytest.mark.parametrize(("exc", "status", "kind"), [
    (BadRequest("bad"), 400, "invalid_request_error"),
    (NotFound("no"), 404, "not_found_error"),
    (UpstreamRejected(429, "slow down"), 429, "rate_limit_error"),
    (UpstreamRejected(422, "no"), 422, "invalid_request_error"),
    (UpstreamError("down"), 502, "api_error"),
    (UpstreamTimeout("late"), 504, "api_error"),
])
def test_error_bodies(exc: HTTPError, status: int, kind: str) -> None:
    assert exc.status == status
    assert error_body(exc) == {"type": "error", "error": {"type": kind, "message": exc.message}}


def test_stream_renders_the_anthropic_event_sequence() -> None:
    head = {"id": "chatcmpl-s1", "model": "gpt-x", "created": 1}
    chunks = [
        shapes.chunk(**head, delta={"role": "assistant", "content": ""}),
        shapes.chunk(**head, delta={"content": "Hello"}),
        shapes.chunk(**head, delta={"content": " there"}),
        shapes.chunk(**head, delta={"tool_calls": [{"index": 0, "id": "call_1",
            "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        shapes.chunk(**head, delta={"tool_calls": [
            {"index": 0, "function": {"arguments": '{"city":'}}]}),
        shapes.chunk(**head, delta={"tool_calls": [
            {"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        shapes.chunk(**head, finish_reason="tool_calls"),
        shapes.chunk(**head, usage_=shapes.usage(9, 4)),
    ]
    renderer = MessageStreamRenderer()
    raw = b"".join(renderer.chunk(c) for c in chunks) + renderer.done()
    assert raw.startswith(b"event: message_start\ndata: {")
    assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    got = events(raw)
    assert [name for name, _ in got] == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "message_delta", "message_stop",
    ]
    assert all(data["type"] == name for name, data in got)
    start = got[0][1]["message"]
    assert (start["id"], start["model"], start["content"]) == ("msg_s1", "gpt-x", [])
    assert got[1][1] == {"type": "content_block_start", "index": 0,
                         "content_block": {"type": "text", "text": ""}}
    assert got[2][1]["delta"] == {"type": "text_delta", "text": "Hello"}
    assert got[5][1] == {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}}
    assert got[6][1] == {"type": "content_block_delta", "index": 1,
                         "delta": {"type": "input_json_delta", "partial_json": '{"city":'}}
    assert got[8][1] == {"type": "content_block_stop", "index": 1}
    assert got[9][1] == {"type": "message_delta",
                         "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                         "usage": {"input_tokens": 9, "output_tokens": 4}}


def test_stream_error_event_and_empty_stream() -> None:
    renderer = MessageStreamRenderer()
    renderer.chunk(shapes.chunk(id="c", model="m", created=1, delta={"content": "par"}))
    assert renderer.error(StreamInterrupted("cut")) == (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"cut"}}\n\n'
    )
    empty = events(MessageStreamRenderer().done())
    assert [name for name, _ in empty] == ["message_start", "message_delta", "message_stop"]


def test_stream_reports_a_matched_stop_sequence() -> None:
    renderer = MessageStreamRenderer(["END"])
    chunk = shapes.chunk(id="c", model="m", created=1, finish_reason="stop")
    chunk["choices"][0]["stop_reason"] = "END"
    renderer.chunk(chunk)
    delta = events(renderer.done())[-2][1]["delta"]
    assert delta == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


# --- the reverse pair, for the anthropic provider -------------------------------------------


def test_openai_body_becomes_an_anthropic_request() -> None:
    body = {
        "model": "up/claude", "temperature": 0.2, "stop": "END", "user": "u1",
        "stream_options": {"include_usage": True}, "seed": 3,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
            {"role": "tool", "tool_call_id": "call_2", "content": "sun"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [OPENAI_TOOL], "tool_choice": "required", "parallel_tool_calls": False,
    }
    assert to_anthropic_request(body, "claude", 4096) == {
        "model": "claude", "max_tokens": 4096, "system": "Be brief.\n\nBe kind.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather",
                 "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather",
                 "input": {"city": "Rome"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "rain"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "sun"},
                {"type": "text", "text": "thanks"}]},
        ],
        "temperature": 0.2, "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
        "tools": [TOOL], "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }


def test_request_max_tokens_wins_over_the_default() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10}
    assert to_anthropic_request(body, "c", 4096)["max_tokens"] == 10
    body = {**body, "max_completion_tokens": 20}
    assert to_anthropic_request(body, "c", 4096)["max_tokens"] == 20


@pytest.mark.parametrize(("fields", "param"), [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"logit_bias": {"1": 2}}, "logit_bias"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "function", "content": "x", "name": "f"}]}, "messages[0].role"),
])
def test_openai_features_anthropic_lacks_are_refused(fields: dict[str, Any], param: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
    with pytest.raises(Unsupported) as caught:
        to_anthropic_request(body, "c", 4096)
    assert caught.value.param == param


def test_bad_tool_arguments_in_history_are_a_bad_request() -> None:
    body = {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}
    with pytest.raises(BadRequest) as caught:
        to_anthropic_request(body, "c", 4096)
    assert caught.value.param == "messages[0].tool_calls[0].function.arguments"


def test_anthropic_message_becomes_a_completion() -> None:
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3,
                  "cache_creation_input_tokens": 2},
    }
    out = to_openai_completion(message)
    assert out["id"] == "msg_1" and out["model"] == "claude"
    assert out["object"] == "chat.completion"
    assert out["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "tool_calls",
                               "message": {"role": "assistant", "content": "Checking.",
                                           "tool_calls": [{"id": "toolu_1", "type": "function",
                                                           "function": {
                                                               "name": "get_weather",
                                                               "arguments": '{"city":"Oslo"}'}}]}}]
    assert out["usage"] == {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20,
                            "prompt_tokens_details": {"cached_tokens": 3}}


@pytest.mark.parametrize(("reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
    ("model_context_window_exceeded", "length"),
])
def test_finish_reasons(reason: str, finish: str) -> None:
    message = {"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": reason,
               "stop_sequence": "END" if reason == "stop_sequence" else None, "usage": {}}
    choice = to_openai_completion(message)["choices"][0]
    assert choice["finish_reason"] == finish
    assert choice.get("stop_reason") == ("END" if reason == "stop_sequence" else None)


ANTHROPIC_STREAM: list[tuple[str, dict[str, Any]]] = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_9", "type": "message", "role": "assistant", "model": "claude",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": '{"a":1}'}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 6}}),
    ("message_stop", {"type": "message_stop"}),
]


def test_anthropic_events_become_chunks() -> None:
    decoder = ChunkDecoder()
    chunks = [c for name, data in ANTHROPIC_STREAM for c in decoder.event(name, data)]
    assert decoder.finished and decoder.stopped
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 6,
                                   "total_tokens": 17}
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    completion = assembler.completion()
    assert completion["id"] == "msg_9" and completion["model"] == "claude"
    assert completion["choices"][0] == {
        "index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": "Hi", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"a":1}'}}]},
    }


def test_error_event_interrupts_the_stream() -> None:
    decoder = ChunkDecoder()
    decoder.event("message_start", ANTHROPIC_STREAM[0][1])
    assert not decoder.finished
    with pytest.raises(StreamInterrupted, match="Overloaded"):
        decoder.event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                           "message": "Overloaded"}})


def test_round_trip_through_both_directions() -> None:
    """Anthropic request -> OpenAI -> Anthropic keeps what both formats can say, and an
    Anthropic stream -> OpenAI chunks -> Anthropic stream keeps the content and stop reason."""
    original = request(
        system="Be brief.", stop_sequences=["END"], temperature=0.3,
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "rain"}]},
        ],
        tools=[TOOL], tool_choice={"type": "tool", "name": "get_weather"},
    )
    back = to_anthropic_request(to_openai_request(original), "m", 4096)
    assert back["system"] == "Be brief."
    assert back["tools"] == [TOOL]
    assert back["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert back["messages"][0] == {"role": "user",
                                   "content": [{"type": "text", "text": "weather?"}]}
    assert back["messages"][1:] == original["messages"][1:]
    assert (back["stop_sequences"], back["temperature"]) == (["END"], 0.3)

    decoder = ChunkDecoder()
    renderer = MessageStreamRenderer()
    raw = b"".join(renderer.chunk(c) for name, data in ANTHROPIC_STREAM
                   for c in decoder.event(name, data)) + renderer.done()
    got = events(raw)
    # pings and the empty first input_json_delta carry nothing, so they are not re-sent
    expected = [d for n, d in ANTHROPIC_STREAM
                if n != "ping" and d.get("delta", {}).get("partial_json") != ""]
    assert [data["type"] for _, data in got] == [d["type"] for d in expected]
    assert [d for _, d in got][1:-2] == expected[1:-2]  # the blocks, exactly
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert got[-2][1]["usage"] == {"input_tokens": 11, "output_tokens": 6}


def test_public_names_are_exported() -> None:
    import veteran.protocols.anthropic as module

    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name
