"""API keys in the store (`api_keys`): a SHA-256 of each key, never the key.

Keys are made and checked in `veteran.access.keys`; this module only keeps them. Nothing here is
payload: a key's record is names, a role, limits and times.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import Engine, select

from veteran.store.audit import append
from veteran.store.schema import api_keys
from veteran.types import now

Role = Literal["app", "viewer", "admin"]
ROLES: tuple[Role, ...] = ("app", "viewer", "admin")
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


class KeyTable:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, key: ApiKey, digest: str, *, actor: str | None = None) -> None:
        """Keep `key` under `digest`, the SHA-256 requests are looked up by (on the audit
        chain: who made it)."""
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(
                id=key.id, name=key.name, team=key.team, role=key.role, prefix=key.prefix,
                hash=digest, limits=key.limits.to_json(), created_at=key.created_at,
            ))
            append(conn, actor=actor, action="key.create", target=key.id,
                   details={"name": key.name, "team": key.team, "role": key.role,
                            "prefix": key.prefix})

    def list(self, *, include_revoked: bool = False) -> builtins.list[ApiKey]:
        stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            stmt = stmt.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_key(row) for row in conn.execute(stmt)]

    def revoke(self, key_id: str, *, actor: str | None = None) -> ApiKey | None:
        """Revoke a key (again is a no-op, and not audited again); None when there is no
        such key."""
        with self.engine.begin() as conn:
            revoked = conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            ).rowcount
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
            if revoked and row is not None:
                append(conn, actor=actor, action="key.revoke", target=key_id,
                       details={"name": row.name, "team": row.team, "role": row.role})
        return _key(row) if row is not None else None

    def active(self) -> dict[str, ApiKey]:
        """Every key not revoked, by hash."""
        stmt = select(api_keys).where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return {row._mapping["hash"]: _key(row) for row in conn.execute(stmt)}

    def find(self, digest: str) -> ApiKey | None:
        """The active key with this hash, if there is one."""
        stmt = select(api_keys).where(api_keys.c.hash == digest,
                                      api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return _key(row) if row is not None else None


def _key(row: Any) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"], name=m["name"], team=m["team"], role=m["role"], prefix=m["prefix"],
        limits=Limits.from_json(m["limits"]), created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )
