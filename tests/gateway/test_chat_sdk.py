"""The OpenAI surface through the official `openai` SDK, against a real gateway on loopback in
front of a fake upstream, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import openai
import pytest

from veteran.testing.fake_upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "my invoice is wrong"}]






def stored(http: httpx.Client, trajectory_id: str) -> dict:
    response = http.get(f"/v1/trajectories/{trajectory_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_function_call_is_answered_and_captured(
    client: openai.OpenAI, http: httpx.Client, upstream: FakeUpstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="triage", messages=MESSAGES)
    answer = raw.parse()
    assert answer.choices[0].message.content == "echo: my invoice is wrong"
    trajectory_id = raw.headers["x-veteran-trajectory-id"]
    assert raw.headers["x-veteran-variant"] == "big"
    assert raw.headers["x-veteran-episode-id"]
    # the upstream saw the variant's model and the function's system prompt first
    sent = upstream.requests[-1]
    assert sent["model"] == "gpt-x"
    assert sent["messages"][0] == {"role": "system", "content": "You route support tickets."}
    t = stored(http, trajectory_id)
    assert t["status"] == "ok"
    assert (t["function"], t["variant"], t["provider"], t["model"]) == (
        "triage",
        "big",
        "up",
        "gpt-x",
    )
    assert t["response"]["choices"][0]["message"]["content"] == "echo: my invoice is wrong"
    assert t["request"]["messages"][-1] == MESSAGES[0]
    usage = answer.usage
    assert usage is not None
    assert t["usage"]["prompt_tokens"] == usage.prompt_tokens
    # prices: 1.0 per Mtok in, 2.0 per Mtok out
    expected = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert t["cost"] == pytest.approx(expected)
    assert t["latency_ms"] > 0


def test_provider_model_and_pinned_variant(
    client: openai.OpenAI, http: httpx.Client, upstream: FakeUpstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="up/any-model", messages=MESSAGES)
    assert upstream.requests[-1]["model"] == "any-model"
    assert stored(http, raw.headers["x-veteran-trajectory-id"])["function"] is None
    raw = client.chat.completions.with_raw_response.create(
        model="triage", messages=MESSAGES, extra_headers={"x-veteran-variant": "small"}
    )
    assert raw.headers["x-veteran-variant"] == "small"
    sent = upstream.requests[-1]
    assert sent["model"] == "gpt-small"
    assert sent["temperature"] == 0.1  # the variant's params, under the request's own


def test_streaming_with_usage_is_reassembled(client: openai.OpenAI, http: httpx.Client) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="triage", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: my invoice is wrong"
    assert len([c for c in chunks if c.choices]) > 2
    assert chunks[-1].usage is not None and not chunks[-1].choices
    t = stored(http, trajectory_id)
    assert t["stream"] is True and t["status"] == "ok"
    assert t["response"]["choices"][0]["message"]["content"] == text
    assert t["usage"]["total_tokens"] == chunks[-1].usage.total_tokens
    assert t["ttft_ms"] is not None and t["ttft_ms"] <= t["latency_ms"]


def test_streaming_without_include_usage_hides_usage_but_captures_it(
    client: openai.OpenAI, http: httpx.Client, upstream: FakeUpstream
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="triage", messages=MESSAGES, stream=True
    ) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        chunks = list(response.parse())
    assert all(c.usage is None for c in chunks)
    # veteran asked the upstream for usage anyway, so the trajectory has token counts
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}
    assert stored(http, trajectory_id)["usage"]["total_tokens"] > 0


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "route_ticket",
            "description": "Route a ticket",
            "parameters": {"type": "object", "properties": {"queue": {"type": "string"}}},
        },
    }
]


def test_tools_plain_and_streamed(client: openai.OpenAI, http: httpx.Client) -> None:
    answer = client.chat.completions.create(model="triage", messages=MESSAGES, tools=TOOLS)
    call = answer.choices[0].message.tool_calls[0]
    assert call.function.name == "route_ticket"
    assert answer.choices[0].finish_reason == "tool_calls"
    with client.chat.completions.with_streaming_response.create(
        model="triage", messages=MESSAGES, tools=TOOLS, stream=True
    ) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        chunks = list(response.parse())
    names = [
        d.function.name
        for c in chunks
        if c.choices
        for d in c.choices[0].delta.tool_calls or []
        if d.function and d.function.name
    ]
    assert names == ["route_ticket"]
    message = stored(http, trajectory_id)["response"]["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "route_ticket"
    assert stored(http, trajectory_id)["response"]["choices"][0]["finish_reason"] == "tool_calls"


def test_response_format_json_schema_passes_through(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "route",
            "schema": {"type": "object", "properties": {"queue": {"type": "string"}}},
        },
    }
    client.chat.completions.create(model="triage", messages=MESSAGES, response_format=fmt)
    assert upstream.requests[-1]["response_format"] == fmt


def test_episode_and_tags(client: openai.OpenAI, http: httpx.Client) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="triage",
        messages=MESSAGES,
        extra_headers={
            "x-veteran-episode-id": "case-42",
            "x-veteran-tags": "team=billing,env=prod",
        },
        extra_body={"veteran_tags": {"env": "staging"}},
    )
    assert raw.headers["x-veteran-episode-id"] == "case-42"
    t = stored(http, raw.headers["x-veteran-trajectory-id"])
    assert t["episode_id"] == "case-42"
    assert t["tags"] == {"team": "billing", "env": "staging"}
    assert "veteran_tags" not in t["request"]


def test_models_lists_functions_and_provider_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"triage", "up/gpt-x", "up/gpt-small"} <= ids


def test_healthz(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"


def test_feedback_and_trajectories_through_the_sdk(client: openai.OpenAI) -> None:
    """The SDK's generic verbs reach veteran's own endpoints with the same client and errors."""
    raw = client.chat.completions.with_raw_response.create(model="triage", messages=MESSAGES)
    trajectory_id = raw.headers["x-veteran-trajectory-id"]
    given = client.post(
        "/feedback", cast_to=object,
        body={"trajectory_id": trajectory_id, "metric": "resolved", "value": True},
    )
    assert given["metric"] == "resolved"  # type: ignore[index]
    listed = client.get("/trajectories", cast_to=object, options={"params": {"function": "triage"}})
    assert [t["id"] for t in listed["data"]] == [trajectory_id]  # type: ignore[index]
    one = client.get(f"/trajectories/{trajectory_id}", cast_to=object)
    assert one["feedback"][0]["value"] is True  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.get("/trajectories/nope", cast_to=object)
    with pytest.raises(openai.BadRequestError):
        client.post("/feedback", cast_to=object, body={"metric": "resolved", "value": True})
