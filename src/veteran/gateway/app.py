"""The ASGI application: a route table, one error mapping, and the gateway's lifespan.

Starlette's `Request` and `Response` are used as they are; its application class and router are
not: their middleware stack and regex routing cost ~12% of the gateway's CPU per request on the
2-core machine (188 µs with them, 165 µs with this dictionary: bench/RESULTS.md; docs/design.md,
"The hot path, measured"), and the gateway's routes are a handful of fixed paths plus one `{id}`
suffix, which a dictionary serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from veteran.access import PRINCIPAL_KEY, PUBLIC, AccessControl, Permission, allow, settle
from veteran.errors import HTTPError, NotFound
from veteran.gateway import chat, feedback, http, memory_api, messages, metrics, policy_api, reading
from veteran.gateway.core import Gateway
from veteran.gateway.protocol import GONE_KEY, TASK_KEY
from veteran.gateway.surface import Surface

log = logging.getLogger("veteran.gateway")
Handler = Callable[[Request], Awaitable[Response]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ROUTES: dict[str, dict[str, Handler]] = {
    "/v1/chat/completions": {"POST": chat.chat_completions},
    "/v1/messages": {"POST": messages.messages},
    "/v1/models": {"GET": reading.list_models},
    "/v1/feedback": {"POST": feedback.post_feedback},
    "/v1/embeddings": {"POST": memory_api.embeddings},
    "/v1/policy/test": {"POST": policy_api.policy_test},
    "/v1/trajectories": {"GET": reading.list_trajectories},
    "/v1/audit": {"GET": reading.list_audit},
    "/healthz": {"GET": reading.healthz},
    "/metrics": {"GET": metrics.metrics},
}
# path prefix -> (path parameter name, methods)
PREFIX_ROUTES: dict[str, tuple[str, dict[str, Handler]]] = {
    "/v1/trajectories/": ("id", {"GET": reading.get_trajectory}),
}
# (prefix, suffix) -> (path parameter name, methods): one path segment between the two
INFIX_ROUTES: dict[tuple[str, str], tuple[str, dict[str, Handler]]] = {
    ("/v1/kb/", "/search"): ("collection", {"POST": memory_api.kb_search}),
}
# Who may call each route: the roles allowed (admin always), or PUBLIC (no key needed). A route
# without an entry here stops the app from being built (docs/security.md lists the table).
PERMISSIONS: dict[str, Permission] = {
    "POST /v1/chat/completions": allow("app"),
    "POST /v1/messages": allow("app"),
    "GET /v1/models": allow("app", "viewer"),
    "POST /v1/feedback": allow("app"),
    "POST /v1/embeddings": allow("app"),
    # What the rules make of the caller's own request (its key's team and id): whoever may
    # call models may see it (gateway/policy_api.py).
    "POST /v1/policy/test": allow("app"),
    "POST /v1/kb/{collection}/search": allow("app", "viewer"),
    "GET /v1/trajectories": allow("viewer"),
    "GET /v1/trajectories/{id}": allow("viewer"),
    "GET /v1/audit": allow(),  # admin keys only: who did what to the workspace
    "GET /healthz": PUBLIC,
    "GET /metrics": allow("viewer"),
}
Guarded = dict[str, tuple[Handler, Permission]]  # method -> (handler, permission)
# Paths whose clients expect another wire format's errors, even for errors raised before their
# handler runs (a missing key, a wrong method): see gateway/surface.py.
ERROR_SURFACES: dict[str, Surface] = {"/v1/messages": messages.ANTHROPIC}


def _guard(path: str, methods: dict[str, Handler]) -> Guarded:
    guarded = {}
    for method, handler in methods.items():
        permission = PERMISSIONS.get(f"{method} {path}")
        if permission is None:
            raise RuntimeError(f"route {method} {path} has no entry in app.PERMISSIONS")
        guarded[method] = (handler, permission)
    return guarded


class GatewayApp:
    def __init__(self, gateway: Gateway, *, host: str | None = None) -> None:
        self.state = State()
        self.state.gateway = gateway
        self.gateway = gateway
        # `host`: the address served on; open mode (no keys needed) only on loopback
        self.access = AccessControl(gateway.store, gateway.config,
                                    host=host or gateway.config.server.host)
        gateway.reconfigured.append(self.access.reconfigure)
        self._routes = {path: _guard(path, methods) for path, methods in ROUTES.items()}
        self._prefix_routes = {
            prefix: (name, _guard(f"{prefix}{{{name}}}", methods))
            for prefix, (name, methods) in PREFIX_ROUTES.items()
        }
        self._infix_routes = {
            (prefix, suffix): (name, _guard(f"{prefix}{{{name}}}{suffix}", methods))
            for (prefix, suffix), (name, methods) in INFIX_ROUTES.items()
        }

    @property
    def routes(self) -> list[tuple[str, list[str]]]:
        """(path, methods) of every route, for documentation checks."""
        found = [(path, list(methods)) for path, methods in ROUTES.items()]
        found += [(f"{prefix}{{{name}}}", list(methods))
                  for prefix, (name, methods) in PREFIX_ROUTES.items()]
        found += [(f"{prefix}{{{name}}}{suffix}", list(methods))
                  for (prefix, suffix), (name, methods) in INFIX_ROUTES.items()]
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["app"] = self
            scope[TASK_KEY] = asyncio.current_task()  # cancelled if the client leaves early
            try:
                try:
                    response = await self._handle(scope, receive)
                except asyncio.CancelledError:
                    if scope.get(GONE_KEY):
                        return  # the client left; there is nobody to answer
                    raise
                await response(scope, receive, send)  # type: ignore[arg-type]
            finally:
                settle(scope)  # what a limited call used counts once it is over
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        path: str = scope["path"]
        methods = self._routes.get(path)
        if methods is None:
            for prefix, (name, prefixed) in self._prefix_routes.items():
                rest = path[len(prefix):]
                if path.startswith(prefix) and rest and "/" not in rest:
                    scope["path_params"] = {name: rest}
                    methods = prefixed
                    break
            for (prefix, suffix), (name, infixed) in self._infix_routes.items():
                middle = path[len(prefix):-len(suffix)]
                if (methods is None and path.startswith(prefix) and path.endswith(suffix)
                        and middle and "/" not in middle):
                    scope["path_params"] = {name: middle}
                    methods = infixed
        try:
            if methods is None:
                raise NotFound("no such endpoint", code="unknown_url")
            entry = methods.get(scope["method"])
            if entry is None:
                return _method_not_allowed(methods)
            handler, permission = entry
            scope[PRINCIPAL_KEY] = await self.access.keys.authenticate(
                scope["headers"], permission
            )
            return await handler(Request(scope, receive))
        except HTTPError as exc:
            surface = ERROR_SURFACES.get(path)
            return surface.error(exc) if surface else http.error_response(exc)
        except Exception as exc:
            return await http.on_unexpected(Request(scope), exc)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.access.start()  # refuses a non-loopback bind without keys
                    await self.gateway.start()
                except BaseException as exc:  # the server logs the message and exits
                    await self.access.close()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.close()
                await self.access.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _method_not_allowed(methods: Guarded) -> Response:
    error = HTTPError("method not allowed; use " + ", ".join(sorted(methods)))
    error.status = 405
    error.type = "invalid_request_error"
    return http.error_response(error, {"allow": ", ".join(sorted(methods))})


def create_app(gateway: Gateway, *, host: str | None = None) -> GatewayApp:
    """The ASGI app; `host` is the address it is served on (default: `server.host`)."""
    return GatewayApp(gateway, host=host)
