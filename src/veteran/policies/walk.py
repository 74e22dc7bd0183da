"""Every text a model sees or says, in OpenAI chat shapes.

The gateway speaks OpenAI chat completions internally (the Anthropic surface is translated before
the call path and back after it), so detection, masking and revealing walk these shapes only:

- a request: each message's content (a string, or the text and refusal parts of a list), an
  assistant's refusal, its `tool_calls[].function.arguments` (and the legacy
  `function_call.arguments`); a tool result is a message like any other. Never the tool
  definitions, nor any `name`: they are the application's, not the conversation's;
- a completion: each choice's message content, refusal and tool-call arguments;
- a stream chunk: the same fields of each choice's delta.

The `map_*` functions never mutate their input: they copy only the objects on the way to a text
that `fn` changed (`fn` returning its argument, or an equal text, means unchanged), and share
the rest, so a request whose texts hold nothing to mask costs two shallow copies, not a deep one.

Some of these texts are JSON: tool-call arguments always, and a tool result that holds a
backslash and parses as JSON (without one, it reads the same either way). They reach `fn` as
`JsonText`, so that a value taken out of one is the string the JSON holds, and a value put into
one is escaped (`pseudonym.Masking`, `pseudonym.Reveal`).
Before that, the strings of a whole document (not of a stream's fragments) that hold a backslash
are written again with only the escapes JSON needs (`"Zo\\u00eb"` becomes `"Zoë"`, `\\/` becomes
`/`): a detector reads the characters, not their escapes (json.dumps escapes every non-ASCII
character by default). Only the strings are rewritten, one by one, so the document keeps its
layout, numbers and keys, and holds the same JSON value. A text `fn` leaves unchanged goes on as
it came, escapes and all. The cost is paid only by a text that holds a backslash.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from veteran.policies.entities import Finding

TextFn = Callable[[str], str]

# The text-bearing part types of a list content, and the key holding each one's text.
PART_TEXT = {"text": "text", "refusal": "refusal"}
# The roles of messages whose content is a tool's result.
TOOL_ROLES = frozenset({"tool", "function"})
# A JSON string literal (in a valid document, outside them there is no quote).
JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# An escape inside a JSON string, and what the two-character ones stand for.
JSON_ESCAPE = re.compile(r'\\(?:u[0-9a-fA-F]{4}|["\\/bfnrt])')
UNICODE_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}")
ESCAPED = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
           "t": "\t"}


class JsonText(str):
    """A text that is a JSON document, or a stream's fragment of one: tool-call arguments, a
    tool result that parses as JSON. Masking takes a value out of it unescaped, and revealing
    puts one in escaped. Slices and any text made from it are plain `str`."""

    __slots__ = ()


def unescaped(text: str) -> str:
    """`text`, when it is a JSON document, with each string that holds a backslash written
    again with only the escapes JSON needs (`orjson.dumps`: a quote, a backslash, control
    characters); `text` itself when it holds no backslash or is not JSON."""
    document = _unescaped(text) if "\\" in text else None
    return text if document is None else document


def _unescaped(text: str) -> str | None:
    """`unescaped(text)` for a text with a backslash; None when it is not JSON."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses and JSON allows: lone surrogates, numbers beyond a double
            json.loads(text)
        except ValueError:
            return None
    return JSON_STRING.sub(_string, text)


def _string(match: re.Match[str]) -> str:
    literal = match[0]
    if "\\" not in literal:
        return literal
    try:
        return orjson.dumps(orjson.loads(literal)).decode()
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # a lone surrogate stays escaped
        return literal


def find_in_json(text: str, find: Callable[[str], list[Finding]]) -> list[Finding]:
    """`find` run over `text` (JSON, or a piece of it) read with its escapes undone (`\\"` as a
    quote, `\\\\` as a backslash, `\\n` as a newline), its findings' spans put back on `text`, each
    escape whole: what a JSON document must still escape (a customer named `Bob "Bobby"`, a
    `CORP\\\\jsmith` account, a private key's newlines) is found as the value it is."""
    view = json_view(text)
    if len(view) == len(text):
        return find(text)
    found = find(view)
    if not found:  # the common case: the offsets are worked out only for findings
        return found
    escapes = list(JSON_ESCAPE.finditer(text))
    at_view: list[int] = []  # where each escape is in the view
    shrunk = 0
    for escape in escapes:
        at_view.append(escape.start() - shrunk)
        shrunk += escape.end() - escape.start() - 1

    def start(i: int) -> int:  # where the view's character i starts in `text`
        k = bisect_right(at_view, i) - 1
        if k < 0:
            return i
        if at_view[k] == i:
            return escapes[k].start()
        return escapes[k].end() + i - at_view[k] - 1

    def end(i: int) -> int:  # where the view's character i - 1 ends in `text`
        k = bisect_right(at_view, i - 1) - 1
        return escapes[k].end() if k >= 0 and at_view[k] == i - 1 else start(i - 1) + 1

    spans = ((f, start(f.start), end(f.end)) for f in found)
    return [Finding(f.entity, a, b, text[a:b], f.detail) for f, a, b in spans]


def json_view(text: str) -> str:
    """`text` with each JSON escape replaced by the character it stands for: what
    `JSON_ESCAPE.sub(_character, text)` gives, with one `str.replace` per kind of escape
    instead of a Python call per escape (a JSON tool result's every line ends in one)."""
    parts = text.split("\\\\")  # `\\` first: after it, no backslash begins two escapes
    for i, part in enumerate(parts):
        if "\\" in part:
            for code in "\"/bfnrt":
                part = part.replace("\\" + code, ESCAPED[code])
            if "\\u" in part:  # last: a `\u005c` it makes is a backslash, not an escape
                part = UNICODE_ESCAPE.sub(_character, part)
            parts[i] = part
    return "\\".join(parts)


def _character(escape: re.Match[str]) -> str:
    code = escape[0]
    return ESCAPED[code[1]] if len(code) == 2 else chr(int(code[2:], 16))


def _document(text: str) -> JsonText:
    """Tool-call arguments: a JSON document by contract (left as written if it is not one)."""
    return JsonText(unescaped(text))


def _tool_result(text: str) -> str:
    """A tool result: a `JsonText` when it holds a backslash and parses as JSON. Without a
    backslash, JSON or not, it reads and masks as plain text does, so it is not parsed."""
    document = _unescaped(text) if "\\" in text else None
    return text if document is None else JsonText(document)


def _fragment(text: str) -> JsonText:
    """A stream's piece of tool-call arguments: JSON, but not a document to rewrite."""
    return JsonText(text)


def request_texts(body: Mapping[str, Any]) -> Iterator[str]:
    """Every text of a request's messages, in order, as `map_request` gives them to `fn`."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for message in messages:
        if not isinstance(message, dict):
            continue
        read = _content_reader(message)
        content = message.get("content")
        if isinstance(content, str):
            yield read(content)
        elif isinstance(content, list):
            for part in content:
                key = _text_key(part)
                if key is not None:
                    yield read(part[key])
        if isinstance(message.get("refusal"), str):
            yield message["refusal"]
        yield from map(_document, _call_arguments(message))


def map_request(body: Mapping[str, Any], fn: TextFn) -> dict[str, Any]:
    """A new request body with `fn` applied to every text `request_texts` yields."""
    new = dict(body)
    messages = body.get("messages")
    if isinstance(messages, list):
        new["messages"] = [_map_message(m, fn, _document) if isinstance(m, dict) else m
                           for m in messages]
    return new


def map_response(response: Mapping[str, Any], fn: TextFn) -> dict[str, Any]:
    """A new completion with `fn` applied to each choice's content, refusal and arguments."""
    return _map_choices(response, "message", fn, _document)


def map_chunk(chunk: Mapping[str, Any], fn: TextFn) -> dict[str, Any]:
    """A new stream chunk with `fn` applied to each choice's delta texts (arguments as
    fragments: `JsonText`, not rewritten)."""
    return _map_choices(chunk, "delta", fn, _fragment)


Reader = Callable[[str], str]


def _identity(text: str) -> str:
    return text


def _content_reader(message: Mapping[str, Any]) -> Reader:
    return _tool_result if message.get("role") in TOOL_ROLES else _identity


def _apply(text: str, fn: TextFn, read: Reader) -> str:
    """`fn` applied to `text` as `read` gives it: `text` itself when `fn` changed nothing (a
    str method given a `JsonText` answers an equal copy, not the text itself)."""
    given = read(text)
    new = fn(given)
    return text if new is given or new == given else new


def _map_choices(container: Mapping[str, Any], field: str, fn: TextFn,
                 arguments: Reader) -> dict[str, Any]:
    new = dict(container)
    choices = container.get("choices")
    if isinstance(choices, list):
        new["choices"] = [_map_choice(c, field, fn, arguments) for c in choices]
    return new


def _map_choice(choice: Any, field: str, fn: TextFn, arguments: Reader) -> Any:
    if not isinstance(choice, dict):
        return choice
    message = choice.get(field)
    if not isinstance(message, dict):
        return choice
    mapped = _map_message(message, fn, arguments)
    return choice if mapped is message else {**choice, field: mapped}


def _map_message(message: dict[str, Any], fn: TextFn, arguments: Reader) -> dict[str, Any]:
    out = message
    read = _content_reader(message)
    content = message.get("content")
    if isinstance(content, str):
        new_content = _apply(content, fn, read)
        if new_content is not content:
            out = copy_on_write(out, message, "content", new_content)
    elif isinstance(content, list):
        new_parts = _map_parts(content, fn, read)
        if new_parts is not content:
            out = copy_on_write(out, message, "content", new_parts)
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        new_refusal = fn(refusal)
        if new_refusal is not refusal:
            out = copy_on_write(out, message, "refusal", new_refusal)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        new_calls = _map_list(calls, lambda call: _map_call(call, fn, arguments))
        if new_calls is not calls:
            out = copy_on_write(out, message, "tool_calls", new_calls)
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        new_legacy = _map_function(legacy, fn, arguments)
        if new_legacy is not legacy:
            out = copy_on_write(out, message, "function_call", new_legacy)
    return out


def _map_parts(parts: list[Any], fn: TextFn, read: Reader) -> list[Any]:
    def one(part: Any) -> Any:
        key = _text_key(part)
        if key is None:
            return part
        text = part[key]
        new_text = _apply(text, fn, read)
        return part if new_text is text else {**part, key: new_text}

    return _map_list(parts, one)


def _text_key(part: Any) -> str | None:
    """The key of a content part's text, when it is a text-bearing part with a string there."""
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    key = PART_TEXT.get(kind) if isinstance(kind, str) else None
    return key if key is not None and isinstance(part.get(key), str) else None


def _map_call(call: Any, fn: TextFn, arguments: Reader) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = call["function"]
    new_function = _map_function(function, fn, arguments)
    return call if new_function is function else {**call, "function": new_function}


def _map_function(function: dict[str, Any], fn: TextFn, arguments: Reader) -> dict[str, Any]:
    text = function.get("arguments")
    if not isinstance(text, str):
        return function
    new_text = _apply(text, fn, arguments)
    return function if new_text is text else {**function, "arguments": new_text}


def _map_list(items: list[Any], one: Callable[[Any], Any]) -> list[Any]:
    """`items` itself when `one` changed nothing, else a new list."""
    new: list[Any] | None = None
    for i, item in enumerate(items):
        mapped = one(item)
        if mapped is not item:
            if new is None:
                new = list(items)
            new[i] = mapped
    return items if new is None else new


def copy_on_write(out: dict[str, Any], original: dict[str, Any], key: str,
                  value: Any) -> dict[str, Any]:
    """`out` with `key` set, copying `original` the first time (copy on write)."""
    if out is original:
        out = dict(original)
    out[key] = value
    return out


def _call_arguments(message: Mapping[str, Any]) -> Iterator[str]:
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                yield function["arguments"]
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
        yield legacy["arguments"]
