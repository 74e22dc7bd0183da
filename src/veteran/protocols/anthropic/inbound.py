"""An Anthropic Messages request, checked and translated into an OpenAI chat-completions body.

Checked as strictly as Anthropic's own API checks it (unknown fields are refused too), so a
client learns about a mistake from the gateway with the field named, not from a provider that
received a half-translated body. Hints that only steer the vendor's delivery or bookkeeping are
dropped (`DROPPED`, `cache_control` on blocks) and so are `thinking` blocks in the history (their
signatures only mean something to the model that wrote them). `output_config.format` becomes
`response_format` (json_schema), `output_config.effort` becomes `reasoning_effort`. Requests the
translation cannot honour (`thinking` enabled, server tools, `container`, documents, images
inside tool results) are refused with `Unsupported`, never silently weakened.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from veteran.errors import BadRequest, Unsupported

MAX_TOKENS = 1_000_000
MAX_STOP_SEQUENCES = 4  # the internal (OpenAI) limit on `stop`
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
TRANSLATED = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config", "veteran_tags",
})
# Vendor-side delivery and bookkeeping: prompt caching, region, speed tier, workspace, ...
DROPPED = frozenset({
    "metadata", "service_tier", "cache_control", "inference_geo", "speed", "diagnostics",
    "user_profile_id", "workspace_id",
})


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def _need(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _bad(f"`{where}` must be {what}", where)
    return value


def _text_of(value: Any, where: str) -> str:
    return str(_need(value, str, where, "a string"))


def to_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """Check an Anthropic Messages request and return the equivalent OpenAI chat body.

    Raises `BadRequest` (or `Unsupported`) naming the field at fault."""
    for key in body:
        if key not in TRANSLATED and key not in DROPPED:
            raise Unsupported(f"`{key}` is not supported by the gateway's Messages API",
                              param=key)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("`model` is required: a function name or PROVIDER/MODEL", "model")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _bad("`max_tokens` is required: a positive integer", "max_tokens")
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise _bad(f"`max_tokens` must be between 1 and {MAX_TOKENS}", "max_tokens")
    out: dict[str, Any] = {"model": model, "messages": [], "max_tokens": max_tokens}
    system = _system(body.get("system"))
    if system:
        out["messages"].append({"role": "system", "content": system})
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("`messages` must be a non-empty list", "messages")
    for i, message in enumerate(messages):
        out["messages"] += _message(message, f"messages[{i}]")
    _sampling(body, out)
    stream = body.get("stream")
    if stream is not None:
        out["stream"] = _need(stream, bool, "stream", "a boolean")
    _need(body.get("metadata", {}), dict, "metadata", "an object")
    _thinking(body.get("thinking"))
    _output_config(body.get("output_config"), out)
    tools = body.get("tools")
    if tools is not None:
        converted = [_tool(t, f"tools[{i}]") for i, t in enumerate(
            _need(tools, list, "tools", "a list"))]
        if converted:  # OpenAI refuses an empty list
            out["tools"] = converted
    choice = body.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, out)
    if "veteran_tags" in body:
        out["veteran_tags"] = body["veteran_tags"]  # checked by the pipeline, as for OpenAI
    return out


def _system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise _bad("`system` must be a string or a list of text blocks", "system")
    texts = []
    for i, block in enumerate(system):
        where = f"system[{i}]"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _bad(f"`{where}` must be a text block", where)
        texts.append(_text_of(block.get("text"), f"{where}.text"))
    return "\n\n".join(texts)


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    for name, low, high in (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(f"`{name}` must be a number", name)
        if not math.isfinite(value) or not low <= value <= high:
            raise _bad(f"`{name}` must be between {low:g} and {high:g}", name)
        out[name] = value
    top_k = body.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise _bad("`top_k` must be a non-negative integer", "top_k")
        out["top_k"] = top_k  # not OpenAI's: servers that know it (vLLM, anthropic) use it
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise _bad("`stop_sequences` must be a list of non-empty strings", "stop_sequences")
        if len(stops) > MAX_STOP_SEQUENCES:
            raise _bad(f"at most {MAX_STOP_SEQUENCES} `stop_sequences`", "stop_sequences")
        if stops:
            out["stop"] = list(stops)


def _thinking(thinking: Any) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
        raise _bad("`thinking` must be an object with a `type`", "thinking")
    if thinking["type"] != "disabled":
        raise Unsupported("`thinking` is not supported by the gateway's translation; "
                          "leave it out or set {\"type\": \"disabled\"}", param="thinking")


def _output_config(config: Any, out: dict[str, Any]) -> None:
    if config is None:
        return
    _need(config, dict, "output_config", "an object")
    effort = config.get("effort")
    if effort is not None:
        out["reasoning_effort"] = _text_of(effort, "output_config.effort")
    fmt = config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise _bad("`output_config.format.type` must be json_schema", "output_config.format")
    schema = _need(fmt.get("schema"), dict, "output_config.format.schema", "an object")
    out["response_format"] = {"type": "json_schema",
                              "json_schema": {"name": "output", "schema": schema, "strict": True}}


def _message(message: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        raise _bad(f"`{where}` must be an object", where)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise _bad(f"`{where}.role` must be user or assistant", f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list) or not content:
        raise _bad(f"`{where}.content` must be a string or a non-empty list of blocks",
                   f"{where}.content")
    if role == "assistant":
        return [_assistant(content, f"{where}.content")]
    return _user(content, f"{where}.content")


def _block(block: Any, where: str) -> tuple[dict[str, Any], str]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _bad(f"`{where}` must be an object with a `type`", where)
    return block, block["type"]


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, item in enumerate(content):
        at = f"{where}[{j}]"
        block, kind = _block(item, at)
        if kind == "text":
            texts.append(_text_of(block.get("text"), f"{at}.text"))
        elif kind == "tool_use":
            name = _text_of(block.get("name"), f"{at}.name")
            args = _need(block.get("input"), dict, f"{at}.input", "an object")
            calls.append({
                "id": _text_of(block.get("id"), f"{at}.id"), "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            })
        elif kind not in ("thinking", "redacted_thinking"):
            raise _unsupported_block(kind, at, "assistant")
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    elif out["content"] is None:
        out["content"] = ""
    return out


def _user(content: list[Any], where: str) -> list[dict[str, Any]]:
    """Tool results become `tool` messages, placed first: OpenAI wants them right after the
    assistant message that called the tools, which is where Anthropic's user turn sits."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, item in enumerate(content):
        at = f"{where}[{j}]"
        block, kind = _block(item, at)
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(block.get("text"), f"{at}.text")})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "tool_result":
            results.append(_tool_result(block, at))
        else:
            raise _unsupported_block(kind, at, "user")
    if not parts:
        return results
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*results, {"role": "user", "content": parts[0]["text"]}]
    return [*results, {"role": "user", "content": parts}]


def _unsupported_block(kind: str, where: str, role: str) -> BadRequest:
    if kind in ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"):
        return _bad(f"`{where}`: a {kind} block is not allowed in a {role} message", where)
    return Unsupported(f"`{where}`: content blocks of type {kind!r} are not supported by the "
                       "gateway's translation", param=where)


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = _need(block.get("source"), dict, f"{where}.source", "an object")
    kind = source.get("type")
    if kind == "base64":
        media = source.get("media_type")
        if media not in IMAGE_TYPES:
            kinds = ", ".join(sorted(IMAGE_TYPES))
            raise _bad(f"`{where}.source.media_type` must be one of {kinds}",
                       f"{where}.source.media_type")
        data = _text_of(source.get("data"), f"{where}.source.data")
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        url = _text_of(source.get("url"), f"{where}.source.url")
    else:
        raise _bad(f"`{where}.source.type` must be base64 or url", f"{where}.source.type")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = _text_of(block.get("tool_use_id"), f"{where}.tool_use_id")
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for k, item in enumerate(content):
            at = f"{where}.content[{k}]"
            part, kind = _block(item, at)
            if kind != "text":
                raise Unsupported(f"`{at}`: only text is supported inside a tool_result",
                                  param=at)
            texts.append(_text_of(part.get("text"), f"{at}.text"))
        content = "\n".join(texts)
    elif not isinstance(content, str):
        raise _bad(f"`{where}.content` must be a string or a list of text blocks",
                   f"{where}.content")
    if _need(block.get("is_error", False), bool, f"{where}.is_error", "a boolean"):
        content = f"Error: {content}"  # OpenAI has no error flag on a tool message
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise _bad(f"`{where}` must be an object", where)
    kind = tool.get("type", "custom")
    if kind != "custom":
        raise Unsupported(f"`{where}`: server tools ({kind!r}) are not supported by the "
                          "gateway's translation; only client tools", param=where)
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(f"`{where}.name` is required", f"{where}.name")
    schema = _need(tool.get("input_schema"), dict, f"{where}.input_schema", "an object")
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if tool.get("description") is not None:
        function["description"] = _text_of(tool["description"], f"{where}.description")
    if tool.get("strict") is not None:
        function["strict"] = _need(tool["strict"], bool, f"{where}.strict", "a boolean")
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise _bad("`tool_choice` must be an object with a `type`", "tool_choice")
    kind = choice["type"]
    if kind == "tool":
        name = _text_of(choice.get("name"), "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in TOOL_CHOICES:
        out["tool_choice"] = TOOL_CHOICES[kind]
    else:
        raise _bad("`tool_choice.type` must be auto, any, tool or none", "tool_choice.type")
    if not out.get("tools"):
        # auto or none without tools means no choice, and OpenAI refuses one without tools
        if kind in ("any", "tool"):
            raise _bad(f"`tool_choice` {kind!r} needs `tools`", "tool_choice")
        del out["tool_choice"]
        return
    parallel = choice.get("disable_parallel_tool_use", False)
    if _need(parallel, bool, "tool_choice.disable_parallel_tool_use", "a boolean"):
        out["parallel_tool_calls"] = False
