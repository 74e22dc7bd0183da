"""What the local provider reads from a chat-completions request, and what it refuses: tools,
structured output, several choices, penalties and other features no in-process model here has
(`Unsupported`, 400), or malformed values (`BadRequest`). Sampling is greedy unless asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veteran.errors import BadRequest, Unsupported

__all__ = ["Params", "check_features", "read_messages", "read_params"]

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
STRUCTURED = ("the local provider cannot enforce structured output; "
              "use a provider that supports response_format")
UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "logprobs", "top_logprobs",
               "logit_bias", "audio", "prediction")


@dataclass(slots=True)
class Params:
    messages: list[dict[str, str]]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]


def check_features(body: dict[str, Any], *, json_ok: bool = False) -> None:
    """Refuse what no local model does; `json_ok`: the model answers JSON objects anyway (a
    classifier of fields), so a JSON `response_format` is honoured rather than refused."""
    for key in UNSUPPORTED:
        if body.get(key) and body[key] != "none":
            raise Unsupported(f"the local provider does not support {key}", param=key)
    fmt = body.get("response_format")
    allowed = ("text", "json_object", "json_schema") if json_ok else ("text",)
    if fmt and (not isinstance(fmt, dict) or fmt.get("type") not in allowed):
        raise Unsupported(STRUCTURED, param="response_format")
    if body.get("modalities") not in (None, ["text"]):
        raise Unsupported("the local provider only answers with text", param="modalities")
    if (_integer(body, "n", 1, 128) or 1) > 1:
        raise Unsupported("the local provider answers one choice only (n=1)", param="n")


def read_params(body: dict[str, Any], default_tokens: int, limit: int) -> Params:
    """Check the request against what a local model can do."""
    check_features(body)
    for key in ("frequency_penalty", "presence_penalty"):
        if _number(body, key, -2.0, 2.0, 0.0) != 0:
            raise Unsupported(f"the local provider does not support a nonzero {key}", param=key)
    key = "max_tokens" if body.get("max_completion_tokens") is None else "max_completion_tokens"
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise BadRequest("stop must be a string or a list of strings", param="stop")
    return Params(
        messages=read_messages(body.get("messages")),
        max_new_tokens=_integer(body, key, 1, limit) or default_tokens,
        # Greedy unless asked: OpenAI samples at 1.0 by default, but a 135M model rambles there.
        temperature=_number(body, "temperature", 0.0, 2.0, 0.0),
        top_p=_number(body, "top_p", 0.0, 1.0, 1.0),
        seed=_integer(body, "seed", -(2**63), 2**64 - 1), stop=[s for s in stops if s],
    )


def read_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", param="messages")
    out = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("tool", "function") or (role == "assistant" and message.get("tool_calls")):
            raise Unsupported("the local provider does not support tool messages",
                              param="messages")
        if role not in ROLES:
            raise BadRequest(f"unknown message role {role!r}", param="messages")
        content = message.get("content")
        if isinstance(content, list):
            if any(not isinstance(p, dict) or p.get("type") != "text" for p in content):
                raise Unsupported("the local provider only reads text content parts",
                                  param="messages")
            content = "\n".join(str(p.get("text", "")) for p in content)
        if content is not None and not isinstance(content, str):
            raise BadRequest("message content must be a string or a list of parts",
                             param="messages")
        out.append({"role": ROLES[role], "content": content or ""})
    return out


def _integer(body: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer from {low} to {high}", param=key)
    return value


def _number(body: dict[str, Any], key: str, low: float, high: float, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"{key} must be a number from {low:g} to {high:g}", param=key)
    return float(value)
