"""Checks on a chat-completions body: what the gateway relies on, once, without copying it.

Deliberately not a full pydantic model of the OpenAI request (measured: validating whole bodies
costs more than the rest of the hot path). Fields the gateway does not interpret pass through
to the provider, which knows its own extensions; fields it does rely on are checked here.
"""

from __future__ import annotations

import math
import re
from typing import Any

from veteran.errors import BadRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_TOKENS = 1_000_000
TAG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
EPISODE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_TAGS = 32


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def check_chat(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("`model` is required: a function name or PROVIDER/MODEL", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("`messages` must be a non-empty list", "messages")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("`stream` must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("`stream_options` must be an object", "stream_options")
        if not isinstance(options.get("include_usage", False), bool):
            raise _bad("`stream_options.include_usage` must be a boolean", "stream_options")
    for name in ("max_tokens", "max_completion_tokens"):
        _check_number(body, name, 1, MAX_TOKENS, integer=True)
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "n", 1, 128, integer=True)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    _check_tools(body)
    _check_response_format(body.get("response_format"))
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise _bad("`stop` must be a string or a list of up to 4 strings", "stop")


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise _bad(f"{where} must be an object", where)
    role = message.get("role")
    if role not in ROLES:
        raise _bad(f"{where}.role must be one of {', '.join(sorted(ROLES))}", f"{where}.role")
    content = message.get("content")
    if content is None:
        if role != "assistant" or not message.get("tool_calls"):
            raise _bad(f"{where}.content is required", f"{where}.content")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _bad(f"{where}.content[{j}] must be an object with a `type`",
                           f"{where}.content")
    elif not isinstance(content, str):
        raise _bad(f"{where}.content must be a string or a list of parts", f"{where}.content")
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise _bad(f"{where}.tool_calls must be a list", f"{where}.tool_calls")


def _check_number(
    body: dict[str, Any], name: str, low: float, high: float, *, integer: bool = False
) -> None:
    value = body.get(name)
    if value is None:
        return
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise _bad(f"`{name}` must be {kind}", name)
    if not math.isfinite(value) or not low <= value <= high:
        raise _bad(f"`{name}` must be between {low:g} and {high:g}", name)


def _check_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("`tools` must be a list", "tools")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise _bad(f"tools[{i}] must be an object with a `type`", f"tools[{i}]")
        fn = tool.get("function")
        if tool["type"] == "function" and not (
            isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]
        ):
            raise _bad(f"tools[{i}].function.name is required", f"tools[{i}].function")


def _check_response_format(fmt: Any) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise _bad(
            "`response_format.type` must be text, json_object or json_schema", "response_format"
        )
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise _bad("`response_format.json_schema.name` is required", "response_format")
        if "schema" in spec and not isinstance(spec["schema"], dict):
            raise _bad("`response_format.json_schema.schema` must be an object",
                       "response_format")


def parse_tags(header: str | None, body_tags: Any) -> dict[str, str]:
    """Tags from `x-veteran-tags: k=v,k2=v2` and the body field `veteran_tags` (which wins)."""
    tags: dict[str, str] = {}
    if header:
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                raise _bad("x-veteran-tags must look like key=value,key2=value2", "x-veteran-tags")
            tags[key.strip()] = value.strip()
    if body_tags is not None:
        if not isinstance(body_tags, dict) or not all(
            isinstance(v, str) for v in body_tags.values()
        ):
            raise _bad("`veteran_tags` must be an object of string values", "veteran_tags")
        tags.update(body_tags)
    if len(tags) > MAX_TAGS:
        raise _bad(f"at most {MAX_TAGS} tags", "veteran_tags")
    for key, value in tags.items():
        if not TAG_KEY.match(key):
            raise _bad(f"tag key {key!r} must match {TAG_KEY.pattern}", "veteran_tags")
        if len(value) > 512:
            raise _bad(f"tag {key!r} is longer than 512 characters", "veteran_tags")
    return tags


def check_episode_id(value: str) -> str:
    if not EPISODE_ID.match(value):
        raise _bad(f"x-veteran-episode-id must match {EPISODE_ID.pattern}", "x-veteran-episode-id")
    return value
