"""A fast fake OpenAI-compatible upstream with injectable faults, for tests and benchmarks.

A raw ASGI app (no framework, so it answers in tens of microseconds) served by uvicorn with uvloop
and httptools. `POST /v1/chat/completions` echoes the last user message ("echo: ..."), as JSON or
as SSE when `"stream": true`; when the request has `tools` it calls the first one instead.
`GET /v1/models` lists the model names. `POST /v1/messages` answers the same way in Anthropic's
Messages format (a `message`, or its SSE events; a `tool_use` block when `tools` are given) and
wants an `anthropic-version` header, as Anthropic's API does.

Faults are a comma-separated spec, e.g. `status=503` or `split,crlf`, chosen per request by the
`x-fake-fault` header, else by a last user message starting `fault:SPEC` (the gateway does not
forward client headers), else by the server-wide default:

    status=CODE   answer with that HTTP status and an OpenAI error body
    delay=MS      sleep before answering
    cut=N         stream N content chunks, then end the chunked body abruptly (no [DONE])
    nodone        stream normally but omit `data: [DONE]` (Anthropic: `message_stop`)
    crlf          SSE with CRLF line endings and `: keep-alive` comment lines
    split         send the body in 1..7-byte pieces, each its own write
    badjson       a body (or, streaming, one event) that is not JSON
    retry_after=S with status=CODE: send `Retry-After: S`
    fail=N        the first N requests with this exact message (or header) get `status` (503 if
                  not given); later ones are answered normally: a provider that recovers

    with FakeUpstream() as fake:          # or: python -m veteran.testing.fake_upstream --port 9100
        client = openai.OpenAI(base_url=fake.url, api_key="x")
        ...
        assert fake.requests[-1]["model"] == "fake-model"
        assert fake.headers[-1]["content-type"] == "application/json"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import logging
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

import orjson
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from veteran.testing.fake_anthropic import AnthropicAnswer, anthropic_error
from veteran.testing.server import ServerThread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@dataclass(slots=True, frozen=True)
class Fault:
    """The faults to inject into one answer; the default injects none."""

    status: int | None = None
    delay_ms: float = 0.0
    cut: int | None = None
    nodone: bool = False
    crlf: bool = False
    split: bool = False
    badjson: bool = False
    retry_after: str | None = None
    fail: int | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", self.retry_after.encode())] if self.retry_after else []

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse `status=503,delay=20,split`-style specs; raise ValueError on an unknown name."""
        fields: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition("=")
            if name == "status":
                fields["status"] = int(value)
            elif name == "delay":
                fields["delay_ms"] = float(value)
            elif name == "cut":
                fields["cut"] = int(value)
            elif name == "retry_after":
                fields["retry_after"] = value
            elif name == "fail":
                fields["fail"] = int(value)
            elif name in ("nodone", "crlf", "split", "badjson") and not value:
                fields[name] = True
            else:
                raise ValueError(f"unknown fake upstream fault {part!r}")
        return cls(**fields)


class AbruptClose(Exception):
    """Raised inside the app after a partial body, so uvicorn drops the connection mid-body."""


def _not_abrupt_close(record: logging.LogRecord) -> bool:
    """A log filter: the traceback uvicorn logs for an intended `AbruptClose` is noise."""
    return not (record.exc_info and isinstance(record.exc_info[1], AbruptClose))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _error(status: int, message: str) -> bytes:
    code = f"fake_{status}"
    return orjson.dumps({"error": {"message": message, "type": code, "param": None, "code": code}})


class FakeUpstreamApp:
    """The ASGI app. `requests` holds the last `max_requests` JSON bodies received, `headers`
    the headers that came with each (names lower-cased)."""

    def __init__(
        self,
        fault: Fault | str = "",
        models: tuple[str, ...] = ("fake-model",),
        max_requests: int = 1000,
    ) -> None:
        self.fault = Fault.parse(fault) if isinstance(fault, str) else fault
        self.models = models
        self.max_requests = max_requests
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._ids = itertools.count(1)
        self._failed: dict[str, int] = {}  # `fail=N` faults: failures sent so far, per spec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/v1/chat/completions" and method == "POST":
            await self._chat(scope, receive, send)
        elif path == "/v1/messages" and method == "POST":
            await self._messages(scope, receive, send)
        elif path == "/v1/embeddings" and method == "POST":
            await self._embeddings(scope, receive, send)
        elif path == "/v1/models" and method == "GET":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models
            ]
            await _respond(send, 200, orjson.dumps({"object": "list", "data": data}))
        else:
            await _respond(send, 404, _error(404, f"no route {method} {path}"))

    async def _read(self, scope: Scope, receive: Receive) -> dict[str, Any] | None:
        """The JSON object body, recorded with its headers; None when it is not one."""
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict):
            return None
        self.requests.append(body)
        self.headers.append({k.decode("latin-1"): v.decode("latin-1")
                             for k, v in scope["headers"]})
        if len(self.requests) > self.max_requests:
            del self.requests[0]
            del self.headers[0]
        return body

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        """OpenAI embeddings: a deterministic 16-dimensional vector per input (from its
        SHA-256), so equal texts embed equally; `status` faults apply."""
        body = await self._read(scope, receive)
        inputs = body.get("input") if body is not None else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            await _respond(send, 400, _error(400, "input must be a string or list of strings"))
            return
        fault = self._fault(scope, inputs[0] if inputs else "")
        if fault.status is not None:
            await _respond(send, fault.status, _error(fault.status, "fake fault"),
                           headers=fault.headers())
            return
        data = [{"object": "embedding", "index": i,
                 "embedding": [b / 255 - 0.5 for b in hashlib.sha256(text.encode()).digest()[:16]]}
                for i, text in enumerate(inputs)]
        tokens = sum(len(t.split()) for t in inputs)
        await _respond(send, 200, orjson.dumps({
            "object": "list", "data": data, "model": body.get("model") if body else None,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))

    async def _begin(
        self, scope: Scope, body: dict[str, Any] | None, send: Send,
        error: Callable[[int, str], bytes],
    ) -> tuple[list[Any], str, Fault] | None:
        """What both chat surfaces do first: refuse a body that is not JSON, find the last user
        message and the fault, wait `delay`, answer a `status` fault. None: answered already."""
        if body is None:
            await _respond(send, 400, error(400, "request body is not a JSON object"))
            return None
        messages = body.get("messages") or []
        last_user = next(
            (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        try:
            fault = self._fault(scope, last_user)
        except ValueError as exc:
            await _respond(send, 400, error(400, str(exc)))
            return None
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.status is not None:
            await _respond(send, fault.status, error(fault.status, f"fake fault: {fault.status}"),
                           headers=fault.headers())
            return None
        return messages, last_user, fault

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read(scope, receive)
        begun = await self._begin(scope, body, send, _error)
        if body is None or begun is None:
            return
        messages, last_user, fault = begun
        tools = body.get("tools")
        tool = None
        if tools and body.get("tool_choice") != "none":
            tool = (tools[0].get("function") or {}).get("name", "tool")
        answer = Answer(
            id=f"chatcmpl-fake-{next(self._ids)}",
            model=body.get("model", "fake-model"),
            text="echo: " + last_user,
            tool=tool,
            prompt_tokens=sum(len(_text(m.get("content")).split()) + 3 for m in messages),
        )
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            await _stream(send, answer.events(usage, fault), fault)
        elif fault.badjson:
            await _respond(send, 200, b'{"id": "not json', fault.split)
        else:
            await _respond(send, 200, orjson.dumps(answer.completion()), fault.split)

    async def _messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Anthropic's Messages API: the same echo, tool call and faults, Anthropic-shaped."""
        body = await self._read(scope, receive)
        if body is not None and not any(
            name == b"anthropic-version" for name, _ in scope["headers"]
        ):
            await _respond(send, 400, anthropic_error(400, "anthropic-version header required"))
            return
        begun = await self._begin(scope, body, send, anthropic_error)
        if body is None or begun is None:
            return
        messages, last_user, fault = begun
        tools = body.get("tools")
        choice = body.get("tool_choice") or {}
        tool = tools[0].get("name", "tool") if tools and choice.get("type") != "none" else None
        system = _text(body.get("system"))
        answer = Answer(
            id=f"msg_fake_{next(self._ids)}",
            model=body.get("model", "fake-model"),
            text="echo: " + last_user,
            tool=tool,
            prompt_tokens=sum(len(_text(m.get("content")).split()) + 3 for m in messages)
            + (len(system.split()) + 3 if system else 0),
        )
        reply = AnthropicAnswer(answer, body.get("max_tokens"), body.get("stop_sequences"))
        if body.get("stream"):
            await _stream(send, reply.events(fault), fault)
        elif fault.badjson:
            await _respond(send, 200, b'{"id": "not json', fault.split)
        else:
            await _respond(send, 200, orjson.dumps(reply.message()), fault.split)

    def _fault(self, scope: Scope, last_user: str) -> Fault:
        for name, value in scope["headers"]:
            if name == b"x-fake-fault":
                return self._count(value.decode(), Fault.parse(value.decode()))
        if last_user.startswith("fault:"):
            spec = last_user[6:].split()
            return self._count(last_user, Fault.parse(spec[0] if spec else ""))
        return self.fault

    def _count(self, key: str, fault: Fault) -> Fault:
        """A `fail=N` fault: a failure for the first N requests with `key`, then none."""
        if fault.fail is None:
            return fault
        failed = self._failed.get(key, 0)
        if failed >= fault.fail:
            return Fault()
        self._failed[key] = failed + 1
        return replace(fault, status=fault.status or 503, fail=None)


@dataclass(slots=True)
class Answer:
    """One deterministic answer, rendered as a completion or as stream chunks."""

    id: str
    model: str
    text: str
    tool: str | None
    prompt_tokens: int

    def pieces(self) -> list[str]:
        """The content split into word-sized stream chunks."""
        words = self.text.split(" ")
        return [w + " " for w in words[:-1]] + [words[-1]]

    def usage(self) -> dict[str, int]:
        completion = 1 if self.tool else len(self.pieces())
        total = self.prompt_tokens + completion
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": total,
        }

    def _call(self, arguments: str) -> dict[str, Any]:
        function = {"name": self.tool, "arguments": arguments}
        return {"id": "call_fake_1", "type": "function", "function": function}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text, "refusal": None}
        if self.tool:
            message.update(content=None, tool_calls=[self._call("{}")])
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish()}
        return {**self._head("chat.completion"), "choices": [choice], "usage": self.usage()}

    def finish(self) -> str:
        return "tool_calls" if self.tool else "stop"

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": int(time.time()), "model": self.model}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._head("chat.completion.chunk"), "choices": [choice]}

    def events(self, usage: bool, fault: Fault) -> list[bytes]:
        """The SSE events, one bytes object each; `cut` truncates after N content events."""
        nl = b"\r\n" if fault.crlf else b"\n"

        def event(data: Any) -> bytes:
            payload = data if isinstance(data, bytes) else orjson.dumps(data)
            return (b": keep-alive" + nl if fault.crlf else b"") + b"data: " + payload + nl + nl

        out = [event(self._chunk({"role": "assistant", "content": "" if not self.tool else None}))]
        if fault.badjson:
            out.append(event(b'{"choices": [not json'))
        content: list[dict[str, Any]]
        if self.tool:
            index = {"index": 0}
            content = [{"tool_calls": [{**index, **self._call("")}]}]
            content += [{"tool_calls": [{**index, "function": {"arguments": a}}]} for a in "{}"]
        else:
            content = [{"content": piece} for piece in self.pieces()]
        out += [event(self._chunk(delta)) for delta in content[: fault.cut]]
        if fault.cut is not None:
            return out
        out.append(event(self._chunk({}, self.finish())))
        if usage:
            out.append(
                event({**self._head("chat.completion.chunk"), "choices": [], "usage": self.usage()})
            )
        if not fault.nodone:
            out.append(event(b"[DONE]"))
        return out


def _split(data: bytes) -> list[bytes]:
    sizes, pieces, at = itertools.cycle(range(1, 8)), [], 0
    while at < len(data):
        size = next(sizes)
        pieces.append(data[at : at + size])
        at += size
    return pieces


async def _respond(
    send: Send, status: int, body: bytes, split: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    for piece in _split(body) if split else ():
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"" if split else body})


async def _stream(send: Send, events: list[bytes], fault: Fault) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    for piece in _split(b"".join(events)) if fault.split else events:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    if fault.cut is not None:
        raise AbruptClose(f"fake fault: cut after {fault.cut} content chunks")
    await send({"type": "http.response.body", "body": b""})


def make_server(app: FakeUpstreamApp, *, quiet: bool = True) -> uvicorn.Server:
    """A uvicorn server for `app` (uvloop, httptools, no access log, no lifespan)."""
    logging.getLogger("uvicorn.error").addFilter(_not_abrupt_close)  # once: addFilter dedupes
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1,
        log_config=None if quiet else LOGGING_CONFIG,
    )
    return uvicorn.Server(config)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class FakeUpstream(ServerThread):
    """The fake upstream on 127.0.0.1 in a background thread; `url` ends in `/v1`."""

    def __init__(self, fault: Fault | str = "", port: int = 0, host: str = "127.0.0.1") -> None:
        self.fake = FakeUpstreamApp(fault)
        logging.getLogger("uvicorn.error").addFilter(_not_abrupt_close)
        super().__init__(
            self.fake, host=host, port=port, startup_timeout=10, lifespan="off",
            server_header=False, date_header=False, timeout_graceful_shutdown=1, log_config=None,
        )

    @property
    def url(self) -> str:
        return f"{super().url}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Request bodies received, oldest first (capped)."""
        return self.fake.requests

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of each request in `requests` (names lower-cased)."""
        return self.fake.headers

    @property
    def root_url(self) -> str:
        """The server's root (no `/v1`): the `base_url` of an `anthropic` provider."""
        return super().url

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground: `python -m veteran.testing.fake_upstream --port 9100`."""
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--fault", default="", help="server-wide default fault spec, e.g. delay=5")
    parser.add_argument("--model", action="append", help="model names listed (repeatable)")
    args = parser.parse_args(argv)
    app = FakeUpstreamApp(Fault.parse(args.fault), tuple(args.model or ["fake-model"]))
    sock = _bind(args.host, args.port)
    print(f"fake upstream on http://{args.host}:{sock.getsockname()[1]}/v1", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        make_server(app, quiet=False).run(sockets=[sock])


if __name__ == "__main__":
    main()
