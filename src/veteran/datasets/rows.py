"""A trajectory read as training material: the prompt the model saw, its own answer, the
latest demonstration, the rating on the chosen metric, the label on the chosen label metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from veteran.types import Trajectory

DEMONSTRATION = "demonstration"  # the metric name evals read corrections from, declared or not


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    episode_id: str
    created_at: float
    prompt: list[dict[str, Any]]  # the function's system prompt, then the client's messages
    text: str  # the client's messages as text: what duplicates are judged on
    tools: list[dict[str, Any]] | None
    answer: dict[str, Any] | None  # the trajectory's own assistant message
    demonstration: dict[str, Any] | None  # the latest correction, as an assistant message
    rating: Any  # the latest value on the filters' metric (None: no such feedback)
    metadata: dict[str, Any]
    label: Any = None  # the latest value on the filters' label metric (None: no such feedback)


def assistant_message(value: Any) -> dict[str, Any] | None:
    """An assistant message from a demonstration or a response: a string is its content; a
    message (or a chat.completion's first choice) keeps its content and tool calls only, the
    keys fine-tuning formats accept. None when there is nothing to learn."""
    if isinstance(value, str):
        return {"role": "assistant", "content": value} if value.strip() else None
    if isinstance(value, dict) and isinstance(value.get("choices"), list):
        value = (value["choices"][0] or {}).get("message") if value["choices"] else None
    if not isinstance(value, dict):
        return None
    content, tool_calls = value.get("content"), value.get("tool_calls")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if isinstance(tool_calls, list) and tool_calls:
        message["tool_calls"] = tool_calls
    elif not (isinstance(content, str) and content.strip()):
        return None
    return message


def answer_of(value: Any) -> Any:
    """The answer in a demonstration or a response: a string stays; an assistant message (or a
    chat.completion) gives its content, or its tool calls when it has no content."""
    if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        value = value["choices"][0].get("message") or {}
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        assistant = [m for m in value if m.get("role") == "assistant"]
        value = assistant[-1] if assistant else value[-1]
    if isinstance(value, dict) and ("content" in value or "tool_calls" in value):
        content = value.get("content")
        return content if content not in (None, "") else value.get("tool_calls") or content
    return value


def reference_of(message: dict[str, Any]) -> Any:
    """What graders compare with: the text, or the tool calls of a message without text."""
    return answer_of(message)


def build_prompt(system: str | None, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The function's system prompt first, as the gateway adds it, unless the client already
    sent that very message first (imports of logs made with it)."""
    if not system:
        return list(messages)
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") == "system" and first.get("content") == system:
        return list(messages)
    return [{"role": "system", "content": system}, *messages]


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: their text, other parts as JSON
        content = " ".join(
            p["text"] if isinstance(p, dict) and isinstance(p.get("text"), str)
            else orjson.dumps(p).decode()
            for p in content
        )
    text = content if isinstance(content, str) else ""
    if message.get("tool_calls"):
        text += " " + orjson.dumps(message["tool_calls"]).decode()
    return f"{message.get('role')}: {text}"


def read_row(trajectory: Trajectory, system: str | None, demonstrations: set[str],
             metric: str | None, label: str | None = None) -> Row | None:
    """The row of an `ok` trajectory with a response; None for any other."""
    if trajectory.status != "ok" or trajectory.response is None:
        return None
    request = trajectory.request or {}
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    latest: dict[str, Any] = {}
    demonstration = None
    for item in trajectory.feedback or []:  # oldest first: the latest value wins
        latest[item.metric] = item.value
        if item.metric in demonstrations:
            demonstration = assistant_message(item.value)
    prompt = build_prompt(system, messages)
    client = prompt[1:] if system and prompt and prompt[0].get("content") == system else prompt
    tools = request.get("tools")
    metadata = {**trajectory.tags, "variant": trajectory.variant, "feedback": latest}
    return Row(
        id=trajectory.id, episode_id=trajectory.episode_id, created_at=trajectory.created_at,
        prompt=prompt, text="\n".join(message_text(m) for m in client),
        tools=tools if isinstance(tools, list) and tools else None,
        answer=assistant_message(trajectory.response), demonstration=demonstration,
        rating=latest.get(metric) if metric is not None else None, metadata=metadata,
        label=latest.get(label) if label is not None else None,
    )


def passes(value: Any, wanted: Any) -> bool:
    """A rating that counts as good: equal to `wanted`, or (without one) true or above 0."""
    if wanted is not None:
        return bool(value == wanted)
    if isinstance(value, bool):
        return value
    return isinstance(value, int | float) and value > 0


def score(value: Any, lower_is_better: bool) -> float | None:
    """A rating as an orderable number (true > false), or None for labels and comments."""
    if not isinstance(value, int | float):  # bool is an int: true (1) > false (0)
        return None
    return -float(value) if lower_is_better else float(value)


def same_answer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two assistant messages that say the same (whitespace aside)."""
    x, y = reference_of(a), reference_of(b)
    if isinstance(x, str) and isinstance(y, str):
        return " ".join(x.split()) == " ".join(y.split())
    return bool(x == y)
