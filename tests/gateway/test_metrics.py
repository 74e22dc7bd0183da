"""`GET /metrics`' call series: scraped from a real gateway on loopback in front of the fake
upstream after answered, failed, streamed, cached and direct calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import serve, write_workspace
from tests.gateway.test_recall import wait_for_entries
from veteran.config import parse_config
from veteran.gateway.metrics import (
    DIRECT,
    ERRORS,
    LATENCY_BUCKETS,
    OTHER,
    STATUSES,
    CallMetrics,
    error_kind,
)
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread

CONFIG = """
[providers.up]
kind = "openai"
base_url = "{upstream}"
[providers.up.retry]
max_retries = 0
[providers.up.models.gpt-x]
input_per_mtok = 1.0
output_per_mtok = 2.0

[functions.triage]
[functions.triage.variants.big]
model = "up/gpt-x"

[functions.faq]
[functions.faq.variants.a]
model = "up/gpt-x"
[functions.faq.cache]
threshold = 0.9
"""
SAMPLE = re.compile(r'^([a-z_]+)\{([^}]*)\} (\S+)$')
Labels = frozenset[tuple[str, str]]


def scrape(server: ServerThread) -> dict[tuple[str, Labels], float]:
    response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[tuple[str, Labels], float] = {}
    for line in response.text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = frozenset(tuple(pair.split("=", 1)) for pair in match[2].split(","))
        key = (match[1], frozenset((k, v.strip('"')) for k, v in labels))
        assert key not in samples, f"duplicate series {line}"
        samples[key] = float(match[3])
    return samples


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


@pytest.fixture
def server(tmp_path: Path, upstream: FakeUpstream) -> Iterator[ServerThread]:
    with serve(write_workspace(tmp_path / "ws", CONFIG.format(upstream=upstream.url))) as s:
        yield s


def chat(server: ServerThread, model: str, text: str, **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=20)


def test_calls_are_counted_by_function_variant_provider_and_outcome(
    server: ServerThread,
) -> None:
    series = {"function": "triage", "variant": "big", "provider": "up"}
    usages = [chat(server, "triage", text).json()["usage"]
              for text in ("one two three", "four five")]
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="triage", messages=[{"role": "user", "content": "a streamed answer"}],
            stream=True, stream_options={"include_usage": True})
        usages += [c.usage.model_dump() for c in stream if c.usage is not None]
    assert len(usages) == 3
    assert chat(server, "triage", "fault:status=500 broken").status_code == 502
    assert chat(server, "triage", "fault:status=429 slow down").status_code == 429
    assert chat(server, "triage", "fault:status=400 wrong").status_code == 400
    cut = chat(server, "triage", "fault:cut=2 a stream the provider breaks", stream=True)
    assert cut.status_code == 200 and "error" in cut.text  # after its first chunks

    samples = scrape(server)
    requests = {s: value(samples, "veteran_requests_total", **series, status=s)
                for s in STATUSES}
    assert requests == {"ok": 3, "cached": 0, "error": 3, "incomplete": 1}
    errors = {e: value(samples, "veteran_errors_total", **series, error=e) for e in ERRORS}
    assert errors == {**dict.fromkeys(ERRORS, 0), "upstream": 1, "rate_limited": 1,
                      "rejected": 1, "interrupted": 1}
    assert value(samples, "veteran_request_duration_seconds_count", **series) == 3
    assert value(samples, "veteran_request_duration_seconds_bucket", **series, le="+Inf") == 3
    buckets = [value(samples, "veteran_request_duration_seconds_bucket", **series,
                     le=f"{b:g}") for b in LATENCY_BUCKETS]
    assert buckets == sorted(buckets) and buckets[-1] == 3  # cumulative; all under 300 s
    assert 0 < value(samples, "veteran_request_duration_seconds_sum", **series) < 60
    assert value(samples, "veteran_time_to_first_token_seconds_count", **series) == 1
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    assert prompt > 0 and completion > 0
    assert value(samples, "veteran_prompt_tokens_total", **series) == prompt
    assert value(samples, "veteran_completion_tokens_total", **series) == completion
    cost = value(samples, "veteran_cost_total", **series)
    assert cost == pytest.approx((prompt * 1.0 + completion * 2.0) / 1e6)
    assert value(samples, "veteran_provider_up", provider="up") == 1


def test_a_cache_hit_is_counted_as_cached_without_tokens_or_latency(
    server: ServerThread,
) -> None:
    first = chat(server, "faq", "What is your refund policy?")
    assert first.headers["x-veteran-cache"] == "miss"
    wait_for_entries(server, 1)
    again = chat(server, "faq", "what's your refund policy")
    assert again.headers["x-veteran-cache"] == "hit"
    samples = scrape(server)
    series = {"function": "faq", "variant": "a", "provider": "up"}
    assert value(samples, "veteran_requests_total", **series, status="ok") == 1
    assert value(samples, "veteran_requests_total", **series, status="cached") == 1
    assert value(samples, "veteran_request_duration_seconds_count", **series) == 1
    prompt_tokens = first.json()["usage"]["prompt_tokens"]
    assert value(samples, "veteran_prompt_tokens_total", **series) == prompt_tokens


def test_provider_model_requests_share_one_bounded_series(server: ServerThread) -> None:
    for n in range(20):  # any model name a client makes up: no label of its own
        assert chat(server, "up/made-up-model-" + str(n), "hi").status_code == 200
    assert chat(server, "up/other", "fault:status=503 down").status_code == 502
    samples = scrape(server)
    direct = {"function": DIRECT, "variant": DIRECT, "provider": "up"}
    assert value(samples, "veteran_requests_total", **direct, status="ok") == 20
    assert value(samples, "veteran_errors_total", **direct, error="upstream") == 1
    label_sets = {labels for name, labels in samples if name == "veteran_requests_total"}
    assert len(label_sets) == len(STATUSES)  # this one series, by status
    assert not any("made-up" in v for _, labels in samples for _, v in labels)


def test_label_sets_are_bounded_and_unknown_names_are_other() -> None:
    from veteran.gateway.routing import Route
    from veteran.providers.mock import MockProvider
    from veteran.types import TrajectoryRecord

    config = parse_config({
        "providers": {"m": {"kind": "mock"}},
        "functions": {f"f{n}": {"variants": {"v": {"model": "m/x"}}} for n in range(5)},
    }, "veteran.toml")
    provider = MockProvider("m", config.providers["m"])

    class Call:  # what `observe` reads of a call
        def __init__(self, function: str | None, variant: str | None, provider_name: str
                     ) -> None:
            self.route = Route(provider=provider, model="x", function=function, variant=variant)
            self.record = TrajectoryRecord(id="t", episode_id="e", request={}, created_at=0.0,
                                           function=function, variant=variant,
                                           provider=provider_name, latency_ms=1.0)

    named = CallMetrics()  # a name the configuration does not hold becomes (other)
    for function, variant, provider_name in [("gone", "v", "m"), ("f0", "nope", "m"),
                                             ("f0", "v", "elsewhere"), (None, None, "m")]:
        named.observe(Call(function, variant, provider_name), config)  # type: ignore[arg-type]
    assert ok_lines(named) == [
        f'veteran_requests_total{{function="{DIRECT}",variant="{DIRECT}",provider="m",'
        'status="ok"} 1',
        f'veteran_requests_total{{function="{OTHER}",variant="{OTHER}",provider="m",'
        'status="ok"} 1',
        f'veteran_requests_total{{function="f0",variant="{OTHER}",provider="m",status="ok"}} 1',
        f'veteran_requests_total{{function="f0",variant="v",provider="{OTHER}",status="ok"}} 1',
    ]

    bounded = CallMetrics(max_series=3)  # past the bound every new label set is (other)
    for n in range(5):
        bounded.observe(Call(f"f{n}", "v", "m"), config)  # type: ignore[arg-type]
    bounded.observe(Call("f0", "v", "m"), config)  # type: ignore[arg-type]
    assert ok_lines(bounded) == [
        f'veteran_requests_total{{function="{OTHER}",variant="{OTHER}",provider="{OTHER}",'
        'status="ok"} 2',
        'veteran_requests_total{function="f0",variant="v",provider="m",status="ok"} 2',
        'veteran_requests_total{function="f1",variant="v",provider="m",status="ok"} 1',
        'veteran_requests_total{function="f2",variant="v",provider="m",status="ok"} 1',
    ]


def ok_lines(metrics: CallMetrics) -> list[str]:
    lines: list[str] = []
    metrics.render(lines)
    return [line for line in lines
            if line.startswith("veteran_requests_total") and 'status="ok"' in line]


def test_every_failure_has_a_kind_from_the_fixed_set() -> None:
    import asyncio

    from veteran.errors import (
        BadRequest,
        ProviderUnavailable,
        RateLimited,
        StreamInterrupted,
        UpstreamError,
        UpstreamRejected,
        UpstreamTimeout,
    )

    kinds = {
        "upstream": UpstreamError("x", upstream_status=500),
        "timeout": UpstreamTimeout("x"),
        "rate_limited": UpstreamRejected(429, "x"),
        "rejected": UpstreamRejected(422, "x"),
        "unavailable": ProviderUnavailable("x"),
        "interrupted": StreamInterrupted("x"),
        "refused": BadRequest("a policy refused it"),
        "client_gone": asyncio.CancelledError(),
        "internal": RuntimeError("x"),
    }
    assert set(kinds) == set(ERRORS)
    for kind, exc in kinds.items():
        assert error_kind(exc) == kind
    assert error_kind(RateLimited("over the team's limit", retry_after=1.0)) == "rate_limited"
