"""The Anthropic Messages side of the fake upstream (`fake_upstream.py`, `POST /v1/messages`):
its answers and error bodies in Anthropic's shapes, events included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # fake_upstream imports this module
    from veteran.testing.fake_upstream import Answer, Fault


def anthropic_error(status: int, message: str) -> bytes:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}
    error = {"type": kind.get(status, "api_error"), "message": message}
    return orjson.dumps({"type": "error", "error": error})


class AnthropicAnswer:
    """`Answer` in Anthropic's shapes. Honours `max_tokens` (one word is one token) and
    `stop_sequences` (the echo is cut before the first one found), as Anthropic reports them."""

    def __init__(self, answer: Answer, max_tokens: Any, stops: Any) -> None:
        self.answer = answer
        self.stop_reason = "tool_use" if answer.tool else "end_turn"
        self.stop_sequence: str | None = None
        self.pieces = answer.pieces()
        text = answer.text
        found = [(text.find(s), s) for s in stops or () if isinstance(s, str) and s in text]
        if found and not answer.tool:
            at, self.stop_sequence = min(found)
            self.stop_reason = "stop_sequence"
            words = text[:at].split(" ")
            self.pieces = [w + " " for w in words[:-1]] + ([words[-1]] if words[-1] else [])
        if isinstance(max_tokens, int) and not answer.tool and len(self.pieces) > max_tokens:
            self.pieces = self.pieces[:max_tokens]
            self.stop_reason, self.stop_sequence = "max_tokens", None

    def usage(self) -> dict[str, int]:
        output = 1 if self.answer.tool else len(self.pieces)
        return {"input_tokens": self.answer.prompt_tokens, "output_tokens": output}

    def _tool_use(self) -> dict[str, Any]:
        return {"type": "tool_use", "id": "toolu_fake_1", "name": self.answer.tool, "input": {}}

    def message(self, content: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if content is None:
            content = [self._tool_use()] if self.answer.tool else [
                {"type": "text", "text": "".join(self.pieces)}]
        return {
            "id": self.answer.id, "type": "message", "role": "assistant",
            "model": self.answer.model, "content": content, "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence, "usage": self.usage(),
        }

    def events(self, fault: Fault) -> list[bytes]:
        """The SSE events; `cut` truncates after N content deltas, `nodone` drops
        `message_stop`."""
        nl = b"\r\n" if fault.crlf else b"\n"

        def event(name: str, data: Any) -> bytes:
            payload = data if isinstance(data, bytes) else orjson.dumps({"type": name, **data})
            keep = b": keep-alive" + nl if fault.crlf else b""
            return keep + b"event: " + name.encode() + nl + b"data: " + payload + nl + nl

        start = {**self.message([]), "stop_reason": None, "stop_sequence": None,
                 "usage": {"input_tokens": self.answer.prompt_tokens, "output_tokens": 1}}
        out = [event("message_start", {"message": start})]
        if fault.badjson:
            out.append(event("content_block_delta", b'{"type": [not json'))
        if self.answer.tool:
            block = self._tool_use()
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in "{}"]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in self.pieces]
        out.append(event("content_block_start", {"index": 0, "content_block": block}))
        out.append(event("ping", {}))
        out += [event("content_block_delta", {"index": 0, "delta": d})
                for d in deltas[: fault.cut]]
        if fault.cut is not None:
            return out
        out.append(event("content_block_stop", {"index": 0}))
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        usage = {"output_tokens": self.usage()["output_tokens"]}
        out.append(event("message_delta", {"delta": delta, "usage": usage}))
        if not fault.nodone:
            out.append(event("message_stop", {}))
        return out
