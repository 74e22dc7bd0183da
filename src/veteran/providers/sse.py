"""Incremental Server-Sent Events decoding, for upstream streams cut at any byte.

Follows the WHATWG event-stream rules that matter for model APIs: LF, CRLF and lone CR line
endings, `:` comment lines, multi-line `data:` joined with newlines, an event dispatched on a
blank line. Bytes are kept until a line is whole, so a UTF-8 character or a CRLF split between
two network reads decodes correctly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event: bytes | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk
        held = b""
        if buf.endswith(b"\r"):
            # a CR at the end may be the first half of a CRLF still in flight
            buf, held = buf[:-1], b"\r"
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buf.split(b"\n")
        self._buf = rest + held
        events: list[SSEEvent] = []
        for line in lines:
            self._line(line, events)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a last event without its blank line is still delivered."""
        events: list[SSEEvent] = []
        rest = self._buf.rstrip(b"\r")
        self._buf = b""
        if rest:
            self._line(rest, events)
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                data = b"\n".join(self._data).decode("utf-8", errors="replace")
                event = self._event.decode("utf-8", errors="replace") if self._event else None
                events.append(SSEEvent(data=data, event=event))
            self._data = []
            self._event = None
            return
        if line.startswith(b":"):
            return
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value
