"""The audit chain: every act on the workspace, who did it and when, on a record nobody can
rewrite quietly (issue 15).

Each entry holds the SHA-256 of the one before (`prev`) and its own (`hash`), computed over its
place in the chain (`seq`, 1, 2, 3, ...), its time, actor, action, target and details. Changing
an entry changes its hash; deleting one leaves a gap in `seq`; moving or replacing one breaks
the `prev` of the entry after it. `verify` walks the chain and names the first entry where any
of that happened. What a chain cannot show by itself is its own end cut off, or itself rewritten
and re-hashed: `verify` prints the head (the last entry's number and hash), which a company
keeps elsewhere and gives back (`anchor`): the chain must still hold that entry, unchanged.

An entry is written in the same transaction as the act it records (a key made, a provider
switched off, a config published), so there is no act without its entry and no entry for an
act that failed. Writers take their place in turn: on PostgreSQL under a transaction-scoped
advisory lock, on SQLite under the write lock (the act's own write took it, or the append takes
it first with BEGIN IMMEDIATE); and `seq` is a
primary key the writer sets, so two writers that raced anyway would collide, not fork the chain.

Actions recorded so far: `key.create`, `key.revoke`, `provider.disable`, `provider.enable`,
`config.publish` (a reload, promotion, rollback, drill or edit: its `source` says which),
`trajectories.export`, `trajectories.import`, `data.export`. The actor is the operating-system
user and host of the command (`alice@build-7`), or `key:ID` for a call made with an API key.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select, text

from veteran.store.schema import audit_log
from veteran.types import now

GENESIS = "0" * 64  # the `prev` of the first entry
_LOCK_ID = 0x7665746175646974  # "vetaudit": PostgreSQL's advisory lock for appends


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    prev: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action,
                "target": self.target, "details": self.details, "prev": self.prev,
                "hash": self.hash}


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """What `verify` found: `ok`, how many entries it read, the head, and the first break."""

    ok: bool
    entries: int
    head: tuple[int, str] | None  # (seq, hash) of the last entry
    broken_at: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries,
                "head": None if self.head is None else {"seq": self.head[0],
                                                        "hash": self.head[1]},
                "broken_at": self.broken_at, "reason": self.reason}


def local_actor() -> str:
    """The operating-system user and host running this process: who acts from the CLI."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def entry_hash(seq: int, at: float, actor: str, action: str, target: str | None,
               details: str, prev: str) -> str:
    """The SHA-256 of an entry: its fields, one a line, `details` as stored (JSON, keys
    sorted), and the hash before it."""
    material = "\n".join((str(seq), repr(float(at)), actor, action, target or "", details, prev))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def append(conn: Connection, *, actor: str | None, action: str, target: str | None = None,
           details: Mapping[str, Any] | None = None) -> AuditEntry:
    """Add an entry at the end of the chain, in `conn`'s transaction (the act's own); `actor`
    None: this process's user and host (`local_actor`)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    elif conn.dialect.name == "sqlite" and not _in_transaction(conn):
        # nothing written yet in this transaction (an export's entry): take the write lock
        # before reading the end of the chain (Python's sqlite3 begins only at the first write)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    last = conn.execute(
        select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (1, GENESIS) if last is None else (int(last.seq) + 1, str(last.hash))
    fields = dict(details or {})
    encoded = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()
    at = now()
    actor, target = (actor or local_actor())[:200], None if target is None else target[:256]
    digest = entry_hash(seq, at, actor, action, target, encoded, prev)
    conn.execute(audit_log.insert().values(seq=seq, at=at, actor=actor, action=action,
                                           target=target, details=encoded, prev=prev,
                                           hash=digest))
    return AuditEntry(seq, at, actor, action, target, fields, prev, digest)


def _in_transaction(conn: Connection) -> bool:
    driver = conn.connection.driver_connection
    return driver is not None and bool(driver.in_transaction)


class AuditLog:
    """Reading and checking the chain (appends go through `append`, inside the act)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, *, action: str, target: str | None = None,
               details: Mapping[str, Any] | None = None, actor: str | None = None
               ) -> AuditEntry:
        """An entry for an act that writes nothing else to the store (an export)."""
        with self.engine.begin() as conn:
            return append(conn, actor=actor, action=action, target=target, details=details)

    def entries(self, *, limit: int = 50, action: str | None = None,
                before: int | None = None) -> list[AuditEntry]:
        """The newest entries first (`before`: only those with a smaller `seq`)."""
        query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        if before is not None:
            query = query.where(audit_log.c.seq < before)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def verify(self, *, anchor: tuple[int, str] | None = None, batch: int = 5000) -> AuditCheck:
        """Walk the chain from its first entry; the first that was changed, removed, moved or
        replaced, if any. With `anchor` (a head kept elsewhere: seq and hash), the chain must
        still hold that entry, unchanged: a chain cut short, or rewritten up to there and
        re-hashed, fails."""
        check = self._walk(batch)
        if not check.ok or anchor is None:
            return check
        seq, digest = anchor
        with self.engine.connect() as conn:
            found = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).first()
        if found is None:
            return AuditCheck(False, check.entries, check.head, seq,
                              f"entry {seq}, the head kept outside, is gone: the chain was cut "
                              f"short to {check.entries} entries")
        if found.hash != digest:
            return AuditCheck(False, check.entries, check.head, seq,
                              f"entry {seq} is not the one kept outside: the chain was "
                              "rewritten up to there")
        return check

    def _walk(self, batch: int) -> AuditCheck:
        expected_seq, expected_prev, count = 1, GENESIS, 0
        head: tuple[int, str] | None = None
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(
                    select(audit_log).where(audit_log.c.seq >= expected_seq)
                    .order_by(audit_log.c.seq).limit(batch)
                ).all()
                for row in rows:
                    seq = int(row.seq)
                    if seq != expected_seq:
                        missing = (f"entry {expected_seq} is missing" if seq == expected_seq + 1
                                   else f"entries {expected_seq} to {seq - 1} are missing")
                        return AuditCheck(False, count, head, expected_seq,
                                          f"{missing}: the chain jumps to {seq}")
                    if row.prev != expected_prev:
                        return AuditCheck(False, count, head, seq,
                                          f"entry {seq} does not follow entry {seq - 1}: it "
                                          "was moved, or one before it was replaced")
                    digest = entry_hash(seq, row.at, row.actor, row.action, row.target,
                                        row.details, row.prev)
                    if digest != row.hash:
                        return AuditCheck(False, count, head, seq,
                                          f"entry {seq} was changed: its content does not "
                                          "match its hash")
                    count += 1
                    head = (seq, row.hash)
                    expected_seq, expected_prev = seq + 1, row.hash
                if len(rows) < batch:
                    return AuditCheck(True, count, head)


def _entry(row: Any) -> AuditEntry:
    details = orjson.loads(row.details)
    return AuditEntry(int(row.seq), float(row.at), row.actor, row.action, row.target,
                      details if isinstance(details, dict) else {}, row.prev, row.hash)
