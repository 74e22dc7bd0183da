"""The ASGI application: routes, error handlers, and the gateway's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from veteran.errors import HTTPError
from veteran.gateway import chat, feedback, http, reading
from veteran.gateway.core import Gateway


def create_app(gateway: Gateway) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.close()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
            Route("/v1/models", reading.list_models, methods=["GET"]),
            Route("/v1/feedback", feedback.post_feedback, methods=["POST"]),
            Route("/v1/trajectories", reading.list_trajectories, methods=["GET"]),
            Route("/v1/trajectories/{id}", reading.get_trajectory, methods=["GET"]),
            Route("/healthz", reading.healthz, methods=["GET"]),
        ],
        exception_handlers={
            HTTPError: http.on_http_error,
            HTTPException: http.on_starlette_error,
            Exception: http.on_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
