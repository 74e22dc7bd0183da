"""Reading back: `GET /v1/trajectories`, `GET /v1/trajectories/{id}`, `GET /v1/models`,
`GET /healthz`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from veteran.access import principal_of
from veteran.errors import BadRequest
from veteran.gateway.core import Gateway
from veteran.gateway.http import json_response
from veteran.store import AuditLog, TrajectoryFilter
from veteran.store.queries import MAX_LIMIT
from veteran.types import parse_timestamp

STATUSES = ("ok", "error", "incomplete")
LIST_PARAMS = frozenset(
    {"function", "variant", "status", "since", "until", "metric", "tag", "limit", "cursor"}
)


def parse_time(value: str, param: str) -> float:
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise BadRequest(f"`{param}`: {exc}", param=param) from None


def parse_tag_filters(values: list[str]) -> dict[str, str]:
    tags = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadRequest("`tag` must look like key=value", param="tag")
        tags[key] = value
    return tags


def known_params(query: Mapping[str, str], known: frozenset[str]) -> None:
    """A 400 naming the query parameters a route does not take."""
    unknown = sorted(set(query) - known)
    if unknown:
        raise BadRequest(f"unknown query parameters: {', '.join(unknown)}", param=unknown[0])


def parse_limit(value: str | None) -> int:
    if value is None:
        return 50
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadRequest(f"`limit` must be an integer from 1 to {MAX_LIMIT}", param="limit")
    return int(value)


async def list_trajectories(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    q = request.query_params
    known_params(q, LIST_PARAMS)
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"`status` must be one of {', '.join(STATUSES)}", param="status")
    f = TrajectoryFilter(
        function=q.get("function"), variant=q.get("variant"), status=status,
        since=parse_time(q["since"], "since") if "since" in q else None,
        until=parse_time(q["until"], "until") if "until" in q else None,
        metric=q.get("metric"), tags=parse_tag_filters(q.getlist("tag")),
        team=principal_of(request.scope).team,
    )
    limit, cursor = parse_limit(q.get("limit")), q.get("cursor")
    page, next_cursor = await asyncio.to_thread(
        gateway.store.trajectories, f, limit=limit, cursor=cursor
    )
    return json_response({
        "object": "list",
        "data": [t.model_dump(mode="json", exclude_none=True) for t in page],
        "has_more": next_cursor is not None,
        "next_cursor": next_cursor,
    })


async def get_trajectory(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    team = principal_of(request.scope).team  # another team's id is a 404, like an unknown one
    trajectory = await asyncio.to_thread(
        lambda: gateway.store.trajectory(request.path_params["id"], team=team)
    )
    return json_response(trajectory.model_dump(mode="json"))


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "veteran-function"}
        for name in gateway.router.functions()
    ]
    models = {
        f"{name}/{model}" for name, p in gateway.providers.items()
        for model in p.settings.model_names()
    }
    models.update(
        variant.model for function in gateway.config.functions.values()
        for variant in function.variants.values()
    )
    data.extend(
        {"id": model, "object": "model", "created": 0, "owned_by": model.split("/", 1)[0]}
        for model in sorted(models)
    )
    return json_response({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    writer = gateway.writer
    return json_response({
        "status": "ok",
        "captured": writer.written,
        "capture_dropped": writer.dropped,
        "capture_batches": writer.batches,
        "capture_spooled": writer.spooled,  # waiting on disk for the store to come back
        "providers": sorted(gateway.providers),
        # closed | open (marked down) | half-open (next call probes) | disabled (by an operator)
        "provider_states": gateway.caller.states(),
    })


AUDIT_PARAMS = frozenset({"limit", "action", "before"})


async def list_audit(request: Request) -> Response:
    """`GET /v1/audit`: the newest entries of the audit chain (admin keys only), and whether
    the whole chain verifies."""
    gateway: Gateway = request.app.state.gateway
    q = request.query_params
    known_params(q, AUDIT_PARAMS)
    before = q.get("before")
    if before is not None and (not before.isdigit() or int(before) < 1):
        raise BadRequest("`before` must be a positive integer (an entry's `seq`)",
                         param="before")
    log, limit = AuditLog(gateway.store.engine), parse_limit(q.get("limit"))
    entries = await asyncio.to_thread(log.entries, limit=limit + 1, action=q.get("action"),
                                      before=None if before is None else int(before))
    return json_response({
        "object": "list",
        "data": [entry.to_json() for entry in entries[:limit]],
        "has_more": len(entries) > limit,  # the next page: `before` = the last `seq` here
    })
