"""`AccessControl`: what the gateway's ASGI app holds for keys and limits, and the two calls the
chat pipeline makes (`admit` before the provider call, `settle` once the request is over).

The caller (`Principal`) travels in the ASGI scope under `PRINCIPAL_KEY`, set by the app before
any handler runs; an admitted call's `Ticket` under `TICKET_KEY`.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any, Protocol

from veteran.access.auth import OPEN, KeyRing, Principal, is_loopback
from veteran.access.keys import Limits, active_keys
from veteran.access.limits import DAY, Limiter, Ticket, estimate
from veteran.access.limits import admit as reserve
from veteran.config import Config, ModelInfo
from veteran.errors import VeteranError
from veteran.store import Store
from veteran.types import TrajectoryRecord, now

PRINCIPAL_KEY = "veteran.principal"
TICKET_KEY = "veteran.ticket"


class AccessControl:
    def __init__(self, store: Store, config: Config, *, host: str) -> None:
        self.store = store
        self.host = host
        self.limiter = Limiter(team_limits(config))
        self.keys = KeyRing(store, self.limiter, loopback=is_loopback(host))

    def reconfigure(self, config: Config) -> None:
        """Follow a new config (live reload): the teams' limits."""
        self.limiter.set_teams(team_limits(config))

    async def start(self) -> None:
        await self.keys.start()
        if not self.keys.loopback and not self.keys.by_hash:
            await self.keys.close()
            raise VeteranError(refusal(self.host))
        self.limiter.load_spend(await asyncio.to_thread(spend_today, self.store))

    async def close(self) -> None:
        await self.keys.close()


def team_limits(config: Config) -> dict[str, Limits]:
    return {name: Limits(team.requests_per_minute, team.tokens_per_minute, team.spend_per_day)
            for name, team in config.teams.items()}


def refusal(host: str) -> str:
    return (
        f"refusing to serve on {host} without API keys: anyone who can reach it could use "
        "every model and read every trajectory. Create a key first (`veteran keys create "
        "--team TEAM --role app`), or bind a loopback address (127.0.0.1)."
    )


def check_bind(store: Store, host: str) -> None:
    """Raise unless `host` is loopback or the store holds an active key."""
    if not is_loopback(host) and not active_keys(store):
        raise VeteranError(refusal(host))


def spend_today(store: Store) -> list[tuple[str | None, str | None, float]]:
    """(key id, team, cost) summed over today's (UTC) priced trajectories."""
    return store.spend_since(now() // DAY * DAY)


def principal_of(scope: MutableMapping[str, Any]) -> Principal:
    """The caller of this request (set by the app; in-process callers are trusted: OPEN)."""
    principal: Principal = scope.get(PRINCIPAL_KEY, OPEN)
    return principal


class Routed(Protocol):
    """What admission needs of a route (`gateway.routing.Route`)."""

    @property
    def prices(self) -> ModelInfo | None: ...

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def plan(self) -> tuple[Routed, ...]: ...


def admit(
    scope: MutableMapping[str, Any], record: TrajectoryRecord, body: dict[str, Any],
    route: Routed,
) -> None:
    """Stamp `record` with the caller's team and key, and reserve room under the caller's limits:
    `RateLimited` (429) when there is none, before anything is stored."""
    principal = principal_of(scope)
    record.team = principal.team
    record.key_id = principal.key_id
    if principal.buckets:
        estimates = [estimate(r.upstream_body(body), r.prices) for r in route.plan()]
        estimated = (max(t for t, _ in estimates), max(c for _, c in estimates))
        scope[TICKET_KEY] = reserve(principal.buckets, record, estimated)


def settle(scope: MutableMapping[str, Any]) -> None:
    """Count what the request's call really used, once it is over (a no-op without a ticket)."""
    ticket: Ticket | None = scope.get(TICKET_KEY)
    if ticket is not None:
        ticket.settle()
