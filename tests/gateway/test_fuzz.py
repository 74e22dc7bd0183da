"""Generated requests against every public endpoint of a real gateway: never a 5xx, and never a
half-stored record (a refused request stores nothing; whatever is stored is whole)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import serve, write_workspace
from veteran.testing.server import ServerThread

EXAMPLES = 2000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
roles = st.sampled_from(["user", "system", "assistant", "tool", "developer", "wizard", 3])
messages = st.lists(
    st.fixed_dictionaries({"role": roles}, optional={
        "content": st.one_of(st.text(max_size=40), json_values),
        "tool_calls": json_values,
    }),
    max_size=3,
)
chat_bodies = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["f", "m/echo", "nope", "", 5, None]),
    "messages": st.one_of(messages, json_values),
    "stream": st.one_of(st.booleans(), json_values),
    "max_tokens": st.one_of(st.integers(-5, 2**40), json_values),
    "temperature": st.one_of(st.floats(allow_nan=False, allow_infinity=True), json_values),
    "tools": json_values,
    "response_format": json_values,
    "stream_options": json_values,
    "veteran_tags": json_values,
    "n": json_values,
    "stop": json_values,
    "extra": json_values,
})
headers = st.fixed_dictionaries({}, optional={
    "x-veteran-episode-id": st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126),
                                    max_size=20),
    "x-veteran-variant": st.sampled_from(["a", "b", "zzz"]),
    "x-veteran-tags": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                              max_size=30).map(str.strip),  # clients cannot send edge spaces
})
HUGE = (b'{"model": "f", "messages": [{"role": "user", "content": "x"}], '
        b'"max_tokens": 123456789012345678901234567890}')
raw_bodies = st.one_of(st.binary(max_size=200), st.just(HUGE), chat_bodies.map(orjson.dumps))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    ws = write_workspace(Path(tmp_path_factory.mktemp("fuzz")), """
        [providers.m]
        kind = "mock"
        [functions.f.variants.a]
        model = "m/echo"
        [functions.f.variants.b]
        model = "m/other"
        weight = 0
        [metrics.ok]
        type = "boolean"
        [metrics.label]
        type = "label"
        labels = ["x", "y"]
        [metrics.session]
        type = "float"
        level = "episode"
    """)
    with serve(ws) as running:
        running.db = ws.path / "veteran.db"  # type: ignore[attr-defined]
        yield running


@pytest.fixture(scope="module")
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def rows(server: ServerThread) -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{server.db}")  # type: ignore[attr-defined]
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT id, status, request, response FROM trajectories"))
        result = list(found)
    engine.dispose()
    return result


def test_chat_completions(http: httpx.Client, server: ServerThread) -> None:
    seen: list[int] = []

    @FUZZ
    @given(body=raw_bodies, hdrs=headers)
    def check(body: bytes, hdrs: dict[str, str]) -> None:
        response = http.post("/v1/chat/completions", content=body,
                             headers={"content-type": "application/json", **hdrs})
        assert response.status_code < 500, response.text
        seen.append(response.status_code)
        if response.status_code >= 400:
            assert "x-veteran-trajectory-id" not in response.headers
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    check()
    assert len(seen) == EXAMPLES
    stored = rows(server)
    assert len(stored) == seen.count(200)
    for _, status, request, response in stored:  # whole records only
        assert status == "ok" and orjson.loads(request)["messages"]
        assert orjson.loads(response)["choices"]


def test_feedback(http: httpx.Client, server: ServerThread) -> None:
    made = http.post("/v1/chat/completions", json={
        "model": "f", "messages": [{"role": "user", "content": "x"}]})
    trajectory_id, episode_id = (made.headers["x-veteran-trajectory-id"],
                                 made.headers["x-veteran-episode-id"])
    accepted: list[int] = []
    bodies = st.one_of(
        st.binary(max_size=100),
        st.fixed_dictionaries({}, optional={
            "trajectory_id": st.one_of(st.just(trajectory_id), json_values),
            "episode_id": st.one_of(st.just(episode_id), json_values),
            "metric": st.one_of(st.sampled_from(["ok", "label", "session", "nope"]), json_values),
            "value": json_values,
            "source": json_values,
            "comment": json_values,
            "extra": json_values,
        }).map(orjson.dumps),
    )

    @FUZZ
    @given(body=bodies)
    def check(body: bytes) -> None:
        response = http.post("/v1/feedback", content=body,
                             headers={"content-type": "application/json"})
        assert response.status_code < 500, response.text
        if response.status_code == 200:
            accepted.append(1)

    check()
    stored = http.get(f"/v1/trajectories/{trajectory_id}").json()["feedback"]
    assert len(stored) == len(accepted)


@pytest.mark.parametrize("path", ["/v1/trajectories", "/v1/models", "/healthz",
                                  "/v1/trajectories/"])
def test_reading_endpoints(http: httpx.Client, path: str) -> None:
    params = st.dictionaries(
        st.sampled_from(["function", "variant", "status", "since", "until", "metric", "tag",
                         "limit", "cursor", "other"]),
        st.one_of(st.text(max_size=30), st.sampled_from(
            ["inf", "-inf", "nan", "1e300", "-1", "0", "9" * 30, "2026-11-26T00:00:00Z"])),
        max_size=5,
    )

    seen: list[int] = []

    @FUZZ
    @given(query=params, ident=st.text(max_size=40))
    def check(query: dict[str, str], ident: str) -> None:
        url = path + quote(ident, safe="") if path.endswith("/") else path
        response = http.get(url, params=query)
        assert response.status_code < 500, response.text
        seen.append(response.status_code)

    check()
    assert len(seen) == EXAMPLES


blocks = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=30),
                                                                         json_values)}),
    st.fixed_dictionaries({"type": st.just("image"), "source": json_values}),
    st.fixed_dictionaries({"type": st.just("tool_use")}, optional={
        "id": json_values, "name": json_values, "input": json_values}),
    st.fixed_dictionaries({"type": st.just("tool_result")}, optional={
        "tool_use_id": json_values, "content": json_values, "is_error": json_values}),
    st.fixed_dictionaries({"type": st.sampled_from(["thinking", "document", "wizard", 7])}),
    json_values,
)
anthropic_messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 1])},
                          optional={"content": st.one_of(st.text(max_size=40),
                                                         st.lists(blocks, max_size=3),
                                                         json_values)}),
    max_size=3,
)
messages_bodies = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["f", "m/echo", "nope", "", 5, None]),
    "max_tokens": st.one_of(st.integers(-5, 2**40), json_values),
    "messages": st.one_of(anthropic_messages, json_values),
    "system": st.one_of(st.text(max_size=30), st.lists(blocks, max_size=2), json_values),
    "stream": st.one_of(st.booleans(), json_values),
    "temperature": st.one_of(st.floats(allow_nan=False, allow_infinity=True), json_values),
    "tools": json_values,
    "tool_choice": json_values,
    "stop_sequences": json_values,
    "metadata": json_values,
    "extra": json_values,
})

text_blocks = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(min_size=1,
                                                                           max_size=30)})
nearly_valid = st.fixed_dictionaries({
    "model": st.sampled_from(["f", "m/echo"]),
    "max_tokens": st.integers(1, 200),
    "messages": st.lists(st.fixed_dictionaries({
        "role": st.just("user"),
        "content": st.one_of(st.text(min_size=1, max_size=40),
                             st.lists(text_blocks, min_size=1, max_size=2)),
    }), min_size=1, max_size=2),
}, optional={
    "stream": st.booleans(),
    "system": st.one_of(st.text(max_size=30), st.lists(text_blocks, max_size=2)),
    "temperature": st.floats(0, 1),
    "stop_sequences": st.lists(st.text(min_size=1, max_size=5), max_size=2),
    "metadata": st.fixed_dictionaries({}, optional={"user_id": st.text(max_size=10)}),
    "extra": json_values,
})


def test_messages(http: httpx.Client, server: ServerThread) -> None:
    before = len(rows(server))
    seen: list[int] = []

    @FUZZ
    @given(body=st.one_of(st.binary(max_size=200), messages_bodies.map(orjson.dumps),
                          nearly_valid.map(orjson.dumps)),
           hdrs=headers)
    def check(body: bytes, hdrs: dict[str, str]) -> None:
        response = http.post("/v1/messages", content=body,
                             headers={"content-type": "application/json", **hdrs})
        assert response.status_code < 500, response.text
        seen.append(response.status_code)
        if response.status_code >= 400:
            assert "x-veteran-trajectory-id" not in response.headers
            error = response.json()
            assert error["type"] == "error" and {"type", "message"} <= set(error["error"])

    check()
    assert len(seen) == EXAMPLES
    assert seen.count(200) > 50  # the generator reaches the model, not only the validator
    stored = rows(server)
    assert len(stored) - before == seen.count(200)
    for _, status, request, response in stored:  # whole records only
        assert status == "ok" and orjson.loads(request)["messages"]
        assert orjson.loads(response)["choices"]
