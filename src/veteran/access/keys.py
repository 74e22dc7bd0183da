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

from veteran.errors import NotFound, VeteranError
from veteran.store import Store, new_id
from veteran.store.keys import ROLES, ApiKey, KeyTable, Limits, Role
from veteran.types import now

__all__ = [
    "DISPLAY_CHARS", "KEY_PREFIX", "ROLES", "TEAM_PATTERN", "ApiKey", "Limits", "Role",
    "active_keys", "create_key", "find_key", "generate_key", "hash_key", "list_keys",
    "revoke_key",
]

KEY_PREFIX = "vk_"
DISPLAY_CHARS = 10  # "vk_" and 7 random characters: 42 of the key's 256 bits
TEAM_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 of the key, in hex: what the store holds and what requests are looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    store: Store, *, team: str, role: str, name: str | None = None, limits: Limits | None = None,
    actor: str | None = None,
) -> tuple[ApiKey, str]:
    """Make a key for `team` with `role`; returns its record and the key (shown once). The
    audit chain records `actor` (default: this process's user and host)."""
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
    KeyTable(store.engine).add(record, hash_key(key), actor=actor)
    return record, key


def list_keys(store: Store, *, include_revoked: bool = False) -> list[ApiKey]:
    return KeyTable(store.engine).list(include_revoked=include_revoked)


def revoke_key(store: Store, key_id: str, *, actor: str | None = None) -> ApiKey:
    """Revoke a key (again is a no-op); running gateways refuse it within seconds."""
    revoked = KeyTable(store.engine).revoke(key_id, actor=actor)
    if revoked is None:
        raise NotFound(f"no API key {key_id!r}", param="id")
    return revoked


def active_keys(store: Store) -> dict[str, ApiKey]:
    """Every key not revoked, by hash."""
    return KeyTable(store.engine).active()


def find_key(store: Store, digest: str) -> ApiKey | None:
    """The active key with this hash, if there is one."""
    return KeyTable(store.engine).find(digest)
