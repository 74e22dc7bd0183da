"""The ASGI application: a route table, one error mapping, and the gateway's lifespan.

Starlette's `Request` and `Response` are used as they are; its application class and router are
not: their middleware stack and regex routing cost ~15% of the gateway's CPU per request on the
2-core machine (see ../shared/PERF-NOTES.md, bench/RESULTS.md), and the gateway's routes are a
handful of fixed paths plus one `{id}` suffix, which a dictionary serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from veteran.errors import HTTPError, NotFound
from veteran.gateway import chat, feedback, http, reading
from veteran.gateway.core import Gateway
from veteran.gateway.protocol import GONE_KEY, TASK_KEY

log = logging.getLogger("veteran.gateway")
Handler = Callable[[Request], Awaitable[Response]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ROUTES: dict[str, dict[str, Handler]] = {
    "/v1/chat/completions": {"POST": chat.chat_completions},
    "/v1/models": {"GET": reading.list_models},
    "/v1/feedback": {"POST": feedback.post_feedback},
    "/v1/trajectories": {"GET": reading.list_trajectories},
    "/healthz": {"GET": reading.healthz},
}
# path prefix -> (path parameter name, methods)
PREFIX_ROUTES: dict[str, tuple[str, dict[str, Handler]]] = {
    "/v1/trajectories/": ("id", {"GET": reading.get_trajectory}),
}


class GatewayApp:
    def __init__(self, gateway: Gateway) -> None:
        self.state = State()
        self.state.gateway = gateway
        self.gateway = gateway

    @property
    def routes(self) -> list[tuple[str, list[str]]]:
        """(path, methods) of every route, for documentation checks."""
        found = [(path, list(methods)) for path, methods in ROUTES.items()]
        found += [(f"{prefix}{{{name}}}", list(methods))
                  for prefix, (name, methods) in PREFIX_ROUTES.items()]
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["app"] = self
            scope[TASK_KEY] = asyncio.current_task()  # cancelled if the client leaves early
            try:
                response = await self._handle(scope, receive)
            except asyncio.CancelledError:
                if scope.get(GONE_KEY):
                    return  # the client left; there is nobody to answer
                raise
            await response(scope, receive, send)  # type: ignore[arg-type]
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        path: str = scope["path"]
        methods = ROUTES.get(path)
        if methods is None:
            for prefix, (name, prefixed) in PREFIX_ROUTES.items():
                rest = path[len(prefix):]
                if path.startswith(prefix) and rest and "/" not in rest:
                    scope["path_params"] = {name: rest}
                    methods = prefixed
                    break
        try:
            if methods is None:
                raise NotFound("no such endpoint", code="unknown_url")
            handler = methods.get(scope["method"])
            if handler is None:
                return _method_not_allowed(methods)
            return await handler(Request(scope, receive))
        except HTTPError as exc:
            return http.error_response(exc)
        except Exception as exc:
            return await http.on_unexpected(Request(scope), exc)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.start()
                except BaseException as exc:  # the server logs the message and exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _method_not_allowed(methods: dict[str, Handler]) -> Response:
    error = HTTPError("method not allowed; use " + ", ".join(sorted(methods)))
    error.status = 405
    error.type = "invalid_request_error"
    return http.error_response(error, {"allow": ", ".join(sorted(methods))})


def create_app(gateway: Gateway) -> GatewayApp:
    return GatewayApp(gateway)
