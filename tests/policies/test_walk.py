"""walk: every text a model sees or says in OpenAI shapes, mapped without touching the input."""

from __future__ import annotations

import copy
from typing import Any

from veteran.policies.walk import map_chunk, map_request, map_response, request_texts


def upper(text: str) -> str:
    return text.upper()


def every_part_request() -> dict[str, Any]:
    return {
        "model": "support",
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": "find a customer",
            "parameters": {"type": "object", "properties": {"email": {"type": "string"}}}}}],
        "messages": [
            {"role": "system", "content": "system text"},
            {"role": "user", "name": "user name", "content": [
                {"type": "text", "text": "part text"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "second part"},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "lookup", "arguments": '{"email": "a@b.c"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "tool result"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "part refusal"}]},
            {"role": "assistant", "content": "answer", "refusal": "message refusal"},
            {"role": "assistant", "content": None,
             "function_call": {"name": "lookup", "arguments": "legacy arguments"}},
            {"role": "tool", "tool_call_id": "call_2",
             "content": [{"type": "text", "text": "tool part"}]},
        ],
    }


EVERY_TEXT = ["system text", "part text", "second part", '{"email": "a@b.c"}', "tool result",
              "part refusal", "answer", "message refusal", "legacy arguments", "tool part"]


def test_request_texts_yields_every_message_text_and_no_tool_definition_or_name() -> None:
    assert list(request_texts(every_part_request())) == EVERY_TEXT


def test_map_request_applies_fn_to_exactly_the_texts_request_texts_yields() -> None:
    seen: list[str] = []

    def record(text: str) -> str:
        seen.append(text)
        return text

    map_request(every_part_request(), record)
    assert seen == list(request_texts(every_part_request()))


def test_map_request_maps_every_part_and_leaves_the_rest() -> None:
    body = every_part_request()
    before = copy.deepcopy(body)
    mapped = map_request(body, upper)

    assert body == before  # the input is untouched
    assert list(request_texts(mapped)) == [t.upper() for t in EVERY_TEXT]
    messages = mapped["messages"]
    assert messages[1]["name"] == "user name"
    assert messages[1]["content"][1] == {"type": "image_url",
                                         "image_url": {"url": "https://example.com/a.png"}}
    assert messages[2]["tool_calls"][0]["function"]["name"] == "lookup"
    assert messages[2]["tool_calls"][0]["id"] == "call_1"
    assert messages[3]["tool_call_id"] == "call_1"
    assert messages[6]["function_call"]["name"] == "lookup"
    assert mapped["tools"] == before["tools"]
    assert mapped["model"] == "support"


def test_map_request_shares_what_it_did_not_change() -> None:
    body = every_part_request()
    mapped = map_request(body, lambda t: t.replace("tool result", "TOOL RESULT"))

    assert mapped is not body and mapped["messages"] is not body["messages"]
    assert mapped["tools"] is body["tools"]
    for i, message in enumerate(mapped["messages"]):
        if i == 3:
            assert message is not body["messages"][3]
            assert message["content"] == "TOOL RESULT"
        else:
            assert message is body["messages"][i]


def test_map_request_copies_only_the_path_to_a_changed_part() -> None:
    body = every_part_request()
    mapped = map_request(body, lambda t: "X" if t == "second part" else t)
    parts, original = mapped["messages"][1]["content"], body["messages"][1]["content"]
    assert parts is not original
    assert parts[0] is original[0] and parts[1] is original[1]
    assert parts[2] == {"type": "text", "text": "X"}
    assert original[2] == {"type": "text", "text": "second part"}


def test_a_request_without_messages_or_with_odd_shapes_passes() -> None:
    assert map_request({"model": "m"}, upper) == {"model": "m"}
    odd = {"messages": ["not a message", {"role": "user"}, {"role": "user", "content": 3},
                        {"role": "user", "content": [None, {"type": "text"}]},
                        {"role": "assistant", "tool_calls": [None, {"function": None}]}]}
    assert list(request_texts(odd)) == []
    assert map_request(odd, upper) == odd


def completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": "hello", "refusal": None}},
            {"index": 1, "finish_reason": "tool_calls",
             "message": {"role": "assistant", "content": None, "tool_calls": [
                 {"id": "c1", "type": "function",
                  "function": {"name": "send", "arguments": '{"to": "x"}'}}]}},
            {"index": 2, "finish_reason": "stop",
             "message": {"role": "assistant", "content": None, "refusal": "no"}},
        ],
    }


def test_map_response_maps_content_refusal_and_arguments_of_every_choice() -> None:
    response = completion()
    before = copy.deepcopy(response)
    mapped = map_response(response, upper)

    assert response == before
    choices = mapped["choices"]
    assert choices[0]["message"]["content"] == "HELLO"
    assert choices[0]["message"]["refusal"] is None
    assert choices[1]["message"]["tool_calls"][0]["function"] == {"name": "send",
                                                                  "arguments": '{"TO": "X"}'}
    assert choices[2]["message"]["refusal"] == "NO"
    assert mapped["usage"] is response["usage"] and mapped["id"] == "chatcmpl-1"


def test_map_chunk_maps_every_delta_text() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": "abc"}, "finish_reason": None},
        {"index": 1, "delta": {"tool_calls": [
            {"index": 0, "id": "t", "function": {"name": "send", "arguments": '{"a'}}]},
         "finish_reason": None},
        {"index": 2, "delta": {"refusal": "no"}, "finish_reason": None},
        {"index": 3, "delta": {}, "finish_reason": "stop"},
    ]}
    before = copy.deepcopy(chunk)
    mapped = map_chunk(chunk, upper)

    assert chunk == before
    deltas = [c["delta"] for c in mapped["choices"]]
    assert deltas[0] == {"content": "ABC"}
    assert deltas[1]["tool_calls"] == [{"index": 0, "id": "t",
                                        "function": {"name": "send", "arguments": '{"A'}}]
    assert deltas[2] == {"refusal": "NO"}
    assert mapped["choices"][3] is chunk["choices"][3]


def test_a_usage_only_chunk_maps_to_an_equal_chunk() -> None:
    chunk = {"id": "c", "choices": [], "usage": {"total_tokens": 3}}
    assert map_chunk(chunk, upper) == chunk
