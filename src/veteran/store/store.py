"""`Store`: the company-owned record of every call and its outcomes.

Synchronous on purpose: the CLI calls it directly, the gateway through `asyncio.to_thread` for
reads and feedback, and the capture writer owns its own thread (see writer.py).

A store carries one payload codec (codec.py), bound to its engine: the store APIs opened over
`store.engine` (runs, canaries, keys, memory, the semantic cache) read and write payload
through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from veteran.errors import NotFound, StoreError
from veteran.store import queries
from veteran.store.audit import append
from veteran.store.bulk import BulkInserter
from veteran.store.codec import PayloadCodec, bind_codec, codec_for
from veteran.store.engine import create_store_engine
from veteran.store.ids import new_id
from veteran.store.migrate import migrate
from veteran.store.queries import TrajectoryFilter
from veteran.store.rows import stored_row
from veteran.store.schema import feedback, provider_switches
from veteran.store.writer import CaptureWriter
from veteran.types import FORMAT_VERSION, Feedback, Trajectory, TrajectoryRecord, now


class Store:
    def __init__(self, engine: Engine, *, codec: PayloadCodec | None = None) -> None:
        self.engine = engine
        self.codec = codec if codec is not None else codec_for(engine)
        bind_codec(engine, self.codec)

    @classmethod
    def open(cls, url: str, *, sqlite_synchronous: str = "normal", upgrade: bool = True,
             codec: PayloadCodec | None = None) -> Store:
        engine = create_store_engine(url, sqlite_synchronous=sqlite_synchronous)
        store = cls(engine, codec=codec)
        if upgrade:
            try:
                migrate(engine)
            except Exception as exc:
                engine.dispose()
                raise StoreError(f"cannot open the store: {type(exc).__name__}: {exc}") from None
        return store

    def close(self) -> None:
        self.engine.dispose()

    def writer(
        self,
        *,
        batch_max: int = 512,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 1 << 30,
    ) -> CaptureWriter:
        """The capture writer; with `spool_dir`, captures wait there while the store is away."""
        return CaptureWriter(self.engine, batch_max=batch_max, spool_dir=spool_dir,
                             spool_max_bytes=spool_max_bytes, codec=self.codec)

    # reading

    def trajectory(self, id: str, *, team: str | None = None) -> Trajectory:
        """`NotFound` when absent, or (given `team`) another team's: both look the same."""
        with self.engine.connect() as conn:
            found = queries.get_trajectory(conn, self.codec, id, team)
        if found is None:
            raise NotFound(f"no trajectory {id!r}", param="id")
        return found

    def trajectories(
        self, f: TrajectoryFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Trajectory], str | None]:
        with self.engine.connect() as conn:
            return queries.list_trajectories(conn, self.codec, f, limit=limit, cursor=cursor)

    def count(self, f: TrajectoryFilter) -> int:
        """How many trajectories match `f`."""
        with self.engine.connect() as conn:
            return queries.count_trajectories(conn, f)

    def has_function(self, name: str) -> bool:
        """Whether any trajectory belongs to function `name`."""
        with self.engine.connect() as conn:
            return queries.function_exists(conn, name)

    def functions(self) -> list[str]:
        """The functions trajectories belong to (configured or not any more), sorted."""
        with self.engine.connect() as conn:
            return queries.function_names(conn)

    def export(self, f: TrajectoryFilter) -> Iterator[Trajectory]:
        with self.engine.connect() as conn:
            yield from queries.iter_trajectories(conn, self.codec, f)

    # writing outside the capture path

    def add_feedback(
        self,
        *,
        metric: str,
        value: Any,
        trajectory_id: str | None = None,
        episode_id: str | None = None,
        source: str | None = None,
        comment: str | None = None,
        team: str | None = None,
    ) -> Feedback:
        """Record feedback; `NotFound` when the trajectory or episode does not exist (given
        `team`, when it is not that team's)."""
        item = Feedback(
            id=new_id(), trajectory_id=trajectory_id, episode_id=episode_id, metric=metric,
            value=value, source=source, comment=comment, created_at=now(),
        )
        with self.engine.begin() as conn:
            if trajectory_id is not None and not queries.trajectory_exists(
                conn, trajectory_id, team
            ):
                raise NotFound(f"no trajectory {trajectory_id!r}", param="trajectory_id")
            if episode_id is not None and not queries.episode_exists(conn, episode_id, team):
                raise NotFound(f"no episode {episode_id!r}", param="episode_id")
            conn.execute(
                feedback.insert(),
                {
                    "id": item.id, "trajectory_id": trajectory_id, "episode_id": episode_id,
                    "metric": metric, "value": self.codec.encode_json(value), "source": source,
                    "comment": self.codec.encode_maybe(comment), "created_at": item.created_at,
                    "format_version": FORMAT_VERSION, "team": team,
                },
            )
        return item

    def spend_since(self, since: float) -> list[tuple[str | None, str | None, float]]:
        """(key id, team, cost) summed over priced trajectories made since `since`."""
        with self.engine.connect() as conn:
            return queries.spend_since(conn, since)

    # provider switches (`veteran providers disable NAME`)

    def disabled_providers(self) -> dict[str, str]:
        """Providers switched off by an operator: name -> reason ("" when none was given)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(provider_switches.c.name, provider_switches.c.reason)
                .where(provider_switches.c.disabled.is_(True))
            ).all()
        return {name: reason or "" for name, reason in rows}

    def switch_provider(self, name: str, *, disabled: bool, reason: str | None = None,
                        actor: str | None = None) -> None:
        """Switch a provider off (or back on); running gateways follow within a second. The
        audit chain records `actor` (default: this process's user and host)."""
        values = {"disabled": disabled, "reason": reason if disabled else None,
                  "changed_at": now()}
        with self.engine.begin() as conn:
            updated = conn.execute(
                provider_switches.update()
                .where(provider_switches.c.name == name).values(**values)
            ).rowcount
            if not updated:
                conn.execute(provider_switches.insert().values(name=name, **values))
            append(conn, actor=actor,
                   action="provider.disable" if disabled else "provider.enable", target=name,
                   details={"reason": reason} if disabled and reason else {})

    def insert(self, records: Iterable[TrajectoryRecord]) -> int:
        """Insert trajectories in one transaction (imports): all of them, or none."""
        rows, tags = [], []
        for record in records:
            rows.append(stored_row(record, self.codec))
            tags.extend(record.tag_rows())
        if not rows:
            return 0
        inserter = BulkInserter(self.engine)
        try:
            inserter.insert(rows, tags)
        finally:
            inserter.close()
        return len(rows)
