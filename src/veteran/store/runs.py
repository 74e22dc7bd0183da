"""Stored eval runs: `eval_runs` and `eval_results` (the runner is `veteran.evals.runner`).

A result is one (sample, variant, epoch): the output, every grader's score, latency and cost.
Results are committed in batches as they finish, so an interrupted run keeps what it finished
and a resumed run asks `done()` which keys to skip. Outputs and scores (graders' explanations
quote the output) are payload: they pass the store's codec. A run's config (the suite as run)
is the company's settings, not what people said, and stays plain.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import Engine, func, select

from veteran.errors import NotFound
from veteran.store.codec import PayloadCodec, codec_for
from veteran.store.ids import new_id
from veteran.store.schema import eval_results, eval_runs
from veteran.types import now

RunStatus = Literal["running", "finished", "failed"]
Key = tuple[str, str, int]  # (sample_id, variant, epoch)
RESULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: str
    suite: str
    status: str
    config: dict[str, Any]
    started_at: float
    finished_at: float | None
    results: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "suite": self.suite, "status": self.status,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "results": self.results, "config": self.config}


@dataclass(slots=True)
class Result:
    sample_id: str
    variant: str
    epoch: int
    output: dict[str, Any]  # text, tool_calls, error, metadata (the sample's, for slices)
    scores: dict[str, dict[str, Any]]  # grader -> {value, passed, label, explanation} or error
    latency_ms: float | None = None
    cost: float | None = None
    cached: bool = False
    trajectory_id: str | None = None
    created_at: float = field(default_factory=now)

    @property
    def key(self) -> Key:
        return (self.sample_id, self.variant, self.epoch)

    def row(self, run_id: str, codec: PayloadCodec) -> dict[str, Any]:
        return {
            "run_id": run_id, "sample_id": self.sample_id, "variant": self.variant,
            "epoch": self.epoch,
            "output": codec.encode_json({"version": RESULT_VERSION, **self.output}),
            "scores": codec.encode_json(self.scores), "latency_ms": self.latency_ms,
            "cost": self.cost, "cached": self.cached, "trajectory_id": self.trajectory_id,
            "created_at": self.created_at,
        }


class Runs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.codec = codec_for(engine)

    def create(self, suite: str, config: dict[str, Any]) -> str:
        run_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(eval_runs.insert().values(
                id=run_id, suite=suite, status="running", config=orjson.dumps(config).decode(),
                started_at=now(), finished_at=None,
            ))
        return run_id

    def set_status(self, run_id: str, status: RunStatus) -> None:
        finished = now() if status != "running" else None
        with self.engine.begin() as conn:
            conn.execute(eval_runs.update().where(eval_runs.c.id == run_id)
                         .values(status=status, finished_at=finished))

    def get(self, run_id: str) -> RunInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(eval_runs).where(eval_runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"no eval run {run_id!r}", param="run")
            count = conn.execute(select(func.count()).select_from(eval_results)
                                 .where(eval_results.c.run_id == run_id)).scalar_one()
        return _info(row, count)

    def list(self, suite: str | None = None, *, limit: int = 50) -> builtins.list[RunInfo]:
        counts = (select(eval_results.c.run_id, func.count().label("n"))
                  .group_by(eval_results.c.run_id).subquery())
        query = (select(eval_runs, counts.c.n).outerjoin(counts, counts.c.run_id == eval_runs.c.id)
                 .order_by(eval_runs.c.id.desc()).limit(limit))
        if suite is not None:
            query = query.where(eval_runs.c.suite == suite)
        with self.engine.connect() as conn:
            return [_info(row, row.n or 0) for row in conn.execute(query)]

    def latest(self, suite: str, *, unfinished: bool = False) -> RunInfo | None:
        for info in self.list(suite, limit=1000):
            if not unfinished or info.status != "finished":
                return info
        return None

    def done(self, run_id: str) -> set[Key]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(eval_results.c.sample_id, eval_results.c.variant, eval_results.c.epoch)
                .where(eval_results.c.run_id == run_id)
            )
            return {(s, v, int(e)) for s, v, e in rows}

    def add(self, run_id: str, results: Iterable[Result]) -> int:
        rows = [r.row(run_id, self.codec) for r in results]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(eval_results.insert(), rows)
        return len(rows)

    def results(self, run_id: str) -> builtins.list[Result]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(eval_results).where(eval_results.c.run_id == run_id)
                .order_by(eval_results.c.sample_id, eval_results.c.variant, eval_results.c.epoch)
            ).all()
        out = []
        for row in rows:
            m = row._mapping
            output = self.codec.decode_json(m["output"])
            output.pop("version", None)
            out.append(Result(
                sample_id=m["sample_id"], variant=m["variant"], epoch=int(m["epoch"]),
                output=output, scores=self.codec.decode_json(m["scores"]),
                latency_ms=m["latency_ms"],
                cost=m["cost"], cached=bool(m["cached"]), trajectory_id=m["trajectory_id"],
                created_at=m["created_at"],
            ))
        return out


def _info(row: Any, count: int) -> RunInfo:
    m = row._mapping
    return RunInfo(id=m["id"], suite=m["suite"], status=m["status"],
                   config=orjson.loads(m["config"]), started_at=m["started_at"],
                   finished_at=m["finished_at"], results=int(count))
