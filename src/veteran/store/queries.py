"""Reading trajectories back, and writing feedback. Every value reaches SQL as a bound parameter;
payload columns are decoded through the store's codec (codec.py) on the way out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, exists, func, or_, select
from sqlalchemy.sql import Select

from veteran.errors import BadRequest
from veteran.store.codec import PayloadCodec
from veteran.store.ids import id_floor, id_ms
from veteran.store.rows import DecodedRow
from veteran.store.schema import feedback, trajectories, trajectory_tags
from veteran.types import Feedback, Trajectory

FULL_ONLY = ("request", "response", "attempts", "context")  # large: read one at a time

# The tags that mark a call made by an evaluation: `veteran.evals` puts them on every call it
# makes (a suite's samples `eval_run`, `eval_suite`, `eval_sample`; judges, pairwise judges and
# canaries also `eval_role`), and a trajectory carrying any of them is an evaluation call.
# Test inputs, judge verdicts and canary probes must never become training rows by accident,
# so curation and suites built from trajectories leave such calls out (`TrajectoryFilter.evals`).
EVAL_RUN, EVAL_SUITE, EVAL_SAMPLE, EVAL_ROLE = "eval_run", "eval_suite", "eval_sample", "eval_role"
EVAL_TAGS: tuple[str, ...] = (EVAL_RUN, EVAL_SUITE, EVAL_SAMPLE, EVAL_ROLE)
SUMMARY = [c for c in trajectories.c if c.name not in FULL_ONLY]
CURSOR_VERSION = 2
MAX_LIMIT = 1000


@dataclass
class TrajectoryFilter:
    function: str | None = None
    variant: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    metric: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    team: str | None = None  # only this team's trajectories (an API key's scope); None: all
    # Evaluation calls (a tag of EVAL_TAGS): None keeps them, False leaves them out, True keeps
    # only them (to count what was left out).
    evals: bool | None = None


def encode_cursor(id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([CURSOR_VERSION, id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, id = orjson.loads(raw)
        if version == CURSOR_VERSION and isinstance(id, str):
            return id
    except (binascii.Error, ValueError, TypeError):
        pass
    raise BadRequest("cursor is not valid; pass the next_cursor of a previous page", param="cursor")


def _filtered(stmt: Select[Any], f: TrajectoryFilter) -> Select[Any]:
    t = trajectories.c
    for column, value in (
        ("function", f.function), ("variant", f.variant), ("status", f.status), ("team", f.team)
    ):
        if value is not None:
            stmt = stmt.where(t[column] == value)
    # Time bounds: a range on the primary key (ids are time-ordered) narrows the scan, the
    # exact comparison on created_at decides.
    if f.since is not None:
        stmt = stmt.where(t.id >= id_floor(id_ms(f.since)), t.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(t.id < id_floor(id_ms(f.until) + 1), t.created_at < f.until)
    for key, value in f.tags.items():
        tt = trajectory_tags.c
        stmt = stmt.where(
            exists().where(tt.trajectory_id == t.id, tt.key == key, tt.value == value)
        )
    if f.evals is not None:
        tt = trajectory_tags.c  # (trajectory_id, key) is the primary key: one index probe
        marked = exists().where(tt.trajectory_id == t.id, tt.key.in_(EVAL_TAGS))
        stmt = stmt.where(marked if f.evals else ~marked)
    if f.metric is not None:
        fb = feedback.c
        found = exists().where(
            fb.metric == f.metric, or_(fb.trajectory_id == t.id, fb.episode_id == t.episode_id)
        )
        stmt = stmt.where(found.where(fb.team == f.team) if f.team is not None else found)
    return stmt


def list_trajectories(
    conn: Connection, codec: PayloadCodec, f: TrajectoryFilter, *, limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Trajectory], str | None]:
    """One page, newest first, and the cursor of the next page (None on the last)."""
    t = trajectories.c
    stmt = _filtered(select(*SUMMARY), f)
    if cursor is not None:
        stmt = stmt.where(t.id < decode_cursor(cursor))
    stmt = stmt.order_by(t.id.desc()).limit(limit + 1)
    rows = conn.execute(stmt).all()
    page = [Trajectory.from_row(DecodedRow(row, codec), full=False) for row in rows[:limit]]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return page, next_cursor


def count_trajectories(conn: Connection, f: TrajectoryFilter) -> int:
    """How many trajectories match (one COUNT over the ids: no bodies are read)."""
    inner = _filtered(select(trajectories.c.id), f).subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


EXPORT_BATCH = 500  # trajectories read, and their feedback fetched, per query


def iter_trajectories(
    conn: Connection, codec: PayloadCodec, f: TrajectoryFilter
) -> Iterator[Trajectory]:
    """Every matching trajectory in full, with its feedback, oldest first (for exports). Rows
    come in batches of EXPORT_BATCH, with one feedback query per batch."""
    t = trajectories.c
    stmt = _filtered(select(trajectories), f).order_by(t.id)
    result = conn.execution_options(yield_per=EXPORT_BATCH).execute(stmt)
    for rows in result.partitions(EXPORT_BATCH):
        batch = [Trajectory.from_row(DecodedRow(row, codec), full=True) for row in rows]
        found = feedback_for_batch(conn, codec, batch, f.team)
        for trajectory in batch:
            trajectory.feedback = found[trajectory.id]
            yield trajectory


def get_trajectory(
    conn: Connection, codec: PayloadCodec, id: str, team: str | None = None
) -> Trajectory | None:
    """The trajectory in full, with its feedback; None when absent (or, given `team`, another
    team's)."""
    stmt = select(trajectories).where(trajectories.c.id == id)
    if team is not None:
        stmt = stmt.where(trajectories.c.team == team)
    row = conn.execute(stmt).first()
    if row is None:
        return None
    trajectory = Trajectory.from_row(DecodedRow(row, codec), full=True)
    trajectory.feedback = feedback_for_batch(conn, codec, [trajectory], team)[trajectory.id]
    return trajectory


def feedback_for_batch(
    conn: Connection, codec: PayloadCodec, batch: list[Trajectory], team: str | None = None
) -> dict[str, list[Feedback]]:
    """The feedback on each trajectory of `batch` or on its episode (by trajectory id, oldest
    first), in one query. Episode ids are the client's: given `team`, only that team's."""
    fb = feedback.c
    ids = {t.id for t in batch}
    episodes = {t.episode_id for t in batch}
    stmt = (
        select(feedback)
        .where(or_(fb.trajectory_id.in_(ids), fb.episode_id.in_(episodes)))
        .order_by(fb.created_at, fb.id)
    )
    if team is not None:
        stmt = stmt.where(fb.team == team)
    rows = [_feedback(row._mapping, codec) for row in conn.execute(stmt)]
    by_trajectory: dict[str | None, list[int]] = {}
    by_episode: dict[str | None, list[int]] = {}
    for i, item in enumerate(rows):
        by_trajectory.setdefault(item.trajectory_id, []).append(i)
        by_episode.setdefault(item.episode_id, []).append(i)
    return {
        t.id: [rows[i] for i in sorted({*by_trajectory.get(t.id, ()),
                                         *by_episode.get(t.episode_id, ())})]
        for t in batch
    }


def _feedback(m: Any, codec: PayloadCodec) -> Feedback:
    return Feedback(
        id=m["id"], trajectory_id=m["trajectory_id"], episode_id=m["episode_id"],
        metric=m["metric"], value=codec.decode_json(m["value"]), source=m["source"],
        comment=codec.decode_maybe(m["comment"]), created_at=m["created_at"],
    )


def trajectory_exists(conn: Connection, id: str, team: str | None = None) -> bool:
    stmt = select(trajectories.c.id).where(trajectories.c.id == id)
    if team is not None:
        stmt = stmt.where(trajectories.c.team == team)
    return conn.execute(stmt).first() is not None


def episode_exists(conn: Connection, episode_id: str, team: str | None = None) -> bool:
    stmt = select(trajectories.c.id).where(trajectories.c.episode_id == episode_id)
    if team is not None:
        stmt = stmt.where(trajectories.c.team == team)
    return conn.execute(stmt.limit(1)).first() is not None



def function_exists(conn: Connection, name: str) -> bool:
    """Whether any trajectory belongs to function `name` (stops at the first; no index on
    `function`, see schema.py: a name never captured reads the table, an error path)."""
    t = trajectories.c
    return conn.execute(select(t.id).where(t.function == name).limit(1)).first() is not None


def function_names(conn: Connection) -> list[str]:
    """Every function some trajectory belongs to, sorted (reads the table: for error messages
    and imports, never per request)."""
    t = trajectories.c
    stmt = select(t.function).where(t.function.is_not(None)).distinct()
    return sorted(name for (name,) in conn.execute(stmt))


def spend_since(conn: Connection, since: float) -> list[tuple[str | None, str | None, float]]:
    """(key id, team, cost) summed over the priced trajectories made since `since` by a key or a
    team (the limiter's day so far, read once when a gateway starts)."""
    t = trajectories.c
    stmt = (
        select(t.key_id, t.team, func.sum(t.cost))
        .where(t.id >= id_floor(id_ms(since)), t.created_at >= since, t.cost.is_not(None))
        .where((t.key_id.is_not(None)) | (t.team.is_not(None)))
        .group_by(t.key_id, t.team)
    )
    return [(key_id, team, float(cost)) for key_id, team, cost in conn.execute(stmt)]
