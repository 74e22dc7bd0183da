"""Limits on model calls: requests per minute, tokens per minute, spend per UTC day.

Each key with limits, and each team with a `[teams.NAME]` table, has a `Bucket`. A call is
admitted on the event loop, synchronously, so no two admissions interleave: admission checks
every bucket of the caller and, when all have room, reserves in each at once: the request itself
for requests per minute, and for tokens and spend a conservative estimate of the call (below).
When the call has finished (its response sent, its trajectory captured), the `Ticket` settles:
the estimate is released and what the call really used (its usage and cost) is counted.

A bucket has room while `used + reserved < budget`: the call that crosses the budget is admitted,
every later one is refused until the window moves. So with estimates that bound the real use, a
burst of concurrent calls overshoots a budget by at most that one call. The estimate: every byte
of the `messages` and `tools` JSON the provider receives counts as a token (a byte-level
tokenizer never makes more tokens than bytes), plus `max_completion_tokens` / `max_tokens` (or
`COMPLETION_RESERVE` when neither is set), times `n`; its cost at the route's prices; the
largest over the route and its fallbacks.

Requests and tokens per minute count the last 60 seconds. Spend per day counts since UTC
midnight and is loaded from the store's trajectories when the gateway starts, so a restart does
not reset it. The counters live in one gateway process (see docs/security.md).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from veteran.access.keys import Limits
from veteran.config import ModelInfo
from veteran.errors import RateLimited
from veteran.types import TrajectoryRecord

WINDOW = 60.0
DAY = 86_400
COMPLETION_RESERVE = 4096  # tokens reserved for an answer whose request sets no max_tokens


def utc_day(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // DAY)


class Bucket:
    """The counters of one key (`kind` "key") or one team (`kind` "team")."""

    __slots__ = (
        "kind", "name", "limits", "admitted", "finished", "tokens_used", "reserved_tokens",
        "reserved_cost", "spent", "day",
    )

    def __init__(self, kind: str, name: str, limits: Limits, spent: float = 0.0) -> None:
        self.kind = kind
        self.name = name
        self.limits = limits
        self.admitted: deque[float] = deque()  # admission times within the window
        self.finished: deque[tuple[float, int]] = deque()  # (time, tokens) of finished calls
        self.tokens_used = 0
        self.reserved_tokens = 0
        self.reserved_cost = 0.0
        self.spent = spent
        self.day = utc_day()

    def refusal(self, at: float, wall: float) -> RateLimited | None:
        """Why a call cannot be admitted now (None: it can)."""
        limits = self.limits
        rpm = limits.requests_per_minute
        if rpm is not None:
            admitted = self.admitted
            while admitted and admitted[0] <= at - WINDOW:
                admitted.popleft()
            if len(admitted) >= rpm:
                return self._refuse(f"{rpm} requests per minute", admitted[0] + WINDOW - at)
        tpm = limits.tokens_per_minute
        if tpm is not None:
            self._expire(at)
            if self.tokens_used + self.reserved_tokens >= tpm:
                return self._refuse(f"{tpm} tokens per minute", self._tokens_free_in(at, tpm))
        spend = limits.spend_per_day
        if spend is not None:
            self._roll(wall)
            if self.spent + self.reserved_cost >= spend:
                return self._refuse(f"a spend of {spend:g} per day", DAY - wall % DAY)
        return None

    def _refuse(self, what: str, seconds: float) -> RateLimited:
        return RateLimited(f"{self.kind} {self.name!r} is over its limit of {what}", seconds)

    def _expire(self, at: float) -> None:
        finished = self.finished
        while finished and finished[0][0] <= at - WINDOW:
            self.tokens_used -= finished.popleft()[1]

    def _tokens_free_in(self, at: float, tpm: int) -> float:
        """Seconds until enough finished calls leave the window; 1 while calls are in flight:
        they may finish any moment and give back the part of their estimate they did not use."""
        if self.reserved_tokens:
            return 1.0
        excess = self.tokens_used - tpm + 1
        for finished_at, tokens in self.finished:
            excess -= tokens
            if excess <= 0:
                return finished_at + WINDOW - at
        return 1.0

    def _roll(self, wall: float) -> None:
        day = utc_day(wall)
        if day != self.day:
            self.day = day
            self.spent = 0.0

    def reserve(self, at: float, tokens: int, cost: float) -> None:
        if self.limits.requests_per_minute is not None:
            self.admitted.append(at)
        self.reserved_tokens += tokens
        self.reserved_cost += cost

    def settle(self, at: float, wall: float, reserved: tuple[int, float], used: tuple[int, float]
               ) -> None:
        self.reserved_tokens -= reserved[0]
        self.reserved_cost -= reserved[1]
        tokens, cost = used
        if tokens and self.limits.tokens_per_minute is not None:
            self.finished.append((at, tokens))
            self.tokens_used += tokens
        if cost:
            self._roll(wall)
            self.spent += cost


class Ticket:
    """One admitted call's reservation, settled once when the call is over."""

    __slots__ = ("buckets", "tokens", "cost", "record", "settled")

    def __init__(self, buckets: tuple[Bucket, ...], tokens: int, cost: float,
                 record: TrajectoryRecord) -> None:
        self.buckets = buckets
        self.tokens = tokens
        self.cost = cost
        self.record = record
        self.settled = False

    def settle(self) -> None:
        if self.settled:
            return
        self.settled = True
        record = self.record
        usage = record.usage
        if usage is None and record.status == "incomplete":
            # cut off or abandoned part-way: the provider may have billed it, and nothing says how
            # much, so the estimate counts
            used = (self.tokens, self.cost)
        else:
            used = (_total_tokens(usage), record.cost or 0.0)
        at, wall = time.monotonic(), time.time()
        for bucket in self.buckets:
            bucket.settle(at, wall, (self.tokens, self.cost), used)


def _total_tokens(usage: dict[str, Any] | None) -> int:
    if not usage:
        return 0
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else 0) + (
        completion if isinstance(completion, int) else 0
    )


def estimate(body: dict[str, Any], prices: ModelInfo | None) -> tuple[int, float]:
    """(tokens, cost) a chat call may use at most, as far as its request tells (see above)."""
    prompt = len(orjson.dumps(body.get("messages")))
    if body.get("tools"):
        prompt += len(orjson.dumps(body["tools"]))
    completion = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(completion, int) or completion < 1:
        completion = COMPLETION_RESERVE
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        completion *= n
    cost = 0.0
    if prices is not None:
        cost = (prompt * (prices.input_per_mtok or 0.0)
                + completion * (prices.output_per_mtok or 0.0)) / 1e6
    return prompt + completion, cost


def admit(
    buckets: tuple[Bucket, ...], record: TrajectoryRecord, estimated: tuple[int, float]
) -> Ticket:
    """Reserve room for one call estimated at (tokens, cost) in every bucket, or raise
    `RateLimited` (reserving nothing)."""
    at, wall = time.monotonic(), time.time()
    for bucket in buckets:
        refused = bucket.refusal(at, wall)
        if refused is not None:
            raise refused
    tokens, cost = estimated
    for bucket in buckets:
        bucket.reserve(at, tokens, cost)
    return Ticket(buckets, tokens, cost, record)


class Limiter:
    """The buckets of one gateway: one per limited key, one per team with limits."""

    def __init__(self, teams: Mapping[str, Limits]) -> None:
        self.teams = {name: limits for name, limits in teams.items() if limits}
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._spent: dict[tuple[str, str], float] = {}
        self._spent_day = utc_day()

    def set_teams(self, teams: Mapping[str, Limits]) -> None:
        """New team limits (a config reload): a team whose limits changed starts a new bucket,
        carrying today's spend over; the others keep theirs."""
        self.teams = {name: limits for name, limits in teams.items() if limits}
        for (kind, name), bucket in list(self._buckets.items()):
            if kind == "team" and self.teams.get(name) != bucket.limits:
                self._spent[(kind, name)] = bucket.spent
                del self._buckets[(kind, name)]

    def load_spend(self, rows: Iterable[tuple[str | None, str | None, float]]) -> None:
        """Today's spend so far, from the store: (key id, team, cost) rows since UTC midnight."""
        spent: dict[tuple[str, str], float] = {}
        for key_id, team, cost in rows:
            if key_id is not None:
                spent[("key", key_id)] = spent.get(("key", key_id), 0.0) + cost
            if team is not None:
                spent[("team", team)] = spent.get(("team", team), 0.0) + cost
        self._spent, self._spent_day = spent, utc_day()
        for ident, bucket in self._buckets.items():
            if bucket.day == self._spent_day:
                bucket.spent = max(bucket.spent, spent.get(ident, 0.0))

    def buckets(self, key_id: str, team: str, limits: Limits) -> tuple[Bucket, ...]:
        """The buckets a call with this key counts against (empty: nothing limits it)."""
        found = []
        if limits:
            found.append(self._bucket("key", key_id, limits))
        team_limits = self.teams.get(team)
        if team_limits is not None:
            found.append(self._bucket("team", team, team_limits))
        return tuple(found)

    def _bucket(self, kind: str, name: str, limits: Limits) -> Bucket:
        bucket = self._buckets.get((kind, name))
        if bucket is None:
            spent = self._spent.get((kind, name), 0.0) if self._spent_day == utc_day() else 0.0
            bucket = self._buckets[(kind, name)] = Bucket(kind, name, limits, spent)
        return bucket
