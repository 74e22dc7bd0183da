"""Canary points in the store (`canary_points`): one per (suite, variant, grader) per canary run,
the time series a drop is judged against (`veteran.evals.canary`). Numbers and names only:
nothing here is payload.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, select

from veteran.store.ids import new_id
from veteran.store.schema import canary_points

HISTORY_WINDOW = 50  # earlier points a new one is judged against


@dataclass(frozen=True, slots=True)
class CanaryPoint:
    suite: str
    variant: str
    grader: str
    run_id: str
    created_at: float
    mean: float
    low: float
    high: float
    n: int
    baseline: float | None = None  # the history's mean (None: not enough history yet)
    allowed_drop: float | None = None
    alert: bool = False
    id: str = ""

    @property
    def drop(self) -> float | None:
        return None if self.baseline is None else self.baseline - self.mean

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "drop": self.drop}

    def describe(self) -> str:
        line = (f"{self.suite} {self.variant} {self.grader}: {self.mean:.4f} "
                f"[{self.low:.4f}, {self.high:.4f}] n={self.n}")
        if self.baseline is not None and self.allowed_drop is not None:
            line += f"; history {self.baseline:.4f}, allowed drop {self.allowed_drop:.4f}"
        return line + ("  ALERT" if self.alert else "")


class CanaryPoints:
    """The `canary_points` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, points: list[CanaryPoint]) -> list[CanaryPoint]:
        stored = [p if p.id else _with_id(p) for p in points]
        if stored:
            with self.engine.begin() as conn:
                conn.execute(canary_points.insert(), [asdict(p) for p in stored])
        return stored

    def history(self, suite: str, variant: str, grader: str, *,
                limit: int = HISTORY_WINDOW) -> list[CanaryPoint]:
        """The latest points of a series that did not alert, oldest first."""
        c = canary_points.c
        query = (select(canary_points)
                 .where(c.suite == suite, c.variant == variant, c.grader == grader,
                        c.alert.is_(False))
                 .order_by(c.created_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [_point(row) for row in reversed(conn.execute(query).all())]

    def series(self, suite: str, *, variant: str | None = None, grader: str | None = None,
               limit: int = 1000) -> list[CanaryPoint]:
        """A suite's points (alerting ones too), oldest first."""
        c = canary_points.c
        query = select(canary_points).where(c.suite == suite)
        if variant is not None:
            query = query.where(c.variant == variant)
        if grader is not None:
            query = query.where(c.grader == grader)
        query = query.order_by(c.created_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_point(row) for row in reversed(conn.execute(query).all())]

    def latest(self) -> list[CanaryPoint]:
        """Each series' latest point, over every suite."""
        c = canary_points.c
        last = (select(c.suite, c.variant, c.grader, func.max(c.created_at).label("at"))
                .group_by(c.suite, c.variant, c.grader).subquery())
        query = (select(canary_points).join(last, and_(
            c.suite == last.c.suite, c.variant == last.c.variant, c.grader == last.c.grader,
            c.created_at == last.c.at)).order_by(c.suite, c.variant, c.grader))
        with self.engine.connect() as conn:
            found = {(p.suite, p.variant, p.grader): p
                     for p in (_point(row) for row in conn.execute(query))}
        return list(found.values())

    def last_time(self, suite: str) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(canary_points.c.created_at))
                                 .where(canary_points.c.suite == suite)).scalar_one_or_none()
        return None if value is None else float(value)


def _with_id(point: CanaryPoint) -> CanaryPoint:
    values = asdict(point)
    values["id"] = new_id(point.created_at)
    return CanaryPoint(**values)


def _point(row: Any) -> CanaryPoint:
    m = row._mapping
    return CanaryPoint(
        suite=m["suite"], variant=m["variant"], grader=m["grader"], run_id=m["run_id"],
        created_at=m["created_at"], mean=m["mean"], low=m["low"], high=m["high"], n=int(m["n"]),
        baseline=m["baseline"], allowed_drop=m["allowed_drop"], alert=bool(m["alert"]),
        id=m["id"],
    )
