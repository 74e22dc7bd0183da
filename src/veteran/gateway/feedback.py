"""`POST /v1/feedback`: an outcome for a trajectory or an episode, checked against its metric.

Feedback is stored as trajectories are: a comment, a label and a demonstration (which becomes
training data) hold placeholders where the company's storage redaction hides values
(`seal_feedback`)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from veteran.access import principal_of
from veteran.config import Config, MetricConfig
from veteran.errors import BadRequest
from veteran.gateway.core import Gateway
from veteran.gateway.http import json_response, read_json_object
from veteran.policies import Detector, Masking, Vault, map_request

FIELDS = frozenset({"trajectory_id", "episode_id", "metric", "value", "source", "comment"})


def check_value(name: str, metric: MetricConfig, value: Any) -> Any:
    """The value if it fits the metric's declared type; BadRequest saying why otherwise."""
    ok: bool
    if metric.type == "boolean":
        ok = isinstance(value, bool)
    elif metric.type == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif metric.type == "label":
        ok = isinstance(value, str) and bool(value)
        if ok and metric.labels is not None and value not in metric.labels:
            raise BadRequest(
                f"metric {name!r} accepts the labels {', '.join(metric.labels)}", param="value"
            )
    elif metric.type == "comment":
        ok = isinstance(value, str) and bool(value)
    else:  # demonstration: the answer that should have been given
        ok = (isinstance(value, str) and bool(value)) or (
            isinstance(value, dict) and ("content" in value or "tool_calls" in value)
        )
    if not ok:
        expected = {
            "boolean": "true or false",
            "float": "a finite number",
            "label": "a non-empty string",
            "comment": "a non-empty string",
            "demonstration": "a string or an assistant message object",
        }[metric.type]
        raise BadRequest(f"metric {name!r} is of type {metric.type}: value must be {expected}",
                         param="value")
    return value


def parse_feedback(body: dict[str, Any], metrics: dict[str, MetricConfig]) -> dict[str, Any]:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}", param=unknown[0])
    trajectory_id, episode_id = body.get("trajectory_id"), body.get("episode_id")
    if (trajectory_id is None) == (episode_id is None):
        raise BadRequest("give exactly one of trajectory_id and episode_id", param="trajectory_id")
    for key in ("trajectory_id", "episode_id", "source", "comment"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise BadRequest(f"`{key}` must be a string", param=key)
    if body.get("source") is not None and len(body["source"]) > 128:
        raise BadRequest("`source` is longer than 128 characters", param="source")
    name = body.get("metric")
    if not isinstance(name, str) or name not in metrics:
        declared = ", ".join(sorted(metrics)) or "none"
        raise BadRequest(f"unknown metric {name!r}; declared metrics: {declared}", param="metric")
    metric = metrics[name]
    if metric.level == "episode" and episode_id is None:
        raise BadRequest(f"metric {name!r} is episode-level: give episode_id", param="episode_id")
    if metric.level == "trajectory" and trajectory_id is None:
        raise BadRequest(f"metric {name!r} is trajectory-level: give trajectory_id",
                         param="trajectory_id")
    if "value" not in body:
        raise BadRequest("`value` is required", param="value")
    return {
        "metric": name,
        "value": check_value(name, metric, body["value"]),
        "trajectory_id": trajectory_id,
        "episode_id": episode_id,
        "source": body.get("source"),
        "comment": body.get("comment"),
    }


def kept_out(config: Config, detector: Detector) -> frozenset[str]:
    """Every entity a call may keep out of storage: the workspace's and each function's
    redaction (storage, or provider, which storage follows) and the redact rules'. Feedback is
    sealed by all of them: which function its trajectory or episode belongs to is not read."""
    settings = [config.redaction(None), *(config.redaction(f) for f in config.functions)]
    entities = {e for s in settings if s.storage or s.provider for e in s.entities}
    for rule in config.policies:
        if rule.action == "redact":
            entities.update(rule.entities or rule.match.entities or detector.entities())
    return frozenset(entities)


def seal_feedback(fields: dict[str, Any], config: Config, detector: Detector
                  ) -> dict[str, Any]:
    """`parse_feedback`'s fields as stored: what `config` keeps out of storage (`kept_out`),
    found in the comment and in a text value (a label, a comment, a demonstration's content
    and tool-call arguments), replaced by placeholders."""
    entities = kept_out(config, detector)
    if not entities:
        return fields
    masking = Masking(Vault())

    def hide(text: str) -> str:
        findings = detector.find(text, entities)
        return masking.mask(text, findings) if findings else text

    value, comment = fields["value"], fields["comment"]
    if isinstance(value, str):
        value = hide(value)
    elif isinstance(value, dict):  # an assistant message
        value = map_request({"messages": [value]}, hide)["messages"][0]
    return {**fields, "value": value, "comment": hide(comment) if comment else comment}


async def post_feedback(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    body = await read_json_object(request, gateway.max_body)
    fields = seal_feedback(parse_feedback(body, gateway.config.metrics), gateway.config,
                           gateway.policy.detector)
    team = principal_of(request.scope).team  # only the key's team's trajectories and episodes
    item = await asyncio.to_thread(lambda: gateway.store.add_feedback(**fields, team=team))
    return json_response(item.model_dump(mode="json"))
