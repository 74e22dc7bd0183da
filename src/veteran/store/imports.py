"""Bring existing history in: OpenAI-format logs, one `{"request": ..., "response": ...}` per line.

Optional per line: `created_at` (ISO 8601 or UNIX seconds), `episode_id`, `tags` (string values).
A file is imported whole or not at all; an error names the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from veteran.errors import ImportRefused
from veteran.store.ids import new_id
from veteran.types import TrajectoryRecord, check_timestamp, now, parse_timestamp

ALLOWED = frozenset({"request", "response", "created_at", "episode_id", "tags"})


def parse_openai_log(lines: Iterable[bytes | str]) -> list[TrajectoryRecord]:
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ImportRefused(number, f"not valid JSON: {exc}") from None
        records.append(_record(number, item))
    return records


def _record(number: int, item: Any) -> TrajectoryRecord:
    if not isinstance(item, dict):
        raise ImportRefused(number, "must be an object with `request` and `response`")
    unknown = sorted(set(item) - ALLOWED)
    if unknown:
        raise ImportRefused(number, f"unknown fields: {', '.join(unknown)}")
    request, response = item.get("request"), item.get("response")
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list) or not (
        request["messages"]
    ):
        raise ImportRefused(number, "`request` must be a chat request with non-empty `messages`")
    if not isinstance(response, dict) or not (
        isinstance(response.get("choices"), list) or "error" in response
    ):
        raise ImportRefused(number, "`response` must be a chat completion (with `choices`)")
    tags = item.get("tags") or {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ImportRefused(number, "`tags` must be an object of string values")
    episode_id = item.get("episode_id")
    if episode_id is not None and not isinstance(episode_id, str):
        raise ImportRefused(number, "`episode_id` must be a string")
    failed = "error" in response and not response.get("choices")
    model = response.get("model") or request.get("model")
    created_at = _time(number, item.get("created_at"))
    return TrajectoryRecord(
        id=new_id(created_at),
        episode_id=episode_id or new_id(),
        request=request,
        response=None if failed else response,
        error=str(response["error"]) if failed else None,
        status="error" if failed else "ok",
        created_at=created_at,
        provider="import",
        model=model if isinstance(model, str) else None,
        stream=bool(request.get("stream")),
        usage=response.get("usage") if isinstance(response.get("usage"), dict) else None,
        tags={"source": "import", **tags},
    )


def _time(number: int, value: Any) -> float:
    if value is None:
        return now()
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return check_timestamp(float(value))
        if isinstance(value, str):
            return parse_timestamp(value)
    except ValueError:
        pass
    raise ImportRefused(
        number, "`created_at` must be ISO 8601 with a time zone, or UNIX seconds, 1970-9999"
    )
