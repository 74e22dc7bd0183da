"""API keys: made here, shown once, stored only as a SHA-256.

A key is `vk_` and 43 characters of `secrets.token_urlsafe(32)` (256 random bits). The store
keeps its SHA-256 in hex (a slow password hash buys nothing against 256-bit random secrets and
would cost every request), a display prefix to tell keys apart in listings, the key's team, role
and limits. The key itself is printed once by `veteran keys create` and never again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import select

from veteran.errors import NotFound, VeteranError
from veteran.store import Store, new_id
from veteran.store.schema import api_keys
from veteran.types import now

Role = Literal["app", "viewer", "admin"]
ROLES: tuple[Role, ...] = ("app", "viewer", "admin")
KEY_PREFIX = "vk_"
DISPLAY_CHARS = 10  # "vk_" and 7 random characters: 42 of the key's 256 bits
TEAM_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LIMITS_VERSION = 1


@dataclass(frozen=True, slots=True)
class Limits:
    """Budgets for one key or one team; None means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    spend_per_day: float | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (
            self.requests_per_minute, self.tokens_per_minute, self.spend_per_day
        ))

    def to_json(self) -> str | None:
        if not self:
            return None
        values = {k: v for k, v in self.as_dict().items() if v is not None}
        return orjson.dumps({"version": LIMITS_VERSION, **values}).decode()

    @classmethod
    def from_json(cls, text: str | None) -> Limits:
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(
            requests_per_minute=data.get("requests_per_minute"),
            tokens_per_minute=data.get("tokens_per_minute"),
            spend_per_day=data.get("spend_per_day"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
            "spend_per_day": self.spend_per_day,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as the store knows it: never the key itself."""

    id: str
    name: str | None
    team: str
    role: Role
    prefix: str
    limits: Limits
    created_at: float
    revoked_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "team": self.team, "role": self.role,
            "prefix": self.prefix, "limits": {
                k: v for k, v in self.limits.as_dict().items() if v is not None
            },
            "created_at": self.created_at, "revoked_at": self.revoked_at,
        }


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 of the key, in hex: what the store holds and what requests are looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    store: Store, *, team: str, role: str, name: str | None = None, limits: Limits | None = None
) -> tuple[ApiKey, str]:
    """Make a key for `team` with `role`; returns its record and the key (shown once)."""
    if not TEAM_PATTERN.match(team):
        raise VeteranError(f"team {team!r} must match {TEAM_PATTERN.pattern}")
    if role not in ROLES:
        raise VeteranError(f"role {role!r} must be one of {', '.join(ROLES)}")
    if name is not None and len(name) > 128:
        raise VeteranError("a key's name is at most 128 characters")
    limits = limits or Limits()
    for field, value in limits.as_dict().items():
        if value is not None and value <= 0:
            raise VeteranError(f"{field} must be above 0")
    key = generate_key()
    record = ApiKey(
        id=new_id(), name=name, team=team, role=role, prefix=key[:DISPLAY_CHARS],
        limits=limits, created_at=now(),
    )
    with store.engine.begin() as conn:
        conn.execute(api_keys.insert().values(
            id=record.id, name=name, team=team, role=role, prefix=record.prefix,
            hash=hash_key(key), limits=limits.to_json(), created_at=record.created_at,
        ))
    return record, key


def _from_row(row: Any) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"], name=m["name"], team=m["team"], role=m["role"], prefix=m["prefix"],
        limits=Limits.from_json(m["limits"]), created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def list_keys(store: Store, *, include_revoked: bool = False) -> list[ApiKey]:
    stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if not include_revoked:
        stmt = stmt.where(api_keys.c.revoked_at.is_(None))
    with store.engine.connect() as conn:
        return [_from_row(row) for row in conn.execute(stmt)]


def revoke_key(store: Store, key_id: str) -> ApiKey:
    """Revoke a key (again is a no-op); running gateways refuse it within seconds."""
    with store.engine.begin() as conn:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    if row is None:
        raise NotFound(f"no API key {key_id!r}", param="id")
    return _from_row(row)


def active_keys(store: Store) -> dict[str, ApiKey]:
    """Every key not revoked, by hash."""
    stmt = select(api_keys).where(api_keys.c.revoked_at.is_(None))
    with store.engine.connect() as conn:
        return {row._mapping["hash"]: _from_row(row) for row in conn.execute(stmt)}


def find_key(store: Store, digest: str) -> ApiKey | None:
    """The active key with this hash, if there is one."""
    stmt = select(api_keys).where(api_keys.c.hash == digest, api_keys.c.revoked_at.is_(None))
    with store.engine.connect() as conn:
        row = conn.execute(stmt).first()
    return _from_row(row) if row is not None else None
