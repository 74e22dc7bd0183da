"""The eval call cache is keyed on what decides an answer (the provider's effective settings
too, not only its name) and answers older than `[evals] cache_ttl` are called again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evals.test_runner import _run
from tests.evals.workspaces import TICKETS, echo_dataset, eval_workspace
from veteran.config import parse_config
from veteran.evals.cache import CallCache
from veteran.store import callcache
from veteran.store.callcache import PendingAnswer
from veteran.testing.fake_upstream import FakeUpstream
from veteran.types import now
from veteran.workspace import Workspace

ECHO = """
variants = ["echo:up"]
[dataset]
file = "evals/echo.jsonl"
[graders.exact]
type = "exact"
"""
STRONG_24 = TICKETS.replace('["triage:strong", "triage:weak"]', '["triage:strong"]').replace(
    'file = "evals/tickets.jsonl"', 'file = "evals/tickets.jsonl"\nlimit = 24')


def _edit(ws: Workspace, old: str, new: str) -> None:
    text = ws.config_path.read_text(encoding="utf-8")
    assert old in text
    ws.config_path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_changed_upstream_setting_is_called_again(tmp_path: Path,
                                                    upstream: FakeUpstream) -> None:
    ws = eval_workspace(tmp_path, upstream=upstream.url, suites={"echo": ECHO})
    echo_dataset(tmp_path / "evals" / "echo.jsonl", 3)
    url = f'base_url = "{upstream.url}"'
    first = _run(ws, "echo")
    assert (first.cached, first.errors, len(upstream.requests)) == (0, 0, 3)
    # how the call is made, not what it answers: timeouts, retries, pool, prices
    _edit(ws, url, f"{url}\nread_timeout = 7\nmax_connections = 3\n"
                   "[providers.up.retry]\nmax_retries = 0")
    _edit(ws, "output_per_mtok = 2.0", "output_per_mtok = 3.0")
    again = _run(ws, "echo")
    assert (again.cached, len(upstream.requests)) == (3, 3)
    _edit(ws, url, f'{url}\nheaders = {{ x-team = "search" }}')
    headers = _run(ws, "echo")
    assert (headers.cached, len(upstream.requests)) == (0, 6)
    assert upstream.headers[-1]["x-team"] == "search"
    _edit(ws, url, f'{url}\nquery = {{ api-version = "2024-06-01" }}')
    assert _run(ws, "echo").cached == 0 and len(upstream.requests) == 9
    # issue 13: pointed at a dead port, the run reported 1.000 from the cache
    _edit(ws, url, 'base_url = "http://127.0.0.1:9"')
    dead = _run(ws, "echo")
    assert (dead.cached, dead.errors) == (0, 3)


def test_a_changed_mock_script_is_called_again(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path, suites={"strong": STRONG_24})
    assert _run(ws, "strong").cached < 24  # a repeated ticket may hit within the run
    _edit(ws, "[providers.m]\n", "[providers.m]\ndelay_ms = 1\n")  # timing only
    assert _run(ws, "strong").cached == 24
    _edit(ws, "error_rate = 0.05", "error_rate = 0.3")
    assert _run(ws, "strong").cached < 24
    assert _run(ws, "strong").cached == 24
    _edit(ws, '"order|tracking', '"orders|tracking')  # a scripted rule
    assert _run(ws, "strong").cached < 24


def test_answers_older_than_the_cache_ttl_are_called_again(
        tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = eval_workspace(tmp_path, upstream=upstream.url, suites={"echo": ECHO})
    echo_dataset(tmp_path / "evals" / "echo.jsonl", 3)
    with ws.config_path.open("a", encoding="utf-8") as f:
        f.write('\n[evals]\ncache_ttl = "1h"\n')
    assert _run(ws, "echo").cached == 0
    assert _run(ws, "echo").cached == 3
    later = now() + 2 * 3600
    monkeypatch.setattr(callcache, "now", lambda: later)  # two hours on: expired
    assert _run(ws, "echo").cached == 0
    assert len(upstream.requests) == 6
    assert _run(ws, "echo").cached == 3  # the new answers are young


def test_the_cache_file_keeps_each_answers_time(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "calls.db")
    made = now() - 3 * 86_400
    cache.flush([PendingAnswer("old", {"a": 1}, 0.5, 10.0, made)])
    cache.put("new", {"b": 2}, None, None)
    cache.flush()
    try:
        hit = cache.get("old")
        assert hit is not None and (hit.response, hit.cost, hit.created_at) == ({"a": 1}, 0.5,
                                                                                made)
        assert cache.get("old", max_age=86_400) is None
        assert cache.get("old", max_age=4 * 86_400) is not None
        assert cache.prune(86_400) == 1
        assert cache.get("old") is None and cache.get("new", max_age=60) is not None
    finally:
        cache.close()


def test_a_fingerprint_is_what_decides_an_answer_without_secrets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UP_KEY", "sk-very-secret")
    config = parse_config({"providers": {
        "up": {"kind": "openai", "base_url": "http://up/v1", "api_key_env": "UP_KEY",
               "headers": {"x-team": "a"}, "read_timeout": 5, "retry": {"max_retries": 0}},
        "claude": {"kind": "anthropic", "api_key_env": "UP_KEY", "read_timeout": 5},
        "m": {"kind": "mock", "rules": {"x": "y"}, "delay_ms": 3},
        "loc": {"kind": "local", "paths": {"a": "/models/a", "b": "/models/b"}, "threads": 2},
    }})
    up = config.providers["up"].fingerprint("gpt")
    assert up["base_url"] == "http://up/v1" and up["headers"] == {"x-team": "a"}
    assert up["api_key_env"] == "UP_KEY" and "read_timeout" not in up and "retry" not in up
    claude = config.providers["claude"].fingerprint("sonnet")
    assert claude["anthropic_version"] and "read_timeout" not in claude
    assert config.providers["m"].fingerprint("x") == {
        "kind": "mock", "reply": None, "rules": {"x": "y"}, "error_rate": 0.0}
    local = config.providers["loc"].fingerprint("a")
    assert local["path"] == "/models/a" and "paths" not in local and "threads" not in local
    every = json.dumps([p.fingerprint("a") for p in config.providers.values()])
    assert "sk-very-secret" not in every
