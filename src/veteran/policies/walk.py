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
that `fn` changed (`fn` returning its argument itself means unchanged), and share the rest, so a
request whose texts hold nothing to mask costs two shallow copies, not a deep one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

TextFn = Callable[[str], str]

# The text-bearing part types of a list content, and the key holding each one's text.
PART_TEXT = {"text": "text", "refusal": "refusal"}


def request_texts(body: Mapping[str, Any]) -> Iterator[str]:
    """Every text of a request's messages, in order (what `map_request` applies `fn` to)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for part in content:
                key = _text_key(part)
                if key is not None:
                    yield part[key]
        if isinstance(message.get("refusal"), str):
            yield message["refusal"]
        yield from _call_arguments(message)


def map_request(body: Mapping[str, Any], fn: TextFn) -> dict[str, Any]:
    """A new request body with `fn` applied to every text `request_texts` yields."""
    new = dict(body)
    messages = body.get("messages")
    if isinstance(messages, list):
        new["messages"] = [_map_message(m, fn) if isinstance(m, dict) else m for m in messages]
    return new


def map_response(response: Mapping[str, Any], fn: TextFn) -> dict[str, Any]:
    """A new completion with `fn` applied to each choice's content, refusal and arguments."""
    return _map_choices(response, "message", fn)


def map_chunk(chunk: Mapping[str, Any], fn: TextFn) -> dict[str, Any]:
    """A new stream chunk with `fn` applied to each choice's delta texts."""
    return _map_choices(chunk, "delta", fn)


def _map_choices(container: Mapping[str, Any], field: str, fn: TextFn) -> dict[str, Any]:
    new = dict(container)
    choices = container.get("choices")
    if isinstance(choices, list):
        new["choices"] = [_map_choice(c, field, fn) for c in choices]
    return new


def _map_choice(choice: Any, field: str, fn: TextFn) -> Any:
    if not isinstance(choice, dict):
        return choice
    message = choice.get(field)
    if not isinstance(message, dict):
        return choice
    mapped = _map_message(message, fn)
    return choice if mapped is message else {**choice, field: mapped}


def _map_message(message: dict[str, Any], fn: TextFn) -> dict[str, Any]:
    out = message
    content = message.get("content")
    if isinstance(content, str):
        new_content = fn(content)
        if new_content is not content:
            out = copy_on_write(out, message, "content", new_content)
    elif isinstance(content, list):
        new_parts = _map_parts(content, fn)
        if new_parts is not content:
            out = copy_on_write(out, message, "content", new_parts)
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        new_refusal = fn(refusal)
        if new_refusal is not refusal:
            out = copy_on_write(out, message, "refusal", new_refusal)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        new_calls = _map_list(calls, lambda call: _map_call(call, fn))
        if new_calls is not calls:
            out = copy_on_write(out, message, "tool_calls", new_calls)
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        new_legacy = _map_function(legacy, fn)
        if new_legacy is not legacy:
            out = copy_on_write(out, message, "function_call", new_legacy)
    return out


def _map_parts(parts: list[Any], fn: TextFn) -> list[Any]:
    def one(part: Any) -> Any:
        key = _text_key(part)
        if key is None:
            return part
        text = part[key]
        new_text = fn(text)
        return part if new_text is text else {**part, key: new_text}

    return _map_list(parts, one)


def _text_key(part: Any) -> str | None:
    """The key of a content part's text, when it is a text-bearing part with a string there."""
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    key = PART_TEXT.get(kind) if isinstance(kind, str) else None
    return key if key is not None and isinstance(part.get(key), str) else None


def _map_call(call: Any, fn: TextFn) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = call["function"]
    new_function = _map_function(function, fn)
    return call if new_function is function else {**call, "function": new_function}


def _map_function(function: dict[str, Any], fn: TextFn) -> dict[str, Any]:
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        return function
    new_arguments = fn(arguments)
    return function if new_arguments is arguments else {**function, "arguments": new_arguments}


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
