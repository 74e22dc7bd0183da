"""Limits per key and per team: requests and tokens per minute, spend per day; bursts of
concurrent calls overshoot a budget by at most one call; 429 with retry-after; spend survives a
restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BASE_CONFIG, serve, write_workspace
from veteran.access import Limits, create_key
from veteran.access.limits import COMPLETION_RESERVE, Bucket, Limiter, admit, estimate
from veteran.errors import RateLimited
from veteran.providers.base import ModelInfo
from veteran.store import Store, TrajectoryFilter
from veteran.testing.fake_upstream import FakeUpstream
from veteran.types import Trajectory, TrajectoryRecord
from veteran.workspace import Workspace

TEAMS = """
[teams.capped]
requests_per_minute = 4
[teams.tokens]
tokens_per_minute = 150
[teams.spendy]
spend_per_day = 0.0001
"""


# the limiter on its own


def record(**usage: int) -> TrajectoryRecord:
    return TrajectoryRecord(id="t", episode_id="e", request={}, created_at=0.0,
                            usage=usage or None)


def test_requests_per_minute_count_admissions() -> None:
    bucket = Bucket("key", "k", Limits(requests_per_minute=2))
    admit((bucket,), record(), (10, 0.0))
    admit((bucket,), record(), (10, 0.0))
    with pytest.raises(RateLimited) as caught:
        admit((bucket,), record(), (10, 0.0))
    assert caught.value.status == 429 and 1 <= caught.value.retry_after <= 60
    assert caught.value.headers == {"retry-after": str(caught.value.retry_after)}
    bucket.admitted[0] -= 61  # a minute passes for the first
    admit((bucket,), record(), (10, 0.0))


def test_tokens_count_in_flight_reservations_then_actual_use() -> None:
    bucket = Bucket("key", "k", Limits(tokens_per_minute=100))
    first = admit((bucket,), record(total_tokens=30), (60, 0.0))
    second = admit((bucket,), record(total_tokens=30), (60, 0.0))  # 60 < 100: room
    with pytest.raises(RateLimited):
        admit((bucket,), record(), (60, 0.0))  # 120 reserved
    first.settle()
    first.settle()  # once only
    assert (bucket.reserved_tokens, bucket.tokens_used) == (60, 30)
    second.settle()
    assert (bucket.reserved_tokens, bucket.tokens_used) == (0, 60)
    third = admit((bucket,), record(total_tokens=50), (60, 0.0))
    with pytest.raises(RateLimited) as caught:
        admit((bucket,), record(), (60, 0.0))
    assert caught.value.retry_after == 1  # the call in flight may give most of it back
    third.settle()
    with pytest.raises(RateLimited) as caught:
        admit((bucket,), record(), (60, 0.0))
    assert 59 <= caught.value.retry_after <= 60  # when the first finished call leaves the window


def test_spend_rolls_over_at_utc_midnight_and_loads_from_the_store() -> None:
    limiter = Limiter({"t": Limits(spend_per_day=1.0)})
    limiter.load_spend([("key-1", "t", 0.6), (None, "t", 0.5), ("key-2", None, 9.0)])
    [team] = limiter.buckets("key-1", "t", Limits())
    assert team.spent == pytest.approx(1.1)
    with pytest.raises(RateLimited) as caught:
        admit((team,), record(), (1, 0.01))
    assert "spend" in caught.value.message and caught.value.retry_after <= 86_400
    team.day -= 1  # yesterday's spend
    ticket = admit((team,), record(), (1, 0.01))
    assert team.spent == 0.0
    assert limiter.buckets("key-2", "other", Limits()) == ()
    ticket.record.cost = 0.25
    ticket.settle()
    assert team.spent == 0.25 and team.reserved_cost == 0.0


def test_an_abandoned_call_counts_its_estimate() -> None:
    bucket = Bucket("team", "t", Limits(tokens_per_minute=1000))
    ticket = admit((bucket,), record(), (300, 0.0))
    ticket.record.status = "incomplete"
    ticket.settle()
    assert bucket.tokens_used == 300


def test_the_estimate_bounds_the_call() -> None:
    messages = [{"role": "user", "content": "hello there"}]
    tokens, cost = estimate({"messages": messages, "max_tokens": 7}, None)
    assert tokens == len(b'[{"role":"user","content":"hello there"}]') + 7 and cost == 0.0
    tokens, _ = estimate({"messages": messages, "max_completion_tokens": 5, "n": 3,
                          "tools": [{"type": "function"}]}, None)
    assert tokens == 41 + len(b"[{\"type\":\"function\"}]") + 15
    tokens, cost = estimate({"messages": messages},
                            ModelInfo(input_per_mtok=1.0, output_per_mtok=2.0))
    assert tokens == 41 + COMPLETION_RESERVE
    assert cost == pytest.approx((41 + 2 * COMPLETION_RESERVE) / 1e6)


# against a real gateway


@pytest.fixture
def workspace(tmp_path: Path, upstream: FakeUpstream) -> Workspace:
    return write_workspace(tmp_path / "ws", BASE_CONFIG.format(upstream=upstream.url) + TEAMS)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def key(store: Store, team: str = "free", **limits: Any) -> str:
    return create_key(store, team=team, role="app", limits=Limits(**limits))[1]


def body(text: str = "hello") -> dict[str, Any]:
    return {"model": "triage", "max_tokens": 5, "messages": [{"role": "user", "content": text}]}


def stored(store: Store, team: str) -> list[Trajectory]:
    page, _ = store.trajectories(TrajectoryFilter(team=team), limit=1000)
    return page


def until_refused(http: httpx.Client, headers: dict[str, str], most: int = 100
                  ) -> tuple[int, httpx.Response]:
    for sent in range(most):
        response = http.post("/v1/chat/completions", headers=headers, json=body())
        if response.status_code != 200:
            return sent, response
    raise AssertionError(f"no limit reached in {most} calls")


def check_429(response: httpx.Response, most_seconds: int) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert 1 <= int(response.headers["retry-after"]) <= most_seconds
    assert "x-veteran-trajectory-id" not in response.headers


def test_requests_per_minute_per_key_and_per_team(
    workspace: Workspace, database_url: str, store: Store
) -> None:
    limited, free = key(store, requests_per_minute=3), key(store)
    one, two = key(store, team="capped"), key(store, team="capped")
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        sent, refused = until_refused(http, {"authorization": f"Bearer {limited}"})
        assert sent == 3
        check_429(refused, 60)
        assert "requests per minute" in refused.json()["error"]["message"]
        assert limited not in refused.text
        for _ in range(5):  # the unlimited key of the same team is not held back
            assert http.post("/v1/chat/completions", headers={"x-api-key": free},
                             json=body()).status_code == 200
        # the team's budget spans its keys
        statuses = [
            http.post("/v1/chat/completions", headers={"x-api-key": k}, json=body()).status_code
            for k in (one, two, one, two, one, two)
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]
    # a refused call stored nothing
    assert len(stored(store, "free")) == 3 + 5
    assert len(stored(store, "capped")) == 4


def test_tokens_per_minute_per_key_and_per_team(
    workspace: Workspace, database_url: str, store: Store
) -> None:
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        for headers, team, budget in [
            ({"x-api-key": key(store, team="k", tokens_per_minute=120)}, "k", 120),
            ({"x-api-key": key(store, team="tokens")}, "tokens", 150),
        ]:
            sent, refused = until_refused(http, headers)
            check_429(refused, 60)
            used = [t.usage.total_tokens or 0 for t in stored(store, team)]
            assert len(used) == sent
            assert budget <= sum(used) <= budget + max(used)  # reached, by at most one call


def test_spend_per_day_survives_a_restart(
    workspace: Workspace, database_url: str, store: Store
) -> None:
    per_key = {"x-api-key": key(store, team="k", spend_per_day=0.00008)}
    per_team = {"x-api-key": key(store, team="spendy")}
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        for headers, team, budget in [(per_key, "k", 0.00008), (per_team, "spendy", 0.0001)]:
            sent, refused = until_refused(http, headers)
            check_429(refused, 86_400)
            costs = [t.cost or 0.0 for t in stored(store, team)]
            assert len(costs) == sent and all(costs)
            assert budget <= sum(costs) <= budget + max(costs)
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        for headers in (per_key, per_team):
            again = http.post("/v1/chat/completions", headers=headers, json=body())
            check_429(again, 86_400)
        # a new key of the limited team is held by the team's spend too
        fresh = {"x-api-key": key(store, team="spendy")}
        check_429(http.post("/v1/chat/completions", headers=fresh, json=body()), 86_400)


async def burst(url: str, headers: dict[str, str], n: int = 50) -> list[int]:
    """`n` calls at once, each held by the upstream for 300 ms so all are in flight together."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        responses = await asyncio.gather(*(
            client.post("/v1/chat/completions", headers=headers,
                        json=body(f"fault:delay=300 call {i}"))
            for i in range(n)
        ))
    return [r.status_code for r in responses]


@pytest.mark.parametrize(
    ("team", "limits", "measure", "budget"),
    [
        ("rpm", {"requests_per_minute": 7}, "requests", 7),
        ("tpm", {"tokens_per_minute": 400}, "tokens", 400),
        ("spend", {"spend_per_day": 0.0003}, "cost", 0.0003),
        ("spendy", {}, "cost", 0.0001),  # the team's budget from veteran.toml
    ],
)
def test_a_burst_of_50_overshoots_by_at_most_one_call(
    workspace: Workspace, database_url: str, store: Store, team: str, limits: dict[str, Any],
    measure: str, budget: float,
) -> None:
    headers = {"authorization": f"Bearer {key(store, team=team, **limits)}"}
    with serve(workspace, database_url) as server:
        statuses = asyncio.run(burst(server.url, headers))
    assert set(statuses) == {200, 429}, statuses
    calls = stored(store, team)
    assert len(calls) == statuses.count(200)
    if measure == "requests":
        assert len(calls) == budget
        return
    used = [(t.usage.total_tokens or 0) if measure == "tokens" else (t.cost or 0.0)
            for t in calls]
    assert all(used)
    assert sum(used) <= budget + max(used)
