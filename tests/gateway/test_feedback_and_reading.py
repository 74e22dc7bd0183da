"""POST /v1/feedback and GET /v1/trajectories against a real gateway."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest


def call(
    http: httpx.Client, model: str = "triage", headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    response = http.post(
        "/v1/chat/completions",
        headers=headers or {},
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], **body},
    )
    return response


def new_trajectory(http: httpx.Client, **kwargs: Any) -> str:
    response = call(http, **kwargs)
    return response.headers["x-veteran-trajectory-id"]


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("resolved", True),
        ("score", 0.75),
        ("score", 3),
        ("queue", "billing"),
        ("note", "customer happy"),
        ("fix", "Route to billing."),
        ("fix", {"role": "assistant", "content": "billing"}),
    ],
)
def test_feedback_of_each_type_is_stored(http: httpx.Client, metric: str, value: Any) -> None:
    trajectory_id = new_trajectory(http)
    response = http.post(
        "/v1/feedback",
        json={"trajectory_id": trajectory_id, "metric": metric, "value": value, "source": "crm"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["value"] == value
    got = http.get(f"/v1/trajectories/{trajectory_id}").json()["feedback"]
    assert [(f["metric"], f["value"], f["source"]) for f in got] == [(metric, value, "crm")]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"metric": "resolved", "value": "yes"}, 400),
        ({"metric": "resolved", "value": 1}, 400),
        ({"metric": "score", "value": True}, 400),
        ({"metric": "score", "value": "0.5"}, 400),
        ({"metric": "queue", "value": "sales"}, 400),  # not among the declared labels
        ({"metric": "note", "value": ""}, 400),
        ({"metric": "fix", "value": 5}, 400),
        ({"metric": "nope", "value": True}, 400),
        ({"metric": "resolved"}, 400),
        ({"metric": "resolved", "value": True, "extra": 1}, 400),
        ({"metric": "session_ok", "value": True}, 400),  # episode-level metric given a trajectory
    ],
)
def test_bad_feedback_is_refused_and_stores_nothing(
    http: httpx.Client, body: dict[str, Any], status: int
) -> None:
    trajectory_id = new_trajectory(http)
    response = http.post("/v1/feedback", json={"trajectory_id": trajectory_id, **body})
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    assert http.get(f"/v1/trajectories/{trajectory_id}").json()["feedback"] == []


def test_feedback_for_unknown_ids_is_404(http: httpx.Client) -> None:
    response = http.post(
        "/v1/feedback", json={"trajectory_id": "no-such-id", "metric": "resolved", "value": True}
    )
    assert response.status_code == 404
    response = http.post(
        "/v1/feedback",
        json={"episode_id": "no-such-episode", "metric": "session_ok", "value": True},
    )
    assert response.status_code == 404


def test_both_or_neither_id_is_400(http: httpx.Client) -> None:
    trajectory_id = new_trajectory(http)
    both = {"trajectory_id": trajectory_id, "episode_id": "e", "metric": "resolved", "value": True}
    assert http.post("/v1/feedback", json=both).status_code == 400
    assert http.post("/v1/feedback", json={"metric": "resolved", "value": True}).status_code == 400


def test_episode_feedback_shows_on_every_trajectory_of_the_episode(http: httpx.Client) -> None:
    first = new_trajectory(http, headers={"x-veteran-episode-id": "ep-1"})
    second = new_trajectory(http, headers={"x-veteran-episode-id": "ep-1"})
    response = http.post(
        "/v1/feedback",
        json={"episode_id": "ep-1", "metric": "session_ok", "value": False, "comment": "escalated"},
    )
    assert response.status_code == 200
    for trajectory_id in (first, second):
        fb = http.get(f"/v1/trajectories/{trajectory_id}").json()["feedback"]
        assert [(f["metric"], f["value"], f["comment"]) for f in fb] == [
            ("session_ok", False, "escalated")
        ]


def test_feedback_can_arrive_later(http: httpx.Client) -> None:
    trajectory_id = new_trajectory(http)
    time.sleep(0.2)
    assert (
        http.post(
            "/v1/feedback",
            json={"trajectory_id": trajectory_id, "metric": "resolved", "value": True},
        ).status_code
        == 200
    )
    assert (
        http.post(
            "/v1/feedback",
            json={"trajectory_id": trajectory_id, "metric": "resolved", "value": False},
        ).status_code
        == 200
    )
    values = [f["value"] for f in http.get(f"/v1/trajectories/{trajectory_id}").json()["feedback"]]
    assert values == [True, False]


def test_list_filters_and_pagination(http: httpx.Client) -> None:
    big = [new_trajectory(http, headers={"x-veteran-tags": "team=a"}) for _ in range(5)]
    small = [
        new_trajectory(http, headers={"x-veteran-variant": "small", "x-veteran-tags": "team=b"})
        for _ in range(3)
    ]
    direct = new_trajectory(http, model="up/other")
    failed = call(http, messages=[{"role": "user", "content": "fault:status=503"}])
    assert failed.status_code == 502
    http.post("/v1/feedback", json={"trajectory_id": small[0], "metric": "resolved", "value": True})

    def ids(**params: Any) -> list[str]:
        body = http.get("/v1/trajectories", params=params)
        assert body.status_code == 200, body.text
        return [t["id"] for t in body.json()["data"]]

    assert ids(variant="small") == list(reversed(small))
    assert set(ids(function="triage")) == set(big + small) | {
        failed.headers["x-veteran-trajectory-id"]
    }
    assert ids(status="error") == [failed.headers["x-veteran-trajectory-id"]]
    assert ids(tag="team=b") == list(reversed(small))
    assert ids(tag=["team=a"], variant="small") == []
    assert ids(metric="resolved") == [small[0]]
    everything = ids(limit=1000)
    assert everything[0] == failed.headers["x-veteran-trajectory-id"]
    assert direct in everything and len(everything) == 10
    # pages of 3, following next_cursor, give everything once, newest first
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/trajectories", params=params).json()
        seen += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert seen == everything
    # since/until
    first_time = http.get(f"/v1/trajectories/{big[0]}").json()["created_at"]
    assert ids(until=first_time) == []
    assert big[0] in ids(since=first_time)
    assert "request" not in http.get("/v1/trajectories").json()["data"][0]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "weird"},
        {"limit": "0"},
        {"limit": "abc"},
        {"since": "yesterday"},
        {"cursor": "!!!"},
        {"tag": "novalue"},
        {"colour": "red"},
        {"since": "2026-01-01T00:00:00"},
        {"since": "INFINITY"},  # found by the fuzz test: was a 500
        {"until": "nan"},
        {"since": "-5"},
        {"until": "1e300"},
        {"since": "1969-12-31T00:00:00Z"},
    ],
)
def test_bad_list_parameters_are_400(http: httpx.Client, params: dict[str, str]) -> None:
    response = http.get("/v1/trajectories", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"]


def test_unknown_trajectory_is_404(http: httpx.Client) -> None:
    assert http.get("/v1/trajectories/nope").status_code == 404
