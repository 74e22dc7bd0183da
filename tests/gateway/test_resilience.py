"""Retries, fallbacks, circuit breaking, timeouts and operator switches, against a real gateway on
loopback in front of three fake upstreams: `up` and `spare` answer (faults chosen per message),
`broken` fails with whatever fault the test sets on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner

from tests.conftest import serve, write_workspace
from veteran.cli import cli
from veteran.testing.fake_upstream import FakeUpstream, Fault
from veteran.testing.server import ServerThread

CONFIG = """
[providers.up]
kind = "openai"
base_url = "{up}"
read_timeout = 5
[providers.up.retry]
max_retries = 2
backoff_initial = 0.01
[providers.up.breaker]
failures = 50

[providers.spare]
kind = "openai"
base_url = "{spare}"

[providers.broken]
kind = "openai"
base_url = "{broken}"
[providers.broken.retry]
max_retries = 1
backoff_initial = 0.01
[providers.broken.breaker]
failures = 3
cooldown = 0.6

[functions.triage]
fallbacks = ["spare"]
[functions.triage.variants.big]
model = "up/gpt-x"
[functions.triage.variants.spare]
model = "spare/gpt-s"
weight = 0

[functions.flaky]
fallbacks = ["spare"]
[functions.flaky.variants.main]
model = "broken/gpt-b"
[functions.flaky.variants.spare]
model = "spare/gpt-s"
weight = 0

[functions.lonely]
[functions.lonely.variants.only]
model = "broken/gpt-b"

[functions.stubborn]
[functions.stubborn.variants.s]
model = "broken/gpt-b"
max_retries = 2

[functions.quick]
[functions.quick.variants.q]
model = "up/gpt-x"
read_timeout = 0.2
max_retries = 0
"""


class Setup:
    def __init__(self, server: ServerThread, up: FakeUpstream, spare: FakeUpstream,
                 broken: FakeUpstream, workspace: Path) -> None:
        self.server, self.up, self.spare, self.broken = server, up, spare, broken
        self.workspace = workspace
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def chat(self, model: str, text: str, **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return self.http.post("/v1/chat/completions", json=body)

    def attempts(self, response: httpx.Response) -> list[dict[str, Any]]:
        id = response.headers["x-veteran-trajectory-id"]
        found = self.http.get(f"/v1/trajectories/{id}")
        assert found.status_code == 200, found.text
        attempts: list[dict[str, Any]] = found.json()["attempts"]
        return attempts

    def states(self) -> dict[str, str]:
        states: dict[str, str] = self.http.get("/healthz").json()["provider_states"]
        return states


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    # the gateway's own behaviour: one store (the embedded SQLite) is enough
    with FakeUpstream() as up, FakeUpstream() as spare, FakeUpstream("status=503") as broken:
        ws = write_workspace(tmp_path / "ws", CONFIG.format(
            up=up.url, spare=spare.url, broken=broken.url))
        with serve(ws) as server:
            s = Setup(server, up, spare, broken, ws.path)
            yield s
            s.http.close()


def test_retryable_failures_are_retried_until_one_answers(setup: Setup) -> None:
    response = setup.chat("triage", "fault:fail=2,status=503 retry-me")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"].startswith("echo: fault:")
    assert len(setup.up.requests) == 3 and not setup.spare.requests
    attempts = setup.attempts(response)
    assert [a["status"] for a in attempts] == ["error", "error", "ok"]
    assert [a.get("upstream_status") for a in attempts] == [503, 503, None]
    assert all(a["provider"] == "up" for a in attempts)
    assert all(0 < a["retry_in_ms"] <= 20 for a in attempts[:2])  # jittered, doubling, small


def test_429_waits_for_retry_after(setup: Setup) -> None:
    started = time.perf_counter()
    response = setup.chat("triage", "fault:fail=1,status=429,retry_after=0.4 slow-down")
    assert response.status_code == 200, response.text
    assert time.perf_counter() - started >= 0.4
    attempts = setup.attempts(response)
    assert attempts[0]["upstream_status"] == 429 and attempts[0]["retry_in_ms"] >= 400
    assert attempts[1]["status"] == "ok" and attempts[1]["provider"] == "up"


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_a_request_the_provider_calls_wrong_is_neither_retried_nor_sent_elsewhere(
    setup: Setup, status: int
) -> None:
    response = setup.chat("triage", f"fault:status={status}")
    assert response.status_code == status
    assert len(setup.up.requests) == 1 and not setup.spare.requests
    assert [a["status"] for a in setup.attempts(response)] == ["error"]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_not_retried_but_fall_over(setup: Setup, status: int) -> None:
    setup.broken.fake.fault = Fault(status=status)
    response = setup.chat("flaky", "hello")
    assert response.status_code == 200, response.text
    assert response.headers["x-veteran-variant"] == "spare"
    assert len(setup.broken.requests) == 1
    attempts = setup.attempts(response)
    assert [(a["provider"], a["status"]) for a in attempts] == [
        ("broken", "error"), ("spare", "ok")]


def test_fallbacks_answer_when_retries_run_out(setup: Setup) -> None:
    response = setup.chat("flaky", "hello", stream=False)
    assert response.status_code == 200, response.text
    assert response.headers["x-veteran-variant"] == "spare"
    assert len(setup.broken.requests) == 2  # max_retries = 1
    assert setup.spare.requests[-1]["model"] == "gpt-s"
    id = response.headers["x-veteran-trajectory-id"]
    trajectory = setup.http.get(f"/v1/trajectories/{id}").json()
    assert (trajectory["provider"], trajectory["variant"], trajectory["status"]) == (
        "spare", "spare", "ok")
    assert [(a["provider"], a["status"]) for a in trajectory["attempts"]] == [
        ("broken", "error"), ("broken", "error"), ("spare", "ok")]


def test_a_long_retry_after_is_not_waited_for(setup: Setup) -> None:
    setup.broken.fake.fault = Fault.parse("status=429,retry_after=3600")
    started = time.perf_counter()
    response = setup.chat("flaky", "hello")
    assert response.status_code == 200
    assert time.perf_counter() - started < 2
    assert len(setup.broken.requests) == 1
    assert "retry_in_ms" not in setup.attempts(response)[0]


def test_a_rate_limit_that_outlasts_the_retries_reaches_the_client_as_429(setup: Setup) -> None:
    setup.broken.fake.fault = Fault.parse("status=429,retry_after=0.05")
    response = setup.chat("lonely", "hello")
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "1"
    assert len(setup.broken.requests) == 2


def test_without_fallbacks_the_last_failure_is_the_answer(setup: Setup) -> None:
    response = setup.chat("lonely", "hello")
    assert response.status_code == 502
    assert "503" in response.json()["error"]["message"]
    assert len(setup.broken.requests) == 2
    # a pinned variant is what the client asked for: no fallback either
    pinned = setup.http.post(
        "/v1/chat/completions", headers={"x-veteran-variant": "main"},
        json={"model": "flaky", "messages": [{"role": "user", "content": "hi"}]})
    assert pinned.status_code == 502 and not setup.spare.requests


def test_streams_are_retried_before_their_first_chunk(setup: Setup) -> None:
    with openai.OpenAI(base_url=setup.server.url + "/v1", api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="triage", stream=True,
            messages=[{"role": "user", "content": "fault:fail=1,status=502 stream-retry"}],
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        id = raw.headers["x-veteran-trajectory-id"]
    assert text == "echo: fault:fail=1,status=502 stream-retry"
    trajectory = setup.http.get(f"/v1/trajectories/{id}").json()
    assert [a["status"] for a in trajectory["attempts"]] == ["error", "ok"]
    assert trajectory["status"] == "ok"


def test_a_variant_timeout_applies_to_its_calls(setup: Setup) -> None:
    started = time.perf_counter()
    response = setup.chat("quick", "fault:delay=3000")
    assert response.status_code == 504
    assert time.perf_counter() - started < 2
    assert len(setup.attempts(response)) == 1  # a timeout is not retried


def test_one_request_failing_all_its_attempts_does_not_mark_the_provider_down(
    setup: Setup
) -> None:
    # failures = 3 and three attempts: they are one failed request, not three failures
    failed = setup.chat("stubborn", "one bad request")
    assert failed.status_code == 502
    assert [a["status"] for a in setup.attempts(failed)] == ["error"] * 3
    assert setup.states()["broken"] == "closed"
    calls = len(setup.broken.requests)
    unrelated = setup.chat("lonely", "another client")  # reaches the provider, no 503
    assert unrelated.status_code == 502
    assert len(setup.broken.requests) == calls + 2
    assert setup.states()["broken"] == "closed"  # two failed requests of three


def test_a_request_answered_after_retries_resets_the_count(setup: Setup) -> None:
    setup.chat("lonely", "one")
    setup.chat("lonely", "two")
    answered = setup.chat("lonely", "fault:fail=1,status=503 three")  # fails once, then ok
    assert answered.status_code == 200
    assert [a["status"] for a in setup.attempts(answered)] == ["error", "ok"]
    setup.chat("lonely", "four")
    setup.chat("lonely", "five")
    assert setup.states()["broken"] == "closed"  # two in a row since the answer
    setup.chat("lonely", "six")
    assert setup.states()["broken"] == "open"


def test_a_failing_provider_is_marked_down_then_probed_back(setup: Setup) -> None:
    assert setup.states()["broken"] == "closed"
    first = setup.chat("flaky", "one")  # each request fails twice (max_retries = 1) ...
    second = setup.chat("flaky", "two")
    assert setup.states()["broken"] == "closed"  # ... and counts once
    third = setup.chat("flaky", "three")  # three failed requests in a row open the circuit
    assert first.status_code == second.status_code == third.status_code == 200
    assert setup.states()["broken"] == "open"
    calls = len(setup.broken.requests)
    skipped = setup.chat("flaky", "three")
    assert skipped.status_code == 200 and len(setup.broken.requests) == calls
    attempts = setup.attempts(skipped)
    assert attempts[0]["status"] == "skipped"
    assert "marked down (3 failed requests in a row within 60 s)" in attempts[0]["error"]
    direct = setup.chat("broken/gpt-b", "four")  # nothing to fall over to
    assert direct.status_code == 503
    assert direct.json()["error"]["code"] == "provider_unavailable"
    assert direct.headers["retry-after"] == "1"  # the cooldown left, in whole seconds

    setup.broken.fake.fault = Fault()  # the provider recovers
    time.sleep(0.7)  # cooldown
    assert setup.states()["broken"] == "half-open"
    probe = setup.chat("flaky", "five")
    assert probe.status_code == 200 and probe.headers["x-veteran-variant"] == "main"
    assert setup.states()["broken"] == "closed"


def test_a_failed_probe_opens_the_circuit_again(setup: Setup) -> None:
    for _ in range(3):
        setup.chat("flaky", "x")
    assert setup.states()["broken"] == "open"
    time.sleep(0.7)
    calls = len(setup.broken.requests)
    probe = setup.chat("flaky", "probe")
    assert probe.status_code == 200  # the fallback answered
    assert len(setup.broken.requests) == calls + 1  # one probe: a single attempt, no retries
    assert [(a["provider"], a["status"]) for a in setup.attempts(probe)] == [
        ("broken", "error"), ("spare", "ok")]
    assert setup.states()["broken"] == "open"
    skipped = setup.chat("flaky", "after the probe")
    assert "marked down (its probe call failed)" in setup.attempts(skipped)[0]["error"]


def test_an_operator_switches_a_provider_off_and_on_without_restart(setup: Setup) -> None:
    def providers(*args: str) -> str:
        result = CliRunner().invoke(
            cli, ["providers", *args, "--workspace", str(setup.workspace)],
            catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert setup.chat("triage", "before").headers["x-veteran-variant"] == "big"
    providers("disable", "up", "--reason", "vendor suspended the account at 5:21 PM")
    assert "up\topenai\tdisabled  (vendor suspended" in providers("list")
    deadline = time.monotonic() + 3
    while setup.states()["up"] != "disabled":
        assert time.monotonic() < deadline, "the gateway did not see the switch"
        time.sleep(0.05)
    calls = len(setup.up.requests)
    moved = setup.chat("triage", "during")
    assert moved.status_code == 200 and moved.headers["x-veteran-variant"] == "spare"
    assert len(setup.up.requests) == calls
    assert "5:21 PM" in setup.attempts(moved)[0]["error"]
    direct = setup.chat("up/gpt-x", "direct")
    assert direct.status_code == 503 and "switched off" in direct.json()["error"]["message"]

    providers("enable", "up")
    deadline = time.monotonic() + 3
    while setup.states()["up"] != "closed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert setup.chat("triage", "after").headers["x-veteran-variant"] == "big"


def test_switching_an_unknown_provider_is_refused(setup: Setup) -> None:
    result = CliRunner().invoke(
        cli, ["providers", "disable", "nope", "--workspace", str(setup.workspace)])
    assert result.exit_code != 0


def test_which_failures_are_retried_and_which_fall_over() -> None:
    from veteran.errors import (
        ProviderUnavailable,
        StreamInterrupted,
        UpstreamError,
        UpstreamRejected,
        UpstreamTimeout,
    )
    from veteran.gateway.resilience import fails_over, retryable

    cases = {
        "connection refused": (UpstreamError("no connection"), True, True),
        "500": (UpstreamError("x", upstream_status=500), True, True),
        "501": (UpstreamError("x", upstream_status=501), False, True),
        "503": (UpstreamError("x", upstream_status=503), True, True),
        "401 (our key)": (UpstreamError("x", upstream_status=401), False, True),
        "429": (UpstreamRejected(429, "x"), True, True),
        "400": (UpstreamRejected(400, "x"), False, False),
        "404": (UpstreamRejected(404, "x"), False, False),
        "timeout": (UpstreamTimeout("x"), False, True),
        "cut stream": (StreamInterrupted("x"), False, True),
        "down": (ProviderUnavailable("x"), False, True),
    }
    for name, (exc, retry, fall) in cases.items():
        assert (retryable(exc), fails_over(exc)) == (retry, fall), name


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    from veteran.errors import UpstreamError
    from veteran.gateway.resilience import Caller
    from veteran.gateway.routing import Route
    from veteran.providers.base import RetrySettings
    from veteran.providers.mock import MockProvider

    settings = MockProvider.Settings(kind="mock", retry=RetrySettings(
        max_retries=10, backoff_initial=0.1, backoff_max=1.0, retry_after_max=5))
    provider = MockProvider("m", settings)
    caller = Caller({"m": provider}, disabled={})
    route = Route(provider=provider, model="x", max_retries=10)
    exc = UpstreamError("x", upstream_status=503)
    for n, high in enumerate([0.1, 0.2, 0.4, 0.8, 1.0, 1.0]):
        waits = [caller._wait(route, n, exc) for _ in range(200)]
        assert all(w is not None and high / 2 <= w <= high for w in waits)
        assert len(set(waits)) > 100  # jittered
    assert caller._wait(route, 10, exc) is None  # retries used up
    asked = UpstreamError("x", upstream_status=503, retry_after=3.0)
    assert caller._wait(route, 0, asked) == 3.0
    too_long = UpstreamError("x", upstream_status=503, retry_after=6.0)
    assert caller._wait(route, 0, too_long) is None


def test_the_breaker_counts_failed_requests_within_its_window() -> None:
    from veteran.gateway.resilience import Breaker
    from veteran.providers.base import BreakerSettings

    breaker = Breaker(BreakerSettings(failures=3, window=10, cooldown=5))
    for now in (0.0, 6.0, 12.0, 18.0, 24.0):  # spread out: never three within 10 s
        breaker.failed(now)
        assert breaker.state(now) == "closed"
    breaker.failed(25.0)  # 18, 24, 25: three within 10 s
    assert breaker.state(25.0) == "open" and breaker.opened == 1
    assert breaker.reason == "3 failed requests in a row within 10 s"
    breaker.failed(26.0)  # a request that was in flight when it opened: no longer cooldown
    assert breaker.open_until == 30.0
    assert breaker.state(30.0) == "half-open"
    assert breaker.admit(30.0) is True and breaker.admit(30.0) is False  # one probe at a time
    breaker.succeeded()
    assert breaker.state(30.0) == "closed" and breaker.admit(30.0) is None
    breaker.failed(31.0)
    breaker.failed(32.0)
    breaker.succeeded()  # an answer between failures: the count starts again
    breaker.failed(33.0)
    breaker.failed(34.0)
    assert breaker.state(34.0) == "closed"


def test_a_request_counts_once_per_provider_however_many_routes_it_tries_there() -> None:
    import asyncio

    from veteran.errors import UpstreamError
    from veteran.gateway.resilience import Caller
    from veteran.gateway.routing import Route
    from veteran.providers.base import BreakerSettings, RetrySettings
    from veteran.providers.mock import MockProvider
    from veteran.types import TrajectoryRecord

    settings = MockProvider.Settings(kind="mock", retry=RetrySettings(backoff_initial=0.001),
                                     breaker=BreakerSettings(failures=2))
    provider = MockProvider("m", settings)
    caller = Caller({"m": provider}, disabled={})
    second = Route(provider=provider, model="b", max_retries=1)
    route = Route(provider=provider, model="a", max_retries=1, fallbacks=(second,))
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}

    async def fail() -> list[tuple[str, str]]:
        provider.script.clear()
        provider.enqueue(*(UpstreamError("down", upstream_status=500) for _ in range(4)))
        record = TrajectoryRecord(id="t", episode_id="e", request=body, created_at=0.0)
        with pytest.raises(UpstreamError):
            await caller.complete(route, body, record)
        return [(a["model"], a["status"]) for a in record.attempts or []]

    assert asyncio.run(fail()) == [("a", "error")] * 2 + [("b", "error")] * 2
    assert caller.breakers["m"].state(time.monotonic()) == "closed"  # four attempts, one request
    # the second failed request opens the circuit as it leaves route a: b is skipped
    assert asyncio.run(fail()) == [("a", "error")] * 2 + [("b", "skipped")]
    assert caller.breakers["m"].state(time.monotonic()) == "open"
