"""The reverse pair, for the `anthropic` provider: an OpenAI chat body sent as an Anthropic
Messages request, and Anthropic's answer (a `message`, or SSE events) read back as OpenAI.

OpenAI fields with no Anthropic counterpart that change the answer (`n > 1`, logprobs,
`json_object` output, penalties, `logit_bias`, audio) are refused with `Unsupported` naming the
field; `response_format` json_schema and `reasoning_effort` become `output_config`; fields that
only steer delivery or bookkeeping (`stream_options`, `seed`, `store`, `service_tier`, OpenAI
`metadata`) are dropped.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from veteran.errors import BadRequest, StreamInterrupted, Unsupported
from veteran.protocols import shapes

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
HANDLED = frozenset({
    "model", "messages", "stream", "stream_options", "seed", "store", "service_tier", "metadata",
    "user", "parallel_tool_calls", "max_tokens", "max_completion_tokens", "stop", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "n", "response_format", "logprobs",
    "presence_penalty", "frequency_penalty", "reasoning_effort",
})


def to_anthropic_request(body: dict[str, Any], model: str, default_max_tokens: int
                         ) -> dict[str, Any]:
    """An OpenAI chat-completions body as an Anthropic Messages request for `model`."""
    _refuse_unsupported(body)
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(body.get("messages") or ()):
        where = f"messages[{i}]"
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            turn = {"role": "user", "content": _user_blocks(message.get("content"), where)}
        elif role == "assistant":
            turn = {"role": "assistant", "content": _assistant_blocks(message, where)}
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id", "")),
                      "content": _plain_text(message.get("content"), f"{where}.content")}
            turn = {"role": "user", "content": [result]}
        else:
            raise Unsupported(f"`{where}.role` {role!r} cannot be sent to an Anthropic model",
                              param=f"{where}.role")
        if messages and messages[-1]["role"] == turn["role"]:
            messages[-1]["content"] += turn["content"]  # Anthropic wants roles to alternate
        else:
            messages.append(turn)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        out["stream"] = True
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    _tools(body, out)
    config: dict[str, Any] = {}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        config["format"] = {"type": "json_schema",
                            "schema": spec.get("schema") or {"type": "object"}}
    if isinstance(body.get("reasoning_effort"), str):
        config["effort"] = body["reasoning_effort"]
    if config:
        out["output_config"] = config
    return out


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for key, value in body.items():
        if key not in HANDLED and value is not None:
            raise Unsupported(f"`{key}` cannot be sent to an Anthropic model", param=key)
    if (body.get("n") or 1) != 1:
        raise Unsupported("`n` must be 1 for an Anthropic model", param="n")
    if body.get("logprobs"):
        raise Unsupported("`logprobs` are not available from an Anthropic model", param="logprobs")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text", "json_schema"):
        raise Unsupported("`response_format` json_object cannot be sent to an Anthropic model; "
                          "use json_schema", param="response_format")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name):
            raise Unsupported(f"`{name}` is not available for an Anthropic model", param=name)


def _plain_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise Unsupported(f"`{where}[{j}]`: only text can be sent here to an Anthropic "
                                  "model", param=f"{where}[{j}]")
            texts.append(str(part.get("text") or part.get("refusal") or ""))
        return "".join(texts)
    raise BadRequest(f"`{where}` must be a string or a list of parts", param=where)


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"`{where}.content` must be a string or a list of parts",
                         param=f"{where}.content")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            blocks.append(_image(part, at))
        else:
            raise Unsupported(f"`{at}`: parts of type {kind!r} cannot be sent to an Anthropic "
                              "model", param=at)
    return blocks


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise BadRequest(f"`{where}.image_url.url` is required", param=f"{where}.image_url")
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        media, _, encoding = head.partition(";")
        if not sep or encoding != "base64":
            raise BadRequest(f"`{where}.image_url.url`: a data URL must be base64",
                             param=f"{where}.image_url")
        source = {"type": "base64", "media_type": media, "data": data}
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _plain_text(message.get("content"), f"{where}.content")
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(message.get("tool_calls") or ()):
        at = f"{where}.tool_calls[{j}].function.arguments"
        if not isinstance(call, dict):
            raise BadRequest(f"`{where}.tool_calls[{j}]` must be an object",
                             param=f"{where}.tool_calls[{j}]")
        fn = call.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            raise BadRequest(f"`{at}` must be a JSON object", param=at)
        blocks.append({"type": "tool_use", "id": call.get("id") or f"toolu_{j}",
                       "name": fn.get("name", ""), "input": args})
    return blocks or [{"type": "text", "text": ""}]


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        converted = []
        for i, tool in enumerate(tools):
            fn = tool.get("function") if tool.get("type") == "function" else None
            if not isinstance(fn, dict):
                raise Unsupported(f"`tools[{i}]`: only function tools can be sent to an "
                                  "Anthropic model", param=f"tools[{i}]")
            entry: dict[str, Any] = {
                "name": fn.get("name"),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            if fn.get("description"):
                entry["description"] = fn["description"]
            if fn.get("strict") is not None:
                entry["strict"] = fn["strict"]
            converted.append(entry)
        out["tools"] = converted
    choice = body.get("tool_choice")
    mapped: dict[str, Any] | None = None
    if choice == "auto":
        mapped = {"type": "auto"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif choice == "none":
        mapped = {"type": "none"}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not isinstance(name, str):
            raise BadRequest("`tool_choice.function.name` is required", param="tool_choice")
        mapped = {"type": "tool", "name": name}
    elif choice is not None:
        raise BadRequest("`tool_choice` must be auto, required, none or a function",
                         param="tool_choice")
    if body.get("parallel_tool_calls") is False and tools:
        mapped = {**(mapped or {"type": "auto"}), "disable_parallel_tool_use": True}
    if mapped is not None:
        out["tool_choice"] = mapped


def openai_usage(anthropic_usage: Any) -> dict[str, Any]:
    """OpenAI usage from Anthropic's: prompt tokens count cache reads and writes too."""
    u = anthropic_usage if isinstance(anthropic_usage, dict) else {}
    cached = int(u.get("cache_read_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + int(u.get("cache_creation_input_tokens") or 0)
    out: dict[str, Any] = shapes.usage(prompt + cached, int(u.get("output_tokens") or 0))
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def finish_choice(stop_reason: Any, stop_sequence: Any) -> dict[str, Any]:
    """`finish_reason` (and, vLLM-style, the matched stop sequence as `stop_reason`)."""
    out: dict[str, Any] = {"finish_reason": FINISH_REASONS.get(stop_reason, "stop")}
    if isinstance(stop_sequence, str):
        out["stop_reason"] = stop_sequence
    return out


def to_openai_completion(message: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic `message` as an OpenAI `chat.completion`. Thinking blocks are left out."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name", ""), "arguments": arguments}})
    reply: dict[str, Any] = {"role": "assistant",
                             "content": "".join(texts) if texts or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    choice = {"index": 0, "message": reply, "logprobs": None,
              **finish_choice(message.get("stop_reason"), message.get("stop_sequence"))}
    return {
        "id": message.get("id") or shapes.completion_id(), "object": "chat.completion",
        "created": int(time.time()), "model": message.get("model", ""),
        "choices": [choice], "usage": openai_usage(message.get("usage")),
    }


class ChunkDecoder:
    """Anthropic stream events (name and JSON data) in, OpenAI `chat.completion.chunk`s out.

    `message_delta` yields the finish chunk and then the usage-only chunk (`choices: []`), so
    a stream that is cut after it is still complete; `finished` says whether it came."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {"id": "", "object": "chat.completion.chunk",
                                     "created": int(time.time()), "model": ""}
        self.input: dict[str, Any] = {}
        self.tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
        self.finished = False
        self.stopped = False  # message_stop seen

    def event(self, name: str | None, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type", name)
        if kind == "message_start":
            message = data.get("message") or {}
            self.head["id"] = message.get("id", "")
            self.head["model"] = message.get("model", "")
            self.input = message.get("usage") or {}
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tools[data.get("index", 0)] = len(self.tools)
                call = {"index": index, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""}}
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "message_delta":
            delta = data.get("delta") or {}
            usage = {**self.input, **{k: v for k, v in (data.get("usage") or {}).items()
                                      if v is not None}}
            self.finished = True
            choice = {"index": 0, "delta": {}, "logprobs": None,
                      **finish_choice(delta.get("stop_reason"), delta.get("stop_sequence"))}
            return [{**self.head, "choices": [choice]},
                    {**self.head, "choices": [], "usage": openai_usage(usage)}]
        if kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            error = data.get("error") or {}
            raise StreamInterrupted(str(error.get("message") or "error event in stream"))
        return []  # ping, content_block_stop, and event types added later

    def _delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            index = self.tools.get(data.get("index", 0))
            if index is None:
                raise StreamInterrupted("input_json_delta for a block that is not a tool_use")
            call = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking and signature deltas are left out, as in complete answers

    def _chunk(self, delta: dict[str, Any]) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return {**self.head, "choices": [choice]}
