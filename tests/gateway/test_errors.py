"""Bad input and upstream faults: the documented status, the OpenAI error shape, and nothing
stored half (bad input stores nothing; a failed call is stored whole, as an error)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "triage", "messages": [{"role": "user", "content": "hi"}], **fields}


def all_trajectories(http: httpx.Client) -> list[dict[str, Any]]:
    return http.get("/v1/trajectories", params={"limit": 1000}).json()["data"]


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("not json", b"{not json", {}, 400),
    ("empty body", b"", {}, 400),
    ("array body", b"[1, 2]", {}, 400),
    ("no model", orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), {}, 400),
    ("empty messages", orjson.dumps(chat(messages=[])), {}, 400),
    ("messages not a list", orjson.dumps(chat(messages="hi")), {}, 400),
    ("bad role", orjson.dumps(chat(messages=[{"role": "wizard", "content": "x"}])), {}, 400),
    ("content a number", orjson.dumps(chat(messages=[{"role": "user", "content": 3}])), {}, 400),
    ("absurd max_tokens", orjson.dumps(chat(max_tokens=10**9)), {}, 400),
    ("max_tokens a string", orjson.dumps(chat(max_tokens="5")), {}, 400),
    ("temperature too high", orjson.dumps(chat(temperature=7)), {}, 400),
    ("stream not bool", orjson.dumps(chat(stream="yes")), {}, 400),
    ("bad response_format", orjson.dumps(chat(response_format={"type": "xml"})), {}, 400),
    ("tool without name", orjson.dumps(chat(tools=[{"type": "function", "function": {}}])), {},
     400),
    ("NUL escape", b'{"model": "triage", "messages": [{"role": "user", "content": "a\\u0000"}]}',
     {}, 400),
    ("lone surrogate",
     b'{"model": "triage", "messages": [{"role": "user", "content": "\\ud800"}]}', {}, 400),
    ("invalid utf-8", b'{"model": "triage", "messages": [{"role": "user", "content": "\xff"}]}',
     {}, 400),
    ("bad veteran_tags", orjson.dumps(chat(veteran_tags={"a": 1})), {}, 400),
    ("bad tags header", orjson.dumps(chat()), {"x-veteran-tags": "novalue"}, 400),
    ("bad episode id", orjson.dumps(chat()), {"x-veteran-episode-id": "a b/c"}, 400),
    ("unknown variant", orjson.dumps(chat()), {"x-veteran-variant": "nope"}, 400),
    ("unknown model", orjson.dumps(chat(model="gpt-4o")), {}, 404),
    ("unknown provider", orjson.dumps(chat(model="nope/gpt-4o")), {}, 404),
    ("too large", orjson.dumps(chat(messages=[{"role": "user", "content": "x" * 5_000_000}])),
     {}, 413),
]


@pytest.mark.parametrize(("name", "body", "headers", "status"), BAD_BODIES,
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_refused_and_stores_nothing(
    http: httpx.Client, name: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = http.post("/v1/chat/completions", content=body,
                         headers={"content-type": "application/json", **headers})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert all_trajectories(http) == []


def test_unknown_model_via_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"


def test_unknown_endpoint_and_method(http: httpx.Client) -> None:
    assert http.get("/v1/nope").status_code == 404
    assert http.get("/v1/chat/completions").status_code == 405
    assert "error" in http.get("/v1/chat/completions").json()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(("fault", "status", "error_type"), [
    ("status=503", 502, openai.APIStatusError),
    ("status=500", 502, openai.APIStatusError),
    ("status=400", 400, openai.BadRequestError),
    ("status=429", 429, openai.RateLimitError),
    ("badjson", 502, openai.APIStatusError),
    ("delay=3000", 504, openai.APIStatusError),  # read_timeout = 2 s in the test config
])
def test_upstream_failure_is_reported_and_captured(
    client: openai.OpenAI, http: httpx.Client, fault: str, status: int, error_type: type
) -> None:
    with pytest.raises(error_type) as caught:
        client.chat.completions.create(model="triage", messages=user(f"fault:{fault}"))
    assert caught.value.status_code == status
    trajectory_id = caught.value.response.headers["x-veteran-trajectory-id"]
    t = http.get(f"/v1/trajectories/{trajectory_id}").json()
    assert t["status"] == "error"
    assert t["error"]
    assert t["response"] is None


def test_upstream_credentials_rejected_is_502_without_upstream_text(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="triage", messages=user("fault:status=401"))
    assert caught.value.status_code == 502
    assert "credentials" in caught.value.message


def test_stream_cut_is_incomplete_with_explicit_error(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    received = []
    with client.chat.completions.with_streaming_response.create(
        model="triage", messages=user("fault:cut=2 one two three four"), stream=True
    ) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        with pytest.raises(openai.APIError) as caught:
            for chunk in response.parse():
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")
    assert "cut" in str(caught.value)
    t = http.get(f"/v1/trajectories/{trajectory_id}").json()
    assert t["status"] == "incomplete"
    assert "cut" in t["error"]
    partial = t["response"]["choices"][0]["message"]["content"]
    assert partial == "".join(received)
    assert partial and partial != "echo: fault:cut=2 one two three four"


def test_stream_cut_raw_bytes_end_with_error_event_not_done(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/chat/completions",
                     json=chat(stream=True, messages=user("fault:cut=1 a b c"))) as response:
        body = b"".join(response.iter_bytes())
    events = [e for e in body.split(b"\n\n") if e]
    assert b"[DONE]" not in body
    assert orjson.loads(events[-1].removeprefix(b"data: "))["error"]["code"] == (
        "stream_interrupted")


@pytest.mark.parametrize("fault", ["split", "crlf", "nodone", "split,crlf"])
def test_awkward_upstream_streams_are_handled(
    client: openai.OpenAI, http: httpx.Client, fault: str
) -> None:
    text = f"fault:{fault} héllo wörld ✓"
    with client.chat.completions.with_streaming_response.create(
        model="triage", messages=user(text), stream=True
    ) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        got = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert got == f"echo: {text}"
    assert http.get(f"/v1/trajectories/{trajectory_id}").json()["status"] == "ok"


def test_upstream_unreachable_is_502(tmp_path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import serve, write_workspace
    from veteran.testing.server import free_port

    closed_port = free_port()
    ws = write_workspace(tmp_path / "ws", f"""
        [providers.up]
        kind = "openai"
        base_url = "http://127.0.0.1:{closed_port}/v1"
        connect_timeout = 2
        [functions.f.variants.a]
        model = "up/m"
    """)
    with serve(ws, database_url) as server, openai.OpenAI(
        base_url=server.url + "/v1", api_key="x", max_retries=0
    ) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="f", messages=user("hi"))
        assert caught.value.status_code == 502
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="f", messages=user("hi"), stream=True)
        assert caught.value.status_code == 502
