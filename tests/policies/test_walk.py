"""walk: every text a model sees or says in OpenAI shapes, mapped without touching the input."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from veteran.policies.detect import Detector
from veteran.policies.entities import Finding
from veteran.policies.walk import (
    JsonText,
    find_in_json,
    json_view,
    map_chunk,
    map_request,
    map_response,
    request_texts,
    unescaped,
)
from veteran.policy_settings import DictionaryConfig, PatternConfig


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


# --- JSON texts: arguments and JSON tool results ------------------------------------------

def test_unescaped_writes_strings_with_only_the_escapes_json_needs() -> None:
    text = ('{"name": "Zo\\u00eb \\u00c5gren", "url": "https:\\/\\/x.com",\n'
            '  "mail": "ann\\u0040x.com", "quote": "say \\"hi\\"\\\\n\\n",'
            ' "emoji": "\\ud83d\\ude00",'
            ' "n": 123456789012345678901234567890, "f": 1.0e2, "\\u006b": []}')
    got = unescaped(text)
    assert got == ('{"name": "Zoë Ågren", "url": "https://x.com",\n'
                   '  "mail": "ann@x.com", "quote": "say \\"hi\\"\\\\n\\n", "emoji": "😀",'
                   ' "n": 123456789012345678901234567890, "f": 1.0e2, "k": []}')
    assert json.loads(got) == json.loads(text)  # the same value, numbers and layout untouched


@pytest.mark.parametrize("text", [
    '{"name": "Zoë"}',  # no backslash: not even parsed
    'print("caf\\u00e9")',  # not JSON: left as written
    '{"cut": "Zo\\u00eb',  # a fragment
])
def test_unescaped_leaves_a_text_without_backslash_or_not_json_as_it_is(text: str) -> None:
    assert unescaped(text) is text


def test_unescaped_keeps_what_orjson_refuses_but_json_allows() -> None:
    text = '["\\ud800", "Zo\\u00eb", 1e400]'  # a lone surrogate, a number beyond a double
    assert unescaped(text) == '["\\ud800", "Zoë", 1e400]'


def tool_request(arguments: str, result: str, user: str) -> dict[str, Any]:
    return {"messages": [
        {"role": "user", "content": user},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": result},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": result}]},
    ]}


def test_arguments_and_json_tool_results_reach_fn_as_json_text_without_needless_escapes() -> None:
    body = tool_request('{"to": "Zo\\u00eb"}', '{"name": "\\u00c5gren"}', '{"u": "Zo\\u00eb"}')
    texts = list(request_texts(body))
    assert texts == ['{"u": "Zo\\u00eb"}', '{"to": "Zoë"}', '{"name": "Ågren"}',
                     '{"name": "Ågren"}']
    assert [type(t) for t in texts] == [str, JsonText, JsonText, JsonText]  # a user's is text
    given: list[str] = []

    def record(text: str) -> str:
        given.append(text)
        return text

    assert map_request(body, record) == body
    assert given == texts and [type(t) for t in given] == [type(t) for t in texts]


def test_a_tool_result_that_is_not_json_or_has_no_backslash_is_plain_text() -> None:
    body = tool_request("{}", 'print("caf\\u00e9")', "hi")
    assert [type(t) for t in request_texts(body)] == [str, JsonText, str, str]
    assert list(request_texts(body))[2] == 'print("caf\\u00e9")'


def test_a_json_text_fn_leaves_alone_goes_on_as_written_and_one_it_changes_unescaped() -> None:
    body = tool_request('{"to": "Zo\\u00eb", "n": 1}', '{"name": "\\u00c5gren"}', "hi")
    same = map_request(body, lambda t: t.replace("nothing", "NOTHING"))  # an equal copy
    assert same["messages"][1] is body["messages"][1]
    assert same["messages"][2] is body["messages"][2]
    changed = map_request(body, lambda t: t.replace("Zoë", "<CUSTOMER_1>"))
    assert changed["messages"][1]["tool_calls"][0]["function"]["arguments"] == (
        '{"to": "<CUSTOMER_1>", "n": 1}')
    assert changed["messages"][2] is body["messages"][2]


def test_responses_give_arguments_as_json_text_and_chunks_as_fragments_as_written() -> None:
    kinds: list[tuple[type, str]] = []

    def record(text: str) -> str:
        kinds.append((type(text), text))
        return text

    response = completion()
    response["choices"][1]["message"]["tool_calls"][0]["function"]["arguments"] = (
        '{"to": "Zo\\u00eb"}')
    map_response(response, record)
    assert kinds == [(str, "hello"), (JsonText, '{"to": "Zoë"}'), (str, "no")]
    kinds.clear()
    map_chunk({"choices": [{"index": 0, "delta": {"content": "a", "tool_calls": [
        {"index": 0, "function": {"arguments": '{"to": "Zo\\u00eb'}}]}}]}, record)
    assert kinds == [(str, "a"), (JsonText, '{"to": "Zo\\u00eb')]


def test_json_text_slices_and_texts_made_from_it_are_plain_str() -> None:
    text = JsonText('{"a": "b"}')  # never put in a body: orjson.loads refuses str subclasses
    assert text == '{"a": "b"}' and hash(text) == hash('{"a": "b"}')
    assert type(text[1:4]) is str and type(text.upper()) is str and type(text + "x") is str


WORD = re.compile(r"Bob \"Bobby\" Tables|CORP\\[a-z]+|\n|[^\s\"\\]+(?: [^\s\"\\]+)*")


def words(view: str) -> list[Finding]:
    return [Finding("word", m.start(), m.end(), m[0]) for m in WORD.finditer(view)]


def test_find_in_json_reads_escapes_as_characters_and_puts_spans_back_whole() -> None:
    text = '{"who": "Bob \\"Bobby\\" Tables", "as": "CORP\\\\jsmith\\n", "x": "\\\\n\\u0001é"}'
    found = find_in_json(text, words)
    values = [f.text for f in found]
    assert 'Bob \\"Bobby\\" Tables' in values and "CORP\\\\jsmith" in values
    assert "\\n" in values  # a newline found: its whole escape
    for finding in found:
        assert text[finding.start:finding.end] == finding.text
        assert orjson.loads(f'"{finding.text}"')  # never an escape cut in half
    assert [f.text for f in found if f.text.startswith("n")] == ["n\\u0001é"]  # \\ then n


def test_find_in_json_without_escapes_reads_the_text_itself() -> None:
    seen: list[str] = []

    def find(view: str) -> list[Finding]:
        seen.append(view)
        return []

    text = '{"a": "b"}'
    find_in_json(text, find)
    assert seen[0] is text


def test_the_detector_finds_values_json_must_still_escape_in_json_texts() -> None:
    detector = Detector(
        dictionaries={"c": DictionaryConfig(entity="customer", terms=['Bob "Bobby" Tables'])},
        patterns={"a": PatternConfig(entity="account", regex=r"CORP\\[a-z]+")})
    plain = 'Bob "Bobby" Tables logs in as CORP\\jsmith'
    arguments = orjson.dumps({"who": 'Bob "Bobby" Tables', "as": "CORP\\jsmith"}).decode()
    assert [f.entity for f in detector.find(plain)] == ["customer", "account"]
    assert detector.find(arguments) == []  # read as written, the escapes hide them
    found = detector.find(JsonText(arguments))
    assert [(f.entity, f.text) for f in found] == [
        ("customer", 'Bob \\"Bobby\\" Tables'), ("account", "CORP\\\\jsmith")]


def reference_view(text: str) -> str:
    """The view, one escape at a time."""
    two = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
           "t": "\t"}
    return re.sub(r'\\(?:u[0-9a-fA-F]{4}|["\\/bfnrt])',
                  lambda m: two[m[0][1]] if len(m[0]) == 2 else chr(int(m[0][2:], 16)), text)


@given(st.text(alphabet='\\"/bfnrtu005cABx é', max_size=40))
def test_json_view_undoes_escapes_as_a_scan_from_the_left_does(text: str) -> None:
    assert json_view(text) == reference_view(text)


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60), st.data())
def test_find_in_json_spans_hold_what_the_view_found(value: str, data: st.DataObject) -> None:
    text = orjson.dumps(value).decode()  # a string JSON writes with its escapes
    assert json_view(text) == f'"{value}"'
    spans = sorted({tuple(sorted(data.draw(st.tuples(st.integers(1, len(value) + 1),
                                                      st.integers(1, len(value) + 1)))))})
    picked = [(a, b) for a, b in spans if a < b][:1]

    def find(view: str) -> list[Finding]:
        return [Finding("x", a, b, view[a:b]) for a, b in picked]

    for finding, (a, b) in zip(find_in_json(text, find), picked, strict=True):
        assert text[finding.start:finding.end] == finding.text
        assert orjson.loads(f'"{finding.text}"') == value[a - 1:b - 1]
