"""Who is calling: API keys from `Authorization: Bearer KEY` or `x-api-key: KEY`, roles, teams.

Both headers follow the same rules; a request that carries both with different keys is refused.
A missing, unknown or revoked key is a 401, a role that may not use the route a 403. The check
costs a header scan, a SHA-256 of the key and a dictionary lookup: `KeyRing` holds every active
key by hash and reloads them from the store every `RELOAD_INTERVAL` seconds (so revocations apply
without a restart); a hash it does not know is looked up in the store once (a key made by
`veteran keys create` a moment ago works at once), and remembered as unknown for `MISS_TTL`.

Open mode: while the store holds no active key and the gateway binds a loopback address, a
request needs no key and acts as an admin without a team (the embedded default, `make run`). A
`vk_` key sent in open mode is still looked up, so the first key made leaves open mode at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from veteran.access.keys import KEY_PREFIX, ApiKey, Role, active_keys, find_key, hash_key
from veteran.access.limits import Bucket, Limiter
from veteran.errors import PermissionDenied, Unauthorized
from veteran.store import Store

log = logging.getLogger("veteran.access")
RELOAD_INTERVAL = 2.0  # seconds: how soon a revoked key stops working
MISS_TTL = 2.0  # seconds an unknown key is answered 401 without asking the store again
MAX_MISSES = 10_000
MAX_WAITING_LOOKUPS = 64

# What each route needs: the roles allowed to call it (admin is always among them), or PUBLIC.
Permission = frozenset[str]
PUBLIC: Permission = frozenset({"*"})


def allow(*roles: Role) -> Permission:
    return frozenset({*roles, "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request. `team` None: open mode, which sees every team."""

    key_id: str | None
    team: str | None
    role: Role
    name: str | None = None
    buckets: tuple[Bucket, ...] = ()


OPEN = Principal(key_id=None, team=None, role="admin")
ANONYMOUS = Principal(key_id=None, team=None, role="viewer")  # on PUBLIC routes only

MISSING = (
    "this gateway needs an API key: send `Authorization: Bearer KEY` or `x-api-key: KEY` "
    "(keys are made with `veteran keys create`)"
)


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key a request carries, from `Authorization: Bearer` or `x-api-key` (never logged)."""
    bearer: bytes | None = None
    api_key: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                bearer = token.strip() or None
        elif name == b"x-api-key":
            api_key = value.strip() or None
    if bearer is not None and api_key is not None and bearer != api_key:
        raise Unauthorized("Authorization and x-api-key carry different keys; send one")
    key = bearer if bearer is not None else api_key
    return key.decode("latin-1") if key is not None else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class KeyRing:
    """Active keys by hash, kept fresh from the store; turns request headers into a Principal."""

    def __init__(self, store: Store, limiter: Limiter, *, loopback: bool) -> None:
        self.store = store
        self.limiter = limiter
        self.loopback = loopback
        self.by_hash: dict[str, Principal] = {}
        self.open = loopback
        self._misses: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._task: asyncio.Task[None] | None = None

    def _principal(self, key: ApiKey) -> Principal:
        return Principal(
            key_id=key.id, team=key.team, role=key.role, name=key.name,
            buckets=self.limiter.buckets(key.id, key.team, key.limits),
        )

    def _apply(self, keys: dict[str, ApiKey]) -> None:
        self.by_hash = {digest: self._principal(key) for digest, key in keys.items()}
        self.open = self.loopback and not self.by_hash

    async def load(self) -> None:
        async with self._lock:
            self._apply(await asyncio.to_thread(active_keys, self.store))

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._reload(), name="veteran-keys")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _reload(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            try:
                await self.load()
            except Exception:  # the store is away: keep the keys known so far
                log.exception("reloading API keys failed; keeping the last known ones")

    async def authenticate(
        self, headers: Iterable[tuple[bytes, bytes]], permission: Permission
    ) -> Principal:
        """The caller, allowed to use a route that needs `permission`; 401 or 403 otherwise."""
        if permission is PUBLIC:
            return ANONYMOUS
        key = presented_key(headers)
        if self.open:
            if key is None or not key.startswith(KEY_PREFIX):
                return OPEN
            digest = hash_key(key)
            principal = self.by_hash.get(digest) or await self._lookup(digest)
            if principal is None:
                return OPEN
        else:
            if key is None:
                raise Unauthorized(MISSING, code="missing_api_key")
            digest = hash_key(key)
            principal = self.by_hash.get(digest) or await self._lookup(digest)
            if principal is None:
                raise Unauthorized("the API key is not valid (unknown or revoked)")
        if principal.role not in permission:
            raise PermissionDenied(f"a key with role {principal.role!r} may not use this endpoint")
        return principal

    async def _lookup(self, digest: str) -> Principal | None:
        """A key not loaded yet (made since the last reload), from the store; None if none."""
        now = time.monotonic()
        if self._misses.get(digest, 0.0) > now or self._waiting >= MAX_WAITING_LOOKUPS:
            return None
        self._waiting += 1
        try:
            async with self._lock:  # one at a time, and never beside a reload
                found = self.by_hash.get(digest)
                if found is not None:
                    return found
                key = await asyncio.to_thread(find_key, self.store, digest)
        finally:
            self._waiting -= 1
        if key is None:
            if len(self._misses) >= MAX_MISSES:
                self._misses.clear()
            self._misses[digest] = time.monotonic() + MISS_TTL
            return None
        principal = self._principal(key)
        self.by_hash = {**self.by_hash, digest: principal}
        self.open = False
        return principal
