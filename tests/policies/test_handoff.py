"""The hand-off watch: which answers are substitutions, fingerprint changes per route, alerts
once an hour per key (log, a webhook POST to a real loopback server), the /metrics counters."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from veteran.gateway.metrics import MAX_LABEL, MAX_MODEL_SERIES, OTHER, CallMetrics
from veteran.policies.handoff import ALERT_EVERY, HandoffWatch, answered_model, substituted
from veteran.policy_settings import HandoffConfig
from veteran.protocols.anthropic import ChunkDecoder, to_openai_completion
from veteran.testing.fake_upstream import FakeUpstream


@pytest.mark.parametrize(("asked", "answered", "expected"), [
    ("gpt-4o", "gpt-4o", False),
    ("gpt-4o", "GPT-4o", False),
    ("gpt-4o", "gpt-4o-2024-08-06", False),  # a dated snapshot of the name asked
    ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06", False),
    ("gpt-4o-2024-08-06", "gpt-4o", False),  # the bare name says no other snapshot
    ("gpt-4", "gpt-4-0613", False),
    ("gpt-3.5-turbo", "gpt-3.5-turbo-0125", False),
    ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022", False),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet-latest", False),
    ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet-20240620", False),
    ("models/gemini-1.5-pro", "gemini-1.5-pro-002", False),
    ("openai/gpt-4o", "gpt-4o-2024-08-06", False),
    ("mistral-large-latest", "mistral-large-2407", False),
    ("command-r", "command-r-08-2024", False),
    ("llama3:latest", "llama3", False),
    ("gpt-4o", "gpt-4o-mini", True),  # another model, whose name starts the same
    ("gpt-4o", "gpt-4o-mini-2024-07-18", True),
    ("gpt-4o-2024-08-06", "gpt-4o-2024-05-13", True),  # another snapshot than the pinned one
    ("claude-3-5-sonnet-latest", "claude-3-haiku-20240307", True),
    ("models/gemini-1.5-pro", "gemini-1.5-flash-002", True),
    ("gpt-4o", "gpt-3.5-turbo", True),
    ("gpt-4", "gpt-4o", True),
    ("o1", "o1-mini", True),
])
def test_substituted(asked: str, answered: str, expected: bool) -> None:
    assert substituted(asked, answered) is expected


def test_answered_model_reads_model_and_fingerprint() -> None:
    assert answered_model({"model": "gpt-4o", "system_fingerprint": "fp_1"}) == ("gpt-4o", "fp_1")
    assert answered_model({"model": "gpt-4o", "system_fingerprint": None}) == ("gpt-4o", None)
    assert answered_model({"model": "", "choices": []}) == (None, None)
    assert answered_model({"model": 4, "system_fingerprint": ["x"]}) == (None, None)


def test_anthropic_answers_keep_the_upstream_model() -> None:
    message = {"id": "msg_1", "model": "claude-3-5-sonnet-20241022", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": "hi"}],
               "usage": {"input_tokens": 3, "output_tokens": 1}}
    assert answered_model(to_openai_completion(message))[0] == "claude-3-5-sonnet-20241022"
    decoder = ChunkDecoder()
    chunks = decoder.event("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "model": "claude-3-haiku-20240307", "usage": {"input_tokens": 3}}})
    chunks += decoder.event("content_block_delta", {
        "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}})
    chunks += decoder.event("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 1}})
    assert len(chunks) == 4
    assert {c["model"] for c in chunks} == {"claude-3-haiku-20240307"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Watched:
    """A watch with its counts, alerts and clock at hand."""

    def __init__(self, **settings: Any) -> None:
        self.counts: list[tuple[dict[str, Any], str, str]] = []
        self.alerts: list[dict[str, Any]] = []
        self.clock = Clock()
        self.watch = HandoffWatch(
            HandoffConfig(**settings), on_alert=self.alerts.append,
            on_count=lambda record, provider, asked: self.counts.append(
                (record, provider, asked)),
            clock=self.clock)

    def answer(self, model: str | None = "gpt-4o-2024-08-06", fingerprint: str | None = None,
               *, asked: str = "gpt-4o", provider: str = "up") -> dict[str, Any] | None:
        response: dict[str, Any] = {"id": "c", "choices": [], "model": model}
        if fingerprint is not None:
            response["system_fingerprint"] = fingerprint
        return self.watch.observe(provider=provider, asked=asked, function="triage",
                                  response=response)


def handoff_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "veteran.handoff" and r.levelno == logging.WARNING]


def test_fingerprints_first_unchanged_changed(caplog: pytest.LogCaptureFixture) -> None:
    w = Watched()
    first = w.answer(fingerprint="fp_1")
    assert first == {"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1",
                     "substituted": False, "fingerprint_changed": False}
    assert w.answer(fingerprint="fp_1") == first  # unchanged
    assert w.answer(fingerprint=None) == {**first, "system_fingerprint": None}  # says nothing
    assert not w.counts and not w.alerts and not handoff_warnings(caplog)

    changed = w.answer(fingerprint="fp_2")
    assert changed == {**first, "system_fingerprint": "fp_2", "fingerprint_changed": True,
                       "previous_fingerprint": "fp_1"}
    assert w.counts == [(changed, "up", "gpt-4o")]
    [alert] = w.alerts
    assert alert["type"] == "veteran.handoff.alert" and alert["kind"] == "fingerprint_change"
    assert (alert["provider"], alert["asked"], alert["function"]) == ("up", "gpt-4o", "triage")
    assert (alert["fingerprint"], alert["previous_fingerprint"]) == ("fp_2", "fp_1")
    assert isinstance(alert["at"], float)
    [message] = handoff_warnings(caplog)
    assert "fp_2" in message and "fp_1" in message and "gpt-4o" in message

    # the route's fingerprint is now fp_2; another route starts its own
    assert w.answer(fingerprint="fp_2") is not None and len(w.counts) == 1
    for other in (w.answer("gpt-4", "fp_9", asked="gpt-4"),
                  w.answer(fingerprint="fp_9", provider="other")):
        assert other is not None and not other["fingerprint_changed"]
    assert len(w.counts) == 1


def test_a_substituted_model_is_recorded_counted_and_alerted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = Watched()
    record = w.answer("gpt-4o-mini")
    assert record == {"model": "gpt-4o-mini", "system_fingerprint": None, "substituted": True,
                      "fingerprint_changed": False}
    assert w.counts == [(record, "up", "gpt-4o")]
    [alert] = w.alerts
    assert alert["kind"] == "substitution"
    assert (alert["asked"], alert["answered"]) == ("gpt-4o", "gpt-4o-mini")
    [message] = handoff_warnings(caplog)
    assert "gpt-4o-mini" in message and "up" in message and "triage" in message


def test_an_answer_without_model_or_fingerprint_has_no_record() -> None:
    w = Watched()
    assert w.answer(None) is None
    assert w.watch.observe(provider="up", asked="gpt-4o", function=None, response={}) is None


def test_alerts_once_an_hour_per_key_and_counts_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = Watched()
    for _ in range(3):
        assert w.answer("gpt-4o-mini")["substituted"]  # type: ignore[index]
    assert len(w.counts) == 3 and len(w.alerts) == 1 and len(handoff_warnings(caplog)) == 1
    w.answer("gpt-3.5-turbo")  # another answered model: its own key
    assert len(w.alerts) == 2
    w.clock.now += ALERT_EVERY - 1
    w.answer("gpt-4o-mini")
    assert len(w.alerts) == 2
    w.clock.now += 2
    w.answer("gpt-4o-mini")
    assert len(w.alerts) == 3 and len(w.counts) == 6
    assert len(handoff_warnings(caplog)) == 3

    # fingerprints: keyed by the new fingerprint; flapping back alerts once per value
    for fingerprint in ("a", "b", "a", "b", "a"):
        w.answer(fingerprint=fingerprint)
    changes = [a for a in w.alerts if a["kind"] == "fingerprint_change"]
    assert [a["fingerprint"] for a in changes] == ["b", "a"]
    assert sum(1 for r, _, _ in w.counts if r["fingerprint_changed"]) == 4


def test_disabled_watch_records_nothing(caplog: pytest.LogCaptureFixture) -> None:
    w = Watched(enabled=False)
    assert w.answer("gpt-4o-mini", "fp_1") is None
    assert w.answer("gpt-4o-mini", "fp_2") is None
    assert not w.counts and not w.alerts and not handoff_warnings(caplog)


def test_fingerprint_alerts_can_be_turned_off(caplog: pytest.LogCaptureFixture) -> None:
    w = Watched(fingerprint_changes=False)
    w.answer(fingerprint="fp_1")
    record = w.answer(fingerprint="fp_2")
    assert record is not None and record["fingerprint_changed"]  # still on the record
    assert len(w.counts) == 1 and not w.alerts and not handoff_warnings(caplog)
    w.answer("gpt-4o-mini", "fp_2")  # substitutions still alert
    assert [a["kind"] for a in w.alerts] == ["substitution"]


def test_settings_replaced_on_reload_take_effect() -> None:
    w = Watched()
    w.watch.settings = HandoffConfig(enabled=False)
    assert w.answer("gpt-4o-mini") is None


def test_alert_is_posted_to_the_webhook(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture,
) -> None:
    watch = HandoffWatch(HandoffConfig(
        webhook=f"{upstream.url}/chat/completions?token=s3cret"))

    async def answered() -> None:
        for _ in range(2):  # the second only counted
            watch.observe(provider="up", asked="gpt-4o", function="triage",
                          response={"model": "gpt-4o-mini", "system_fingerprint": "fp_1"})
        await watch.drain()

    asyncio.run(answered())
    [hook] = upstream.requests
    assert hook["type"] == "veteran.handoff.alert" and hook["kind"] == "substitution"
    assert (hook["provider"], hook["asked"], hook["answered"], hook["function"]) == (
        "up", "gpt-4o", "gpt-4o-mini", "triage")
    assert hook["fingerprint"] == "fp_1" and hook["previous_fingerprint"] is None
    assert upstream.headers[0]["user-agent"] == "veteran-handoff"
    assert "s3cret" not in caplog.text


def test_a_failed_webhook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    watch = HandoffWatch(HandoffConfig(webhook="http://127.0.0.1:9/hook?key=s3cret"))

    async def answered() -> dict[str, Any] | None:
        record = watch.observe(provider="up", asked="gpt-4o", function=None,
                               response={"model": "gpt-4o-mini"})
        await watch.drain()
        return record

    assert asyncio.run(answered())["substituted"]  # type: ignore[index]
    assert "hand-off webhook to 127.0.0.1 failed" in caplog.text
    assert "s3cret" not in caplog.text


def test_without_a_running_loop_the_alert_is_logged_only(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture,
) -> None:
    watch = HandoffWatch(HandoffConfig(webhook=f"{upstream.url}/chat/completions"))
    record = watch.observe(provider="up", asked="gpt-4o", function=None,
                           response={"model": "gpt-4o-mini"})
    assert record is not None and record["substituted"]
    assert len(handoff_warnings(caplog)) == 1 and not upstream.requests


def render(metrics: CallMetrics, prefix: str) -> list[str]:
    lines: list[str] = []
    metrics.render(lines)
    return [line for line in lines if line.startswith(prefix)]


def test_metrics_count_handoffs_fingerprints_and_policy_decisions() -> None:
    metrics = CallMetrics()
    watch = HandoffWatch(HandoffConfig(), on_count=metrics.handoff)
    for model, fingerprint in [("gpt-4o-mini", "fp_1"), ("gpt-4o-mini", "fp_2"),
                               ("gpt-4o-2024-08-06", "fp_1"), ("gpt-4o", "fp_1")]:
        watch.observe(provider="up", asked="gpt-4o", function=None,
                      response={"model": model, "system_fingerprint": fingerprint})
    metrics.policy("confidential", "route")
    metrics.policy("confidential", "route")
    metrics.policy("redact", "redact")
    assert render(metrics, "veteran_handoffs_total") == [
        'veteran_handoffs_total{provider="up",asked="gpt-4o",answered="gpt-4o-mini"} 2']
    assert render(metrics, "veteran_fingerprint_changes_total") == [
        'veteran_fingerprint_changes_total{provider="up",model="gpt-4o"} 2']
    assert render(metrics, "veteran_policy_decisions_total") == [
        'veteran_policy_decisions_total{rule="confidential",action="route"} 2',
        'veteran_policy_decisions_total{rule="redact",action="redact"} 1']
    lines: list[str] = []
    CallMetrics().render(lines)  # the families are there before anything is counted
    assert "# TYPE veteran_handoffs_total counter" in lines
    assert "# TYPE veteran_fingerprint_changes_total counter" in lines
    assert "# TYPE veteran_policy_decisions_total counter" in lines


def test_handoff_label_sets_are_bounded() -> None:
    metrics = CallMetrics()
    record = {"substituted": True, "fingerprint_changed": True}
    for n in range(MAX_MODEL_SERIES + 50):  # model names an upstream or a client made up
        metrics.handoff({**record, "model": f"made-up-{n}"}, "up", f"asked-{n}")
    metrics.handoff({**record, "model": "x" * 5000}, "other", "y" * 5000)
    handoffs = render(metrics, "veteran_handoffs_total")
    assert len(handoffs) == MAX_MODEL_SERIES + 2  # and (other) per provider
    assert (f'veteran_handoffs_total{{provider="up",asked="{OTHER}",answered="{OTHER}"}} 50'
            in handoffs)
    assert (f'veteran_handoffs_total{{provider="other",asked="{OTHER}",answered="{OTHER}"}} 1'
            in handoffs)
    assert len(render(metrics, "veteran_fingerprint_changes_total")) == MAX_MODEL_SERIES + 2
    long = CallMetrics()  # a name is cut short
    long.handoff({**record, "model": "x" * 5000}, "up", "y" * 5000)
    assert render(long, "veteran_handoffs_total") == [
        f'veteran_handoffs_total{{provider="up",asked="{"y" * MAX_LABEL}",'
        f'answered="{"x" * MAX_LABEL}"}} 1']
    quoted = CallMetrics()
    quoted.handoff({"substituted": True, "model": 'a"b\nc'}, "up", "gpt-4o")
    assert render(quoted, "veteran_handoffs_total") == [
        'veteran_handoffs_total{provider="up",asked="gpt-4o",answered="a\\"b\\nc"} 1']
