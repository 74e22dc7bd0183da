"""Builders for the OpenAI chat-completions wire shapes: the gateway's internal format, which
providers return and the translations in `protocols.anthropic` produce (so it lives here, below
providers, and not in `providers`)."""

from __future__ import annotations

import time
from typing import Any

import uuid_utils


def completion_id() -> str:
    return f"chatcmpl-{uuid_utils.uuid7().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    *,
    model: str,
    content: str | None,
    finish_reason: str = "stop",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    tool_calls: list[dict[str, Any]] | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """A whole `chat.completion` with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": id or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason,
                     "logprobs": None}],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(
    *,
    id: str,
    model: str,
    created: int,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage_: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk`; with `usage_` and no delta it is the usage-only last chunk."""
    out: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": created,
                           "model": model}
    if usage_ is not None and delta is None and finish_reason is None:
        out["choices"] = []
        out["usage"] = usage_
    else:
        out["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]
    return out


def completion_to_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a whole `chat.completion` into the chunks a streaming server would have sent."""
    head = {
        "id": completion.get("id", ""),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
    }
    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices", []):
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant")}
        if message.get("content") is not None:
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": i, **call} for i, call in enumerate(message["tool_calls"])
            ]
        chunks.append(
            {**head, "choices": [{"index": choice.get("index", 0), "delta": delta,
                                  "finish_reason": None}]}
        )
        chunks.append(
            {**head, "choices": [{"index": choice.get("index", 0), "delta": {},
                                  "finish_reason": choice.get("finish_reason", "stop")}]}
        )
    if completion.get("usage") is not None:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks
