"""`POST /v1/policy/test` and `explain_policy` (which `veteran policy test` calls in-process):
what the company's rules would do to a request, without calling its model or storing anything
(a rule's classifier is called, and captured, as every call is).

The rules see the caller as a chat call would: the key's team and key id, never ones the body
names, so a key can only test what its own requests would become, and learns nothing of what
another team's would. Hence the permission: any role that may call models may call it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from veteran.access import principal_of
from veteran.config import Config
from veteran.errors import BadRequest
from veteran.gateway.core import Gateway
from veteran.gateway.http import json_response, read_json_object
from veteran.gateway.validate import check_chat, parse_tags

FIELDS = frozenset({"text", "messages", "model", "tags"})


def sample_request(config: Config, text: str | None = None,
                   messages: list[dict[str, Any]] | None = None,
                   model: str | None = None) -> dict[str, Any]:
    """The chat request a client would send: `text` as one user message (or `messages`), to
    `model` (default: the config's first function). `BadRequest` when it could not be sent."""
    if model is None:
        if not config.functions:
            raise BadRequest("`model` is required: veteran.toml has no functions",
                             param="model")
        model = next(iter(config.functions))
    if messages is None:
        messages = [{"role": "user", "content": text}]
    body = {"model": model, "messages": messages}
    check_chat(body)
    return body


def parse_test(body: dict[str, Any]) -> dict[str, Any]:
    """`explain_policy`'s arguments from a `POST /v1/policy/test` body."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}", param=unknown[0])
    text, messages = body.get("text"), body.get("messages")
    if (text is None) == (messages is None):
        raise BadRequest("give exactly one of `text` and `messages`", param="text")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise BadRequest("`text` must be a non-empty string", param="text")
    if messages is not None and (not isinstance(messages, list) or not messages):
        raise BadRequest("`messages` must be a non-empty list", param="messages")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise BadRequest("`model` must be a function name or PROVIDER/MODEL", param="model")
    tags = body.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise BadRequest("`tags` must be an object of string values", param="tags")
    try:
        tags = parse_tags(None, tags)
    except BadRequest as exc:
        raise BadRequest(exc.message, param="tags") from None
    return {"text": text, "messages": messages, "model": model, "tags": tags}


async def explain_policy(gateway: Gateway, *, text: str | None = None,
                         messages: list[dict[str, Any]] | None = None,
                         model: str | None = None, tags: dict[str, str] | None = None,
                         team: str | None = None, key_id: str | None = None) -> dict[str, Any]:
    """What the rules do to `text` (or `messages`) sent to `model` with `tags` by `team`'s key
    `key_id`: the findings, the decisions in order, the `x-veteran-policy` value (`header`), the
    route, what the provider would see and what would be stored (`PolicyHook.explain`).
    `BadRequest` (or `NotFound` for an unknown model) when the request could not be sent."""
    body = sample_request(gateway.config, text, messages, model)
    call = gateway.prepare(body, tags=parse_tags(None, tags or {}), recall=False)
    call.record.team, call.record.key_id = team, key_id
    return await gateway.policy.explain(call)


async def policy_test(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    asked = parse_test(await read_json_object(request, gateway.max_body))
    principal = principal_of(request.scope)
    return json_response(await explain_policy(gateway, **asked, team=principal.team,
                                              key_id=principal.key_id))
