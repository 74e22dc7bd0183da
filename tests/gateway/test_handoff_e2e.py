"""Vendor hand-off detection end to end: a real gateway on loopback in front of upstreams that
say which model answered, called through the official `openai` SDK. An upstream that answers
`gpt-4o` with `gpt-4o-mini` (and an Anthropic one that answers with another Claude) is caught
on the trajectory, in /metrics and by a webhook; an honest one is not, until its
`system_fingerprint` changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import serve, write_workspace
from tests.gateway.test_metrics import scrape, value
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread

CONFIG = """
[providers.liar]
kind = "openai"
base_url = "{liar}/v1"
[providers.liar.retry]
max_retries = 0

[providers.honest]
kind = "openai"
base_url = "{honest}/v1"
[providers.honest.retry]
max_retries = 0

[providers.claude]
kind = "anthropic"
base_url = "{liar}"
[providers.claude.retry]
max_retries = 0

[functions.triage]
[functions.triage.variants.big]
model = "liar/gpt-4o"

[functions.faq]
[functions.faq.variants.a]
model = "honest/gpt-4o"

[functions.summary]
[functions.summary.variants.a]
model = "claude/claude-3-5-sonnet-latest"

[handoff]
webhook = "{hook}/chat/completions?token=s3cret"  # the fake records what it is sent
"""
MESSAGES = [{"role": "user", "content": "my invoice is wrong"}]
Scope = dict[str, Any]


@dataclass
class Upstream:
    """An OpenAI-compatible (and Anthropic Messages) upstream that answers "hello" and says
    `answered` answered (None: the model asked), with `fingerprint` as its system_fingerprint."""

    answered: str | None = None
    fingerprint: str = "fp_1"
    asked: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = orjson.loads(raw)
        self.asked.append(body["model"])
        model = self.answered or body["model"]
        if scope["path"] == "/v1/messages":
            answer: Any = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                           "content": [{"type": "text", "text": "hello"}],
                           "stop_reason": "end_turn", "stop_sequence": None,
                           "usage": {"input_tokens": 3, "output_tokens": 1}}
        else:
            head = {"id": "chatcmpl-1", "created": 0, "model": model,
                    "system_fingerprint": self.fingerprint}
            if body.get("stream"):
                await self._stream(send, head)
                return
            answer = {**head, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})

    async def _stream(self, send: Any, head: dict[str, Any]) -> None:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {**head, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
            return b"data: " + orjson.dumps(data) + b"\n\n"

        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for event in (chunk({"role": "assistant", "content": ""}), chunk({"content": "hello"}),
                      chunk({}, "stop"), b"data: [DONE]\n\n"):
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Setup:
    gateway: ServerThread
    liar: Upstream
    honest: Upstream
    hook: FakeUpstream
    client: openai.OpenAI

    def trajectory(self, trajectory_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.gateway.url}/v1/trajectories/{trajectory_id}", timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def ask(self, model: str) -> dict[str, Any]:
        """Call `model` through the SDK; its stored trajectory."""
        raw = self.client.chat.completions.with_raw_response.create(model=model,
                                                                    messages=MESSAGES)
        assert raw.parse().choices[0].message.content == "hello"
        return self.trajectory(raw.headers["x-veteran-trajectory-id"])

    def alerts(self, n: int) -> list[dict[str, Any]]:
        """The webhook's first `n` alerts, once they arrived (they are posted in the
        background)."""
        deadline = time.monotonic() + 20
        while len(self.hook.requests) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.hook.requests[:n]


@pytest.fixture
def setup(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Setup]:
    liar, honest = Upstream(answered="gpt-4o-mini"), Upstream()
    with (ServerThread(liar, lifespan="off") as liar_server,
          ServerThread(honest, lifespan="off") as honest_server):
        ws = write_workspace(tmp_path / "ws", CONFIG.format(
            liar=liar_server.url, honest=honest_server.url, hook=upstream.url))
        with serve(ws) as gateway, openai.OpenAI(
                base_url=gateway.url + "/v1", api_key="unused", max_retries=0,
                timeout=20) as client:
            yield Setup(gateway, liar, honest, upstream, client)


def test_a_substituting_upstream_is_caught(
    setup: Setup, caplog: pytest.LogCaptureFixture,
) -> None:
    t = setup.ask("triage")
    assert setup.liar.asked == ["gpt-4o"]
    assert t["model"] == "gpt-4o"  # what was asked
    assert t["upstream"] == {"model": "gpt-4o-mini", "system_fingerprint": "fp_1",
                             "substituted": True, "fingerprint_changed": False}
    [alert] = setup.alerts(1)
    assert alert["type"] == "veteran.handoff.alert" and alert["kind"] == "substitution"
    assert (alert["provider"], alert["asked"], alert["answered"], alert["function"]) == (
        "liar", "gpt-4o", "gpt-4o-mini", "triage")

    # streamed: the assembled answer says the same; counted again, not alerted again
    with setup.client.chat.completions.with_streaming_response.create(
            model="triage", messages=MESSAGES, stream=True) as response:
        trajectory_id = response.headers["x-veteran-trajectory-id"]
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "hello"
    assert setup.trajectory(trajectory_id)["upstream"]["substituted"] is True

    samples = scrape(setup.gateway)
    assert value(samples, "veteran_handoffs_total", provider="liar", asked="gpt-4o",
                 answered="gpt-4o-mini") == 2
    assert len(setup.hook.requests) == 1
    warnings = [r for r in caplog.records if r.name == "veteran.handoff"]
    assert len(warnings) == 1 and "gpt-4o-mini" in warnings[0].getMessage()
    assert "s3cret" not in caplog.text


def test_an_anthropic_upstream_answering_another_claude_is_caught(setup: Setup) -> None:
    setup.liar.answered = "claude-3-haiku-20240307"
    t = setup.ask("summary")
    assert setup.liar.asked == ["claude-3-5-sonnet-latest"]
    assert t["upstream"]["model"] == "claude-3-haiku-20240307"
    assert t["upstream"]["substituted"] is True
    [alert] = setup.alerts(1)
    assert (alert["provider"], alert["answered"]) == ("claude", "claude-3-haiku-20240307")

    setup.liar.answered = "claude-3-5-sonnet-20241022"  # the snapshot the alias names
    assert setup.ask("summary")["upstream"]["substituted"] is False


def test_an_honest_upstream_is_silent_until_its_fingerprint_changes(
    setup: Setup, caplog: pytest.LogCaptureFixture,
) -> None:
    for _ in range(2):
        t = setup.ask("faq")
        assert t["upstream"] == {"model": "gpt-4o", "system_fingerprint": "fp_1",
                                 "substituted": False, "fingerprint_changed": False}
    setup.ask("honest/gpt-4o")  # a PROVIDER/MODEL call of the same route
    assert not [r for r in caplog.records if r.name == "veteran.handoff"]
    samples = scrape(setup.gateway)
    assert not [k for k in samples if k[0] in ("veteran_handoffs_total",
                                               "veteran_fingerprint_changes_total")]

    setup.honest.fingerprint = "fp_2"
    t = setup.ask("faq")
    assert t["upstream"] == {"model": "gpt-4o", "system_fingerprint": "fp_2",
                             "substituted": False, "fingerprint_changed": True,
                             "previous_fingerprint": "fp_1"}
    [alert] = setup.alerts(1)
    assert alert["kind"] == "fingerprint_change" and alert["provider"] == "honest"
    assert (alert["fingerprint"], alert["previous_fingerprint"]) == ("fp_2", "fp_1")
    assert alert["function"] == "faq"
    assert value(scrape(setup.gateway), "veteran_fingerprint_changes_total",
                 provider="honest", model="gpt-4o") == 1
    assert setup.ask("faq")["upstream"]["fingerprint_changed"] is False
