"""API keys: made once, stored as a SHA-256, listed without the key, revoked; and the CLI."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from veteran.access import Limits, create_key, is_loopback, list_keys, revoke_key
from veteran.access.auth import presented_key
from veteran.access.keys import active_keys, find_key, generate_key, hash_key
from veteran.cli import cli
from veteran.errors import NotFound, Unauthorized, VeteranError
from veteran.store import Store
from veteran.store.schema import api_keys
from veteran.workspace import init_workspace

KEY = re.compile(r"^vk_[A-Za-z0-9_-]{43}$")


def test_keys_are_random_and_hashed_with_sha256() -> None:
    made = {generate_key() for _ in range(100)}
    assert len(made) == 100 and all(KEY.match(k) for k in made)
    key = next(iter(made))
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_the_store_holds_a_hash_and_a_prefix_never_the_key(store: Store) -> None:
    record, key = create_key(store, team="support", role="app", name="crm",
                             limits=Limits(requests_per_minute=10, spend_per_day=2.5))
    assert KEY.match(key) and record.prefix == key[:10] and key.startswith(record.prefix)
    with store.engine.connect() as conn:
        rows = [{str(k): v for k, v in r._mapping.items()}
                for r in conn.execute(sa.select(api_keys))]
    assert len(rows) == 1
    row = rows[0]
    assert row["hash"] == hash_key(key)
    assert all(key not in str(value) for value in row.values())
    assert orjson.loads(row["limits"]) == {
        "version": 1, "requests_per_minute": 10, "spend_per_day": 2.5
    }
    assert (row["team"], row["role"], row["name"]) == ("support", "app", "crm")
    assert find_key(store, hash_key(key)) == record
    assert find_key(store, hash_key(key + "x")) is None


def test_list_and_revoke(store: Store) -> None:
    first, first_key = create_key(store, team="a", role="app")
    second, _ = create_key(store, team="b", role="viewer")
    assert [k.id for k in list_keys(store)] == [first.id, second.id]
    revoked = revoke_key(store, first.id)
    assert revoked.revoked_at is not None
    assert revoke_key(store, first.id).revoked_at == revoked.revoked_at  # again: no change
    assert [k.id for k in list_keys(store)] == [second.id]
    assert [k.id for k in list_keys(store, include_revoked=True)] == [first.id, second.id]
    assert find_key(store, hash_key(first_key)) is None
    assert list(active_keys(store).values()) == [second]
    with pytest.raises(NotFound):
        revoke_key(store, "no-such-key")


@pytest.mark.parametrize(
    ("team", "role", "limits"),
    [("", "app", Limits()), ("a b", "app", Limits()), ("a", "owner", Limits()),
     ("a", "app", Limits(requests_per_minute=0))],
)
def test_bad_keys_are_refused(store: Store, team: str, role: str, limits: Limits) -> None:
    with pytest.raises(VeteranError):
        create_key(store, team=team, role=role, limits=limits)
    assert list_keys(store) == []


def test_both_headers_follow_the_same_rules() -> None:
    key = generate_key()
    assert presented_key([(b"authorization", f"Bearer {key}".encode())]) == key
    assert presented_key([(b"authorization", f"bearer  {key} ".encode())]) == key
    assert presented_key([(b"x-api-key", key.encode())]) == key
    assert presented_key([(b"x-api-key", key.encode()),
                          (b"authorization", f"Bearer {key}".encode())]) == key
    assert presented_key([(b"authorization", b"Basic dXNlcjpwdw==")]) is None
    assert presented_key([(b"authorization", b"Bearer ")]) is None
    assert presented_key([(b"content-type", b"application/json")]) is None
    with pytest.raises(Unauthorized) as caught:
        presented_key([(b"x-api-key", b"vk_one"), (b"authorization", b"Bearer vk_two")])
    assert "vk_one" not in caught.value.message and "vk_two" not in caught.value.message


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
     ("example.com", False)],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "-w", str(ws.path), "--team", "support",
                                  "--role", "app", "--name", "crm", "--rpm", "60",
                                  "--tpm", "1000", "--spend-per-day", "1.5"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert KEY.match(key), created.stdout  # stdout holds the key alone, for scripts
    assert "not shown again" in created.stderr

    listed = runner.invoke(cli, ["keys", "list", "-w", str(ws.path)])
    assert listed.exit_code == 0, listed.output
    assert key not in listed.output and key[:10] in listed.output and "support" in listed.output
    as_json = runner.invoke(cli, ["keys", "list", "-w", str(ws.path), "--json"])
    [item] = orjson.loads(as_json.stdout)["data"]
    assert key not in as_json.stdout
    assert (item["team"], item["role"], item["name"], item["prefix"]) == (
        "support", "app", "crm", key[:10]
    )
    assert item["limits"] == {"requests_per_minute": 60, "tokens_per_minute": 1000,
                              "spend_per_day": 1.5}

    revoked = runner.invoke(cli, ["keys", "revoke", "-w", str(ws.path), item["id"]])
    assert revoked.exit_code == 0, revoked.output
    assert key not in revoked.output
    after = runner.invoke(cli, ["keys", "list", "-w", str(ws.path), "--json"])
    assert orjson.loads(after.stdout)["data"] == []
    every = runner.invoke(cli, ["keys", "list", "-w", str(ws.path), "--json", "--all"])
    assert orjson.loads(every.stdout)["data"][0]["revoked_at"] is not None

    bad_role = runner.invoke(cli, ["keys", "create", "-w", str(ws.path), "--team", "t",
                                   "--role", "owner"])
    assert bad_role.exit_code != 0
