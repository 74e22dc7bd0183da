"""The gateway: OpenAI- and Anthropic-compatible HTTP surfaces, routing to providers, and the
one call path every model call in veteran takes (`Gateway.call`, `Gateway.call_stream`).

Other rooms use these names only, never the modules behind them."""

from veteran.gateway.app import create_app
from veteran.gateway.call import (
    CLIENT_GONE,
    Answer,
    AnswerCache,
    AnswerStream,
    CachedAnswer,
    Call,
    CallHook,
    cost,
)
from veteran.gateway.core import Gateway, Job, poll_switches, running
from veteran.gateway.feedback import parse_feedback, seal_feedback
from veteran.gateway.live import follow_config, publish
from veteran.gateway.policy_api import explain_policy
from veteran.gateway.resilience import UPSTREAM_FAILURES
from veteran.gateway.routing import Route
from veteran.gateway.server import UVICORN_OPTIONS

__all__ = [
    "CLIENT_GONE",
    "UPSTREAM_FAILURES",
    "UVICORN_OPTIONS",
    "Answer",
    "AnswerCache",
    "AnswerStream",
    "CachedAnswer",
    "Call",
    "CallHook",
    "Gateway",
    "Job",
    "Route",
    "cost",
    "create_app",
    "explain_policy",
    "follow_config",
    "parse_feedback",
    "poll_switches",
    "publish",
    "running",
    "seal_feedback",
]
