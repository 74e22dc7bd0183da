"""A fake OpenAI-compatible upstream for the policy tests: it records what it was sent and
answers with the placeholders it saw, in its content and in a tool call's arguments.

The answer to a request whose texts hold placeholders `P1, P2, ...` (in order of first
appearance, or every placeholder any request ever sent when `answer_all` is set) is

    content:   "D'accord ✓ — I will write to P1 and P2. Vous avez dit : « LAST USER TEXT » 🙂"
    arguments: {"to": [P1, P2], "note": "für P1 P2", "said": "LAST USER TEXT"}

Streamed, the content and the arguments are each cut at `splits` (character offsets: a JSON
string cannot be cut inside a character), every piece its own chunk, so a placeholder split at
any offset reaches the gateway in two or three chunks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
Scope = dict[str, Any]
TOOL = "send_message"


def texts(body: dict[str, Any]) -> Iterable[str]:
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            yield from (p.get("text", "") for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or ():
            yield call["function"]["arguments"]


def last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def answer(placeholders: list[str], said: str) -> tuple[str, str]:
    """The content and the tool call's arguments answered for `placeholders`."""
    content = (f"D'accord ✓ — I will write to {' and '.join(placeholders)}. "
               f"Vous avez dit : « {said} » 🙂")
    arguments = orjson.dumps({"to": placeholders, "note": f"für {' '.join(placeholders)}",
                              "said": said}).decode()
    return content, arguments


def cut(text: str, at: Iterable[int]) -> list[str]:
    """`text` cut at the offsets `at` that fall inside it (empty pieces dropped)."""
    points = sorted({0, len(text), *(k for k in at if 0 < k < len(text))})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


@dataclass
class Echo:
    """The upstream. `splits` is read per request, unless `splits_for` (the last user text ->
    splits) is given."""

    splits: tuple[int, ...] = ()
    splits_for: Callable[[str], Iterable[int]] | None = None
    answer_all: bool = False
    delay: float = 0.0  # seconds before answering (lets concurrent requests overlap)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[str, str, str]] = field(default_factory=list)  # said, content, args
    known: list[str] = field(default_factory=list)  # every placeholder seen, first-seen order

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http" and scope["path"] == "/v1/chat/completions"
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = orjson.loads(raw)
        self.requests.append(body)
        seen = list(dict.fromkeys(p for t in texts(body) for p in PLACEHOLDER.findall(t)))
        for placeholder in seen:
            if placeholder not in self.known:
                self.known.append(placeholder)
        if self.delay:
            await asyncio.sleep(self.delay)
        said = last_user(body)
        content, arguments = answer(list(self.known) if self.answer_all else seen, said)
        self.answers.append((said, content, arguments))
        head = {"id": "chatcmpl-echo", "created": 0, "model": body["model"],
                "system_fingerprint": "fp_echo"}
        if body.get("stream"):
            splits = self.splits if self.splits_for is None else tuple(self.splits_for(said))
            await _stream(send, head, content, arguments, splits)
            return
        completion = {**head, "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "tool_calls", "logprobs": None,
            "message": {"role": "assistant", "content": content, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": TOOL, "arguments": arguments}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(completion)})


async def _stream(send: Any, head: dict[str, Any], content: str, arguments: str,
                  splits: tuple[int, ...]) -> None:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {**head, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        return b"data: " + orjson.dumps(data) + b"\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": piece}) for piece in cut(content, splits)]
    for i, piece in enumerate(cut(arguments, splits)):
        call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
        if i == 0:
            call.update(id="call_1", type="function")
            call["function"]["name"] = TOOL
        events.append(event({"tool_calls": [call]}))
    events += [event({}, "tool_calls"), b"data: [DONE]\n\n"]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for data in events:
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
