"""`veteran audit list` and `veteran audit verify`: the acts of other commands on the chain,
with the user and host that ran them, and a tampered chain reported with exit 1."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from tests.conftest import write_workspace
from veteran.cli import cli
from veteran.store import Store, local_actor
from veteran.store.schema import audit_log
from veteran.workspace import Workspace

CONFIG = """
[providers.vendor]
kind = "mock"

[functions.support]
[functions.support.variants.vendor]
model = "vendor/gpt-x"
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return write_workspace(tmp_path / "ws", CONFIG)


def invoke(ws: Workspace, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, [*args, "-w", str(ws.path)],
                                                    catch_exceptions=False)


def ok(ws: Workspace, *args: str) -> str:
    result = invoke(ws, *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_commands_acts_are_listed_and_verified(ws: Workspace, tmp_path: Path) -> None:
    assert "no audit entries" in ok(ws, "audit", "list")
    ok(ws, "keys", "create", "--team", "ops", "--role", "admin", "--name", "deploy")
    ok(ws, "providers", "disable", "vendor", "--reason", "outage")
    ok(ws, "trajectories", "export", "-o", str(tmp_path / "all.jsonl"))
    lines = ok(ws, "audit", "list", "--json").splitlines()
    entries = [orjson.loads(line) for line in lines]
    assert [e["action"] for e in entries] == ["trajectories.export", "provider.disable",
                                              "key.create"]
    assert {e["actor"] for e in entries} == {local_actor()}
    assert entries[0]["details"]["exported"] == 0
    assert entries[1]["details"] == {"reason": "outage"}
    table = ok(ws, "audit", "list", "--action", "key.create")
    assert "key.create" in table and "deploy" in table and "provider.disable" not in table
    verified = ok(ws, "audit", "verify")
    assert verified.strip() == f"audit chain intact: 3 entries, head 3:{entries[0]['hash']}"
    assert orjson.loads(ok(ws, "audit", "verify", "--json"))["head"]["hash"] == entries[0]["hash"]
    # the head kept, given back later: still there after more acts
    ok(ws, "providers", "enable", "vendor")
    assert "4 entries" in ok(ws, "audit", "verify", "--head", f"3:{entries[0]['hash']}")
    refused = invoke(ws, "audit", "verify", "--head", "3:beef")
    assert refused.exit_code == 2 and "SEQ:HASH" in refused.output


def test_a_tampered_chain_fails_verify_with_the_entry_named(ws: Workspace) -> None:
    for team in ("a", "b", "c"):
        ok(ws, "keys", "create", "--team", team, "--role", "app")
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        with store.engine.begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.seq == 2)
                         .values(details='{"team": "z"}'))
    finally:
        store.close()
    result = invoke(ws, "audit", "verify")
    assert result.exit_code == 1
    assert "audit chain broken at entry 2: entry 2 was changed" in result.output
    assert "(1 entry before it is intact)" in result.output
    assert orjson.loads(invoke(ws, "audit", "verify", "--json").output)["broken_at"] == 2
