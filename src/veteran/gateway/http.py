"""Request bodies in, JSON and OpenAI-shaped errors out: the one place errors meet HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from veteran.errors import BadRequest, HTTPError, PayloadTooLarge, to_openai_error

log = logging.getLogger("veteran.gateway")
JSON = "application/json"


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type=JSON)


def error_response(exc: HTTPError, headers: Mapping[str, str] | None = None) -> Response:
    if exc.headers:
        headers = {**exc.headers, **headers} if headers else exc.headers
    return json_response(to_openai_error(exc), exc.status, headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to pass `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    receive = request.receive
    while True:  # ASGI messages read directly: Request.stream()'s generator costs on every call
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client disconnected while sending the request")
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(limit)
        parts.append(part)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    raw = await read_body(request, limit)
    if not raw:
        raise BadRequest("request body is empty; send a JSON object")
    if b"\\u0000" in raw:
        raise BadRequest("NUL characters (\\u0000) are not allowed in the request")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


async def on_unexpected(_request: Request, exc: Exception) -> Response:
    # Details go to the log only: they may hold request data the client should not see echoed.
    log.exception("unexpected error", exc_info=exc)
    return error_response(HTTPError("internal error; see the gateway log"))
