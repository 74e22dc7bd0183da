"""Reassemble a streamed answer (chat.completion.chunk events) into one chat.completion, so a
streamed call is captured exactly like a non-streamed one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _Choice:
    role: str = "assistant"
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None


class StreamAssembler:
    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.choices: dict[int, _Choice] = {}
        self.usage: dict[str, Any] | None = None
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        if not self.head:
            self.head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint")
                         if k in chunk}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            slot = self.choices.setdefault(choice.get("index", 0), _Choice())
            delta = choice.get("delta") or {}
            if delta.get("role"):
                slot.role = delta["role"]
            if isinstance(delta.get("content"), str):
                slot.content.append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                slot.refusal.append(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                self._tool_call(slot, call)
            if choice.get("finish_reason"):
                slot.finish_reason = choice["finish_reason"]

    @staticmethod
    def _tool_call(slot: _Choice, call: dict[str, Any]) -> None:
        into = slot.tool_calls.setdefault(
            call.get("index", len(slot.tool_calls)),
            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if call.get("id"):
            into["id"] = call["id"]
        if call.get("type"):
            into["type"] = call["type"]
        fn = call.get("function") or {}
        if fn.get("name"):
            into["function"]["name"] += fn["name"]
        if fn.get("arguments"):
            into["function"]["arguments"] += fn["arguments"]

    def completion(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self.choices):
            slot = self.choices[index]
            message: dict[str, Any] = {
                "role": slot.role,
                "content": "".join(slot.content) if slot.content or not slot.tool_calls else None,
            }
            if slot.refusal:
                message["refusal"] = "".join(slot.refusal)
            if slot.tool_calls:
                message["tool_calls"] = [slot.tool_calls[i] for i in sorted(slot.tool_calls)]
            choices.append(
                {"index": index, "message": message, "finish_reason": slot.finish_reason}
            )
        out: dict[str, Any] = {**self.head, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            out["usage"] = self.usage
        return out
