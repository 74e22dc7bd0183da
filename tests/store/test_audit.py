"""The audit chain (issue 15): the acts it records, in the act's own transaction; `verify`
finding an edited, deleted, reordered or replaced entry; concurrent writers; on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from tests.conftest import in_threads
from veteran.access import create_key, revoke_key
from veteran.errors import NotFound
from veteran.store import AuditLog, Store
from veteran.store.audit import GENESIS, entry_hash
from veteran.store.configs import ConfigVersions
from veteran.store.schema import audit_log


def acts(store: Store) -> None:
    """One of each act the store records, by two actors."""
    record, _ = create_key(store, team="ops", role="admin", name="deploy", actor="alice@a")
    store.switch_provider("openai", disabled=True, reason="outage", actor="bob@b")
    store.switch_provider("openai", disabled=False, actor="bob@b")
    ConfigVersions(store.engine).publish("[server]\n", "promote", actor="alice@a")
    ConfigVersions(store.engine).publish("[server]\n", "reload", actor="alice@a")  # not new
    revoke_key(store, record.id, actor="alice@a")
    revoke_key(store, record.id, actor="alice@a")  # again: a no-op, not recorded again
    AuditLog(store.engine).record(actor="carol@c", action="data.export", target="triage",
                                  details={"format": "parquet", "counts": {"sft": 3}})


def test_each_act_is_recorded_once_in_order_and_the_chain_verifies(store: Store) -> None:
    acts(store)
    log = AuditLog(store.engine)
    entries = list(reversed(log.entries()))
    assert [(e.seq, e.actor, e.action) for e in entries] == [
        (1, "alice@a", "key.create"), (2, "bob@b", "provider.disable"),
        (3, "bob@b", "provider.enable"), (4, "alice@a", "config.publish"),
        (5, "alice@a", "key.revoke"), (6, "carol@c", "data.export")]
    assert entries[0].details == {"name": "deploy", "team": "ops", "role": "admin",
                                  "prefix": entries[0].details["prefix"]}
    assert entries[1].details == {"reason": "outage"} and entries[1].target == "openai"
    assert entries[3].target == "version 1" and entries[3].details["source"] == "promote"
    assert entries[0].prev == GENESIS
    assert all(e.prev == before.hash for before, e in zip(entries, entries[1:], strict=False))
    check = log.verify()
    assert check.ok and check.entries == 6 and check.head == (6, entries[-1].hash)
    assert [e.action for e in log.entries(action="provider.disable")] == ["provider.disable"]
    assert [e.seq for e in log.entries(limit=2, before=5)] == [4, 3]


def test_a_failed_act_leaves_no_entry(store: Store) -> None:
    with pytest.raises(NotFound):
        revoke_key(store, "no-such-key", actor="alice@a")
    with pytest.raises(Exception):  # noqa: B017 (the act's own error: a team name it refuses)
        create_key(store, team="no spaces allowed", role="app", actor="alice@a")
    assert AuditLog(store.engine).entries() == []
    assert AuditLog(store.engine).verify().head is None


def test_an_edited_entry_is_found(store: Store) -> None:
    acts(store)
    with store.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3)
                     .values(actor="mallory@m"))
    check = AuditLog(store.engine).verify()
    assert (check.ok, check.broken_at, check.entries) == (False, 3, 2)
    assert "entry 3 was changed" in (check.reason or "")


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(store: Store) -> None:
    acts(store)
    with store.engine.begin() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.seq == 2)).one()
        forged = entry_hash(2, row.at, "mallory@m", row.action, row.target, row.details,
                            row.prev)
        conn.execute(update(audit_log).where(audit_log.c.seq == 2)
                     .values(actor="mallory@m", hash=forged))
    check = AuditLog(store.engine).verify()
    assert (check.ok, check.broken_at) == (False, 3)
    assert "does not follow entry 2" in (check.reason or "")


def test_a_deleted_entry_is_found(store: Store) -> None:
    acts(store)
    with store.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 4))
    check = AuditLog(store.engine).verify()
    assert (check.ok, check.broken_at) == (False, 4)
    assert "entry 4 is missing" in (check.reason or "")


def test_reordered_entries_are_found(store: Store) -> None:
    acts(store)
    with store.engine.begin() as conn:
        two, five = (conn.execute(select(audit_log).where(audit_log.c.seq == n)).one()
                     for n in (2, 5))
        for seq, row in ((2, five), (5, two)):  # each moved whole to the other's place
            conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(
                at=row.at, actor=row.actor, action=row.action, target=row.target,
                details=row.details, prev=row.prev, hash=row.hash))
    check = AuditLog(store.engine).verify()
    assert (check.ok, check.broken_at) == (False, 2)


def test_concurrent_writers_make_one_chain(store: Store) -> None:
    log = AuditLog(store.engine)

    def work(n: int) -> None:
        for i in range(15):
            if i % 3 == 0:
                store.switch_provider(f"p{n}", disabled=i % 2 == 0, actor=f"w{n}")
            else:
                log.record(actor=f"w{n}", action="data.export", details={"i": i})

    assert in_threads(work, 4) == []
    check = log.verify()
    assert check.ok and check.entries == 60


def test_a_chain_cut_short_or_rewritten_fails_against_a_head_kept_outside(store: Store) -> None:
    acts(store)
    log = AuditLog(store.engine)
    kept = log.verify().head
    fourth = next(e for e in log.entries() if e.seq == 4)
    assert kept is not None and kept[0] == 6
    assert log.verify(anchor=kept).ok and log.verify(anchor=(4, fourth.hash)).ok
    with store.engine.begin() as conn:  # the last two entries deleted: a valid, shorter chain
        conn.execute(delete(audit_log).where(audit_log.c.seq >= 5))
    assert log.verify().ok
    cut = log.verify(anchor=kept)
    assert (cut.ok, cut.broken_at) == (False, 6) and "cut short to 4 entries" in (cut.reason or "")
    # rewritten from entry 2 on, every hash recomputed: valid alone, not against a kept head
    with store.engine.begin() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        prev = rows[0].hash
        for row in rows[1:]:
            actor = "mallory@m" if row.seq == 2 else row.actor
            digest = entry_hash(row.seq, row.at, actor, row.action, row.target, row.details,
                                prev)
            conn.execute(update(audit_log).where(audit_log.c.seq == row.seq)
                         .values(actor=actor, prev=prev, hash=digest))
            prev = digest
    assert log.verify().ok
    rewritten = log.verify(anchor=(4, fourth.hash))
    assert (rewritten.ok, rewritten.broken_at) == (False, 4)
    assert "rewritten up to there" in (rewritten.reason or "")
