"""The shapes veteran captures and serves: trajectories and feedback, and memory's chunks.

`TrajectoryRecord` is what the gateway hands to the capture writer (a plain slotted dataclass:
it is built on every request). `Trajectory` and `Feedback` are the read side, served by the API
and written by exports; they carry `version` and upgrade older stored shapes on read.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, field_serializer

Status = Literal["ok", "error", "incomplete"]

# Version of the JSON shapes stored and exported (`request`, `response`, `tags`, feedback values).
FORMAT_VERSION = 1
MAX_TIMESTAMP = 253_402_300_800.0  # 10000-01-01T00:00:00Z


@dataclass(slots=True)
class TrajectoryRecord:
    id: str
    episode_id: str
    request: dict[str, Any]
    created_at: float
    function: str | None = None
    variant: str | None = None
    provider: str | None = None
    model: str | None = None
    stream: bool = False
    status: Status = "ok"
    response: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    usage: dict[str, Any] | None = None
    cost: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    team: str | None = None
    attempts: list[dict[str, Any]] | None = None
    context: dict[str, Any] | None = None  # memory chunks put into the prompt, or cache source
    cached: bool = False  # answered from the semantic cache
    key_id: str | None = None  # the API key's id, never the key
    # The company's rules applied to this call (policies): one entry per decision, e.g.
    # {"rule": "confidential", "action": "route", "to": "local"}; never a detected value.
    policy: list[dict[str, Any]] | None = None
    # What the upstream said answered (policies/handoff.py): model, system_fingerprint, and
    # whether that is a substitution or a new fingerprint.
    upstream: dict[str, Any] | None = None

    # Column order of `to_row`, the order the capture writer binds (see store/bulk.py).
    COLUMNS = (
        "id", "episode_id", "function", "variant", "provider", "model", "status", "error",
        "stream", "request", "response", "latency_ms", "ttft_ms", "prompt_tokens",
        "completion_tokens", "total_tokens", "cost", "tags", "created_at", "format_version",
        "team", "attempts", "key_id", "context", "cached", "policy", "upstream",
    )

    def to_row(self) -> tuple[Any, ...]:
        """The `trajectories` row, values in `COLUMNS` order (built on every captured call)."""
        usage = self.usage or {}
        return (
            self.id, self.episode_id, self.function, self.variant, self.provider, self.model,
            self.status, self.error, self.stream,
            orjson.dumps(self.request).decode(),
            orjson.dumps(self.response).decode() if self.response is not None else None,
            self.latency_ms, self.ttft_ms,
            _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")),
            _int(usage.get("total_tokens")), self.cost,
            orjson.dumps(self.tags).decode() if self.tags else None,
            self.created_at, FORMAT_VERSION, self.team,
            orjson.dumps(self.attempts).decode() if self.attempts else None,
            self.key_id,
            orjson.dumps(self.context).decode() if self.context else None,
            self.cached,
            orjson.dumps(self.policy).decode() if self.policy else None,
            orjson.dumps(self.upstream).decode() if self.upstream else None,
        )

    def tag_rows(self) -> list[tuple[str, str, str]]:
        """`trajectory_tags` rows: (trajectory_id, key, value)."""
        return [(self.id, k, v) for k, v in self.tags.items()]


def now() -> float:
    """UNIX seconds at microsecond precision: exactly what the API's ISO 8601 times show, so a
    time read from the API and sent back as `since`/`until` means the same instant."""
    return round(time.time(), 6)


def parse_timestamp(value: str) -> float:
    """UNIX seconds, or ISO 8601 with a time zone (`2026-11-26T10:00:00Z`); years 1970-9999."""
    try:
        return check_timestamp(float(value))
    except ValueError as exc:
        if "between" in str(exc):
            raise
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not ISO 8601 or UNIX seconds") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} needs a time zone (e.g. a trailing Z)")
    return check_timestamp(parsed.timestamp())


def check_timestamp(seconds: float) -> float:
    """`seconds` if it is a UNIX time from 1970 to 9999 (ids and indexes assume so)."""
    if not (math.isfinite(seconds) and 0 <= seconds < MAX_TIMESTAMP):
        raise ValueError(f"{seconds!r} is not a time between 1970 and 9999")
    return seconds


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Read(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_serializer("created_at", check_fields=False)
    def _iso(self, value: float) -> str:
        return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


class Feedback(_Read):
    object: Literal["feedback"] = "feedback"
    version: int = FORMAT_VERSION
    id: str
    trajectory_id: str | None
    episode_id: str | None
    metric: str
    value: Any
    source: str | None = None
    comment: str | None = None
    created_at: float


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Trajectory(_Read):
    object: Literal["trajectory"] = "trajectory"
    version: int = FORMAT_VERSION
    id: str
    episode_id: str
    function: str | None
    variant: str | None
    provider: str | None
    model: str | None
    status: Status
    error: str | None
    stream: bool
    latency_ms: float | None
    ttft_ms: float | None
    usage: Usage
    cost: float | None
    tags: dict[str, str]
    created_at: float
    team: str | None = None
    key_id: str | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] | None = None
    cached: bool = False
    context: dict[str, Any] | None = None
    policy: list[dict[str, Any]] | None = None
    upstream: dict[str, Any] | None = None
    feedback: list[Feedback] | None = None

    @classmethod
    def from_row(cls, row: Any, *, full: bool) -> Trajectory:
        m = row._mapping
        return cls(
            id=m["id"], episode_id=m["episode_id"], function=m["function"],
            variant=m["variant"], provider=m["provider"], model=m["model"],
            status=m["status"], error=m["error"], stream=bool(m["stream"]),
            latency_ms=m["latency_ms"], ttft_ms=m["ttft_ms"],
            usage=Usage(prompt_tokens=m["prompt_tokens"],
                        completion_tokens=m["completion_tokens"],
                        total_tokens=m["total_tokens"]),
            cost=m["cost"], tags=orjson.loads(m["tags"]) if m["tags"] else {},
            created_at=m["created_at"], team=m["team"], key_id=m["key_id"],
            request=orjson.loads(m["request"]) if full else None,
            response=orjson.loads(m["response"]) if full and m["response"] else None,
            attempts=orjson.loads(m["attempts"]) if full and m["attempts"] else None,
            cached=bool(m["cached"]),
            context=orjson.loads(m["context"]) if full and m["context"] else None,
            policy=orjson.loads(m["policy"]) if m["policy"] else None,
            upstream=orjson.loads(m["upstream"]) if m["upstream"] else None,
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a memory document: the unit that is embedded, indexed, searched and put into
    prompts (`veteran.memory`). Defined here, below both rooms, because the store keeps and
    returns chunks and memory makes and searches them."""

    id: str  # stable across re-ingests of unchanged content: f"{document_id}:{ordinal}"
    collection: str
    document_id: str
    source: str  # a path relative to what was ingested, or "trajectory:ID" for promoted memory
    ordinal: int  # position within its document, from 0
    text: str
    tokens: int  # counted with the embedder's tokenizer
    # heading path, page, char offsets, record fields, trajectory link...: filterable
    metadata: dict[str, Any] = field(default_factory=dict)
