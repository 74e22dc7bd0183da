"""OpenAI answers (a `chat.completion`, a stream of chunks, an error) rendered as Anthropic
Messages answers, for the gateway's `/v1/messages` surface.

A stream is rendered event by event as chunks arrive: `message_start` with the first chunk,
then one content block per run of text or per tool call (`content_block_start`, deltas,
`content_block_stop`), and at the end `message_delta` (stop reason and usage, which OpenAI
sends last) and `message_stop`. A stream that breaks ends with an `error` event instead.
"""

from __future__ import annotations

from typing import Any

import orjson
import uuid_utils

from veteran.errors import HTTPError, UpstreamError

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def message_id(completion_id: Any) -> str:
    """`msg_...` from an OpenAI id (kept when the id already is a message id)."""
    if isinstance(completion_id, str) and completion_id:
        if completion_id.startswith("msg_"):
            return completion_id
        return "msg_" + completion_id.removeprefix("chatcmpl-")
    return "msg_" + uuid_utils.uuid7().hex


def stop_reason(finish: Any, choice: dict[str, Any], stops: list[str]) -> tuple[str, str | None]:
    """Anthropic `stop_reason` and `stop_sequence` for an OpenAI `finish_reason`.

    OpenAI does not say which stop sequence matched; servers that do (vLLM, and the anthropic
    provider) put it in the choice's `stop_reason`, which is used when it is one of `stops`."""
    matched = choice.get("stop_reason")
    if finish == "stop" and isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return STOP_REASONS.get(finish, "end_turn") if finish else "end_turn", None


def stop_list(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def usage(openai_usage: Any) -> dict[str, int]:
    if not isinstance(openai_usage, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    return {
        "input_tokens": int(openai_usage.get("prompt_tokens") or 0),
        "output_tokens": int(openai_usage.get("completion_tokens") or 0),
    }


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON `arguments` as Anthropic's `input` object; raises `UpstreamError`
    when the model's arguments are not a JSON object (Anthropic's `input` must be one)."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or arguments == "":
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        value = None
    if not isinstance(value, dict):
        raise UpstreamError("the model's tool call arguments are not a JSON object",
                            code="bad_tool_arguments")
    return value


def to_anthropic_message(completion: dict[str, Any], stops: list[str]) -> dict[str, Any]:
    """An OpenAI `chat.completion` (first choice) as an Anthropic `message`."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):  # content parts, as some servers answer
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    text = text or message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({
            "type": "tool_use", "id": call.get("id") or _tool_id(), "name": fn.get("name", ""),
            "input": tool_input(fn.get("arguments")),
        })
    reason, sequence = stop_reason(choice.get("finish_reason"), choice, stops)
    return {
        "id": message_id(completion.get("id")), "type": "message", "role": "assistant",
        "model": completion.get("model", ""), "content": content,
        "stop_reason": reason, "stop_sequence": sequence,
        "usage": usage(completion.get("usage")),
    }


def _tool_id() -> str:
    return "toolu_" + uuid_utils.uuid7().hex


def error_type(exc: HTTPError) -> str:
    if exc.status in ERROR_TYPES:
        return ERROR_TYPES[exc.status]
    return "invalid_request_error" if 400 <= exc.status < 500 else "api_error"


def error_body(exc: HTTPError) -> dict[str, Any]:
    """Anthropic's error JSON: `{"type": "error", "error": {"type", "message"}}`."""
    return {"type": "error", "error": {"type": error_type(exc), "message": exc.message}}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class MessageStreamRenderer:
    """Turns one stream's OpenAI chunks into Anthropic SSE events (the `StreamRenderer`
    protocol of `gateway.surface`). Only the first choice is rendered: Anthropic has no `n`."""

    def __init__(self, stops: list[str] | None = None) -> None:
        self.stops = stops or []
        self.started = False
        self.blocks = 0  # content blocks started so far
        self.open: str | int | None = None  # "text", an OpenAI tool call index, or None
        self.tools: dict[int, int] = {}  # OpenAI tool call index -> Anthropic block index
        self.finish: tuple[str, str | None] = ("end_turn", None)
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self.started = True
            out.append(self._start(chunk))
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if isinstance(text, str) and text:
                out.append(self._text(text))
            for call in delta.get("tool_calls") or ():
                out.append(self._tool(call))
            if choice.get("finish_reason"):
                self.finish = stop_reason(choice["finish_reason"], choice, self.stops)
                out.append(self._close())
        return b"".join(out)

    def done(self) -> bytes:
        out = [] if self.started else [self._start({})]
        out.append(self._close())
        reason, sequence = self.finish
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        out.append(sse("message_delta", {"type": "message_delta", "delta": delta,
                                         "usage": self.usage}))
        out.append(sse("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, exc: HTTPError) -> bytes:
        return sse("error", error_body(exc))

    def _start(self, chunk: dict[str, Any]) -> bytes:
        message = {
            "id": message_id(chunk.get("id")), "type": "message", "role": "assistant",
            "model": chunk.get("model", ""), "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1})

    def _open(self, key: str | int, block: dict[str, Any]) -> bytes:
        closed = self._close()
        self.open = key
        self.blocks += 1
        start = {"type": "content_block_start", "index": self.blocks - 1, "content_block": block}
        return closed + sse("content_block_start", start)

    def _text(self, text: str) -> bytes:
        head = b"" if self.open == "text" else self._open("text", {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return head + sse("content_block_delta", {"type": "content_block_delta",
                                                  "index": self.blocks - 1, "delta": delta})

    def _tool(self, call: dict[str, Any]) -> bytes:
        key = call.get("index", 0)
        fn = call.get("function") or {}
        head = b""
        if key not in self.tools:
            block: dict[str, Any] = {"type": "tool_use", "id": call.get("id") or _tool_id(),
                                     "name": fn.get("name") or "", "input": {}}
            head = self._open(key, block)
            self.tools[key] = self.blocks - 1
        arguments = fn.get("arguments")
        if not arguments:
            return head
        delta = {"type": "input_json_delta", "partial_json": arguments}
        return head + sse("content_block_delta", {"type": "content_block_delta",
                                                  "index": self.tools[key], "delta": delta})
