"""Leak tests (issue 14, "Done means"): canary secrets and personal data go through 1,000 varied
requests, with storage redaction on, toward a provider that sees them (`provider = false`) or
sees placeholders (`provider = true`).

The traffic (leak_traffic.py has the canaries and the texts), per setting:
- in process, through the ASGI app: plain, streamed, tool calls (values in the arguments the
  model returns and in the tool results the app sends back), both again in a streamed answer,
  Anthropic's /v1/messages plain and streamed, failures (an upstream error quoting the request,
  retried or not, a 400 quoting it, a 5xx from a real upstream), refusals by a rule, streams
  the upstream cuts, a semantic-cache function, PROVIDER/MODEL calls, feedback (comments and
  demonstrations), and a stretch with the store full, so that captures spool and then drain;
- `veteran serve` as a process, with the official `openai` and `anthropic` SDKs: plain,
  streamed, and streams the client abandons;
- `veteran eval run` (twice: the second answers from the eval call cache) over a suite whose
  samples, references and judge verdicts hold canaries, `eval report --json --html`,
  `kb promote` of the trajectories, `kb search`, `trajectories export|list|show`,
  `data export` (SFT and RFT) and `env export`.

Then no canary (as it is, or JSON-escaped) may be found in: the SQLite file, its -wal and -shm
(read raw, before and after a checkpoint), any other file in the workspace (spool, memory
indexes, the eval call cache), what the spool held while the store was away, the logs (caplog
at DEBUG, the server's stderr), the exports, or a response of the store's APIs and commands.
Meanwhile the application did get its values (echoed answers, plain and streamed, restored from
placeholders when the provider saw those), and every request's marker is in the database, so
the test cannot pass by storing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import in_process, write_workspace
from tests.policies.leak_traffic import (
    DICTIONARY,
    ENTITIES,
    PATTERN,
    Canary,
    leaked,
    marker,
    text,
)
from tests.store.test_spool import DiskFull
from veteran.cli import cli
from veteran.errors import UpstreamError, UpstreamRejected
from veteran.providers.mock import MockProvider
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import free_port, wait_http
from veteran.workspace import Workspace

pytestmark = pytest.mark.slow

IN_PROCESS = 900  # requests through the ASGI app, per setting
SERVED = 20  # requests of each kind through `veteran serve` and the SDKs
SAMPLES = 30  # eval samples (each run twice, each graded by a judge that calls a model)
SPOOLED = range(400, 460)  # in-process requests made while the store is full
PROMOTED = 30  # trajectories promoted into memory (embedding is the slow part)

CONFIG = """
[providers.m]
kind = "mock"
[providers.m.retry]
max_retries = 1
backoff_initial = 0.001
[providers.m.breaker]
failures = 1000

[providers.slow]
kind = "mock"
delay_ms = 10

[providers.up]
kind = "openai"
base_url = "{upstream}"
read_timeout = 5
[providers.up.retry]
max_retries = 0
[providers.up.breaker]
failures = 1000

[functions.desk]
[functions.desk.variants.a]
model = "m/echo"

[functions.faq]
[functions.faq.variants.a]
model = "m/echo"
[functions.faq.cache]
threshold = 0.95

[functions.relay]
[functions.relay.variants.a]
model = "up/fake-model"

[functions.sluggish]
[functions.sluggish.variants.a]
model = "slow/echo"

[redact]
entities = {entities}
storage = true
provider = {provider}

[dictionaries.customers]
entity = "customer"
file = "customers.txt"

[patterns.projects]
entity = "project"
regex = '{pattern}'

[[policies]]
name = "embargo"
match = {{ keywords = ["embargoed"] }}
action = "refuse"
reason = "Embargoed work never leaves the company."

[metrics.resolved]
type = "boolean"
[metrics.demonstration]
type = "demonstration"
[metrics.note]
type = "comment"
"""

SUITE = """
variants = ["desk:a"]
[dataset]
file = "evals/leaks.jsonl"
[graders.has]
type = "contains"
[graders.judge]
type = "llm_judge"
model = "m/echo"
rubric = "Grade it."
"""
# The company's own files (its customers' names among them).
INPUTS = ("veteran.toml", "customers.txt", "evals/leaks.toml", "evals/leaks.jsonl")

# The cycle of in-process kinds (weights by repetition).
KINDS = (["plain"] * 6 + ["stream"] * 4 + ["tools", "tools", "tools_stream"]
         + ["anthropic", "anthropic", "anthropic_stream"]
         + ["error", "retried", "rejected", "refused", "cut", "cut", "relay", "relay_5xx",
            "faq", "faq", "direct"])
ECHOED = {"plain", "stream", "anthropic", "anthropic_stream", "relay", "direct", "retried",
          "sdk_plain", "sdk_stream", "sdk_anthropic", "sdk_anthropic_stream"}
SDK_LOGGERS = ("openai", "anthropic")  # the application's own clients, not veteran


@dataclass
class Seen:
    """What the run saw: requests by kind, what the app got, where a canary turned up."""

    counts: Counter[str] = field(default_factory=Counter)
    missing: list[tuple[str, int, list[str]]] = field(default_factory=list)  # values not got
    found: dict[str, set[str]] = field(default_factory=dict)  # place -> canaries found
    markers: list[str] = field(default_factory=list)  # of requests that must be stored
    spool: bytes = b""
    wal: int = 0  # the largest WAL read
    hits: int = 0  # kb search hits seen

    def got(self, kind: str, i: int, canaries: list[Canary], answer: str) -> None:
        self.counts[kind] += 1
        if kind in ECHOED:
            absent = [c.name for c in canaries if c.text not in answer]
            if absent:
                self.missing.append((kind, i, absent))

    def check(self, place: str, data: bytes | str) -> None:
        names = leaked(data)
        if names:
            self.found.setdefault(place, set()).update(names)


@pytest.mark.parametrize("provider", [False, True], ids=["provider-sees-values",
                                                         "provider-sees-placeholders"])
def test_no_canary_is_stored_anywhere(tmp_path: Path, provider: bool,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen = Seen()
    out = tmp_path / "out"
    out.mkdir()
    with FakeUpstream() as upstream:
        (tmp_path / "ws").mkdir()
        (tmp_path / "ws" / "customers.txt").write_text("\n".join(DICTIONARY), encoding="utf-8")
        ws = write_workspace(tmp_path / "ws", CONFIG.format(
            upstream=upstream.url, provider=str(provider).lower(),
            entities=orjson.dumps(ENTITIES).decode(), pattern=PATTERN))
        asyncio.run(_in_process(ws, seen))
        stderr = _served(ws, tmp_path / "serve.log", seen)
    seen.check("serve stderr", stderr)
    _commands(ws, out, seen)
    asyncio.run(_store_api(ws, seen))
    for record in caplog.records:
        if not record.name.startswith(SDK_LOGGERS):
            seen.check(f"log {record.name}", caplog.handler.format(record))
    for when in ("as left", "after a checkpoint"):
        if when != "as left":
            _checkpoint(ws.path)
            _checkpoint(out)
        for folder in (ws.path, out):
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                if path.relative_to(folder).as_posix() not in INPUTS:
                    _check_file(seen, path, when)

    assert not seen.found, "\n".join(f"{place}: {', '.join(sorted(names))}"
                                      for place, names in sorted(seen.found.items()))
    assert seen.missing == [], seen.missing[:10]
    stored = (ws.path / "veteran.db").read_bytes()
    assert [m for m in seen.markers if m.encode() not in stored] == []
    assert b"<EMAIL_" in stored and b"<SECRET_" in stored and b"<CUSTOMER_" in stored
    assert any(marker(i).encode() in seen.spool for i in SPOOLED)  # it held captures
    assert seen.wal > 0 and seen.hits > 0
    calls = sum(seen.counts.values()) - seen.counts["feedback"]
    assert calls >= 1000, seen.counts
    print(f"provider={provider}: {calls} model calls", dict(sorted(seen.counts.items())))


def _check_file(seen: Seen, path: Path, when: str = "") -> None:
    if path.exists():
        seen.check(f"{path.name} {when}".strip(), path.read_bytes())


def _check_database(seen: Seen, ws: Workspace, when: str) -> None:
    """The database file, its WAL and shared memory, raw, while the store is open (closing
    the last connection folds the WAL in and removes it)."""
    for suffix in ("", "-wal", "-shm"):
        _check_file(seen, ws.path / f"veteran.db{suffix}", when)
    wal = ws.path / "veteran.db-wal"
    seen.wal = max(seen.wal, wal.stat().st_size if wal.exists() else 0)


def _checkpoint(folder: Path) -> None:
    """Fold every SQLite WAL under `folder` into its database (and truncate the WAL)."""
    for wal in folder.rglob("*-wal"):
        with contextlib.closing(sqlite3.connect(str(wal)[: -len("-wal")])) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# In process: the ASGI app of a running gateway.


async def _in_process(ws: Workspace, seen: Seen) -> None:
    async with in_process(ws) as (http, gateway):
        gateway.writer.drain_interval = 0.1
        mock = gateway.providers["m"]
        assert isinstance(mock, MockProvider)
        disk = DiskFull(gateway.store)
        for i in range(IN_PROCESS):
            if i == SPOOLED.start:
                disk.full = True
                gateway.writer._inserter.reset()
            kind = KINDS[i % len(KINDS)]
            # a faq question is asked twice: the second is answered from the semantic cache
            said, canaries = text(i - i % 2 if kind == "faq" else i)
            answer, trajectory = await _one(http, mock, kind, i, said, canaries)
            seen.got(kind, i, canaries, answer)
            if marker(i) in said:
                seen.markers.append(marker(i))
            if trajectory is not None and i % 9 == 0 and i not in SPOOLED:
                await _feedback(http, trajectory, i, seen)
            if i == SPOOLED.stop - 1:
                assert gateway.writer.spooled > 0
                seen.spool = b"".join(p.read_bytes() for p in (ws.path / "spool").rglob("*")
                                      if p.is_file())
                seen.check("spool while the store was full", seen.spool)
                disk.full = False
                deadline = time.monotonic() + 20
                while gateway.writer.spooled:
                    assert time.monotonic() < deadline, "the spool did not drain"
                    await asyncio.sleep(0.05)
        _check_database(seen, ws, "with the gateway up")


def _chat(model: str, said: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": said}], **extra}


TOOLS = [{"type": "function", "function": {
    "name": "lookup", "parameters": {"type": "object",
                                     "properties": {"query": {"type": "string"}}}}}]


def _tool_turn(said: str, canaries: list[Canary], i: int, stream: bool) -> dict[str, Any]:
    """A conversation where the model called a tool with canaries and the app sends back the
    tool's result (more canaries)."""
    arguments = orjson.dumps({"query": canaries[0].text, "ref": marker(i)}).decode()
    return {"model": "desk", "stream": stream, "tools": TOOLS, "messages": [
        {"role": "user", "content": f"look up the account of {canaries[-1].text}"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"result: {said}"},
        {"role": "user", "content": "and now?"}]}


def _tool_answer(canaries: list[Canary]) -> dict[str, Any]:
    arguments = orjson.dumps({"query": "; ".join(c.text for c in canaries)}).decode()
    return {"id": "chatcmpl-tool", "object": "chat.completion", "created": 0, "model": "echo",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_2", "type": "function",
                     "function": {"name": "lookup", "arguments": arguments}}]}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


async def _one(http: httpx.AsyncClient, mock: MockProvider, kind: str, i: int, said: str,
               canaries: list[Canary]) -> tuple[str, str | None]:
    """Make request `i` of `kind`; returns what the app got (the answer's text) and the
    trajectory id."""
    headers = {"x-veteran-episode-id": f"ep-{i // 3}"} if i % 2 else {}
    status = 200
    if kind in ("plain", "stream", "direct", "retried", "error", "rejected", "refused"):
        if kind == "retried":
            mock.enqueue(UpstreamError(f"provider 'm' answered HTTP 500: cannot parse {said}"))
        elif kind == "error":
            mock.enqueue(*[UpstreamError(f"provider 'm' answered HTTP 503: busy with {said}")] * 2)
            status = 502
        elif kind == "rejected":
            mock.enqueue(UpstreamRejected(400, f"provider 'm' answered HTTP 400: invalid {said}"))
            status = 400
        elif kind == "refused":
            said, status = f"{said} (embargoed)", 403
        body = _chat("m/echo" if kind == "direct" else "desk", said, stream=kind == "stream")
    elif kind in ("tools", "tools_stream"):
        mock.enqueue(_tool_answer(canaries))
        body = _tool_turn(said, canaries, i, kind == "tools_stream")
    elif kind in ("anthropic", "anthropic_stream"):
        r = await http.post("/v1/messages", headers={**headers, "anthropic-version": "2023-06-01"},
                            json={"model": "desk", "max_tokens": 512,
                                  "stream": kind == "anthropic_stream",
                                  "messages": [{"role": "user", "content": said}]})
        assert r.status_code == 200, r.text
        return _anthropic_text(r), r.headers["x-veteran-trajectory-id"]
    elif kind in ("cut", "relay", "relay_5xx"):
        fault = {"cut": f"fault:cut={3 + i % 9} ", "relay": "", "relay_5xx": "fault:status=500 "}
        body = _chat("relay", fault[kind] + said, stream=kind == "cut")
        status = 502 if kind == "relay_5xx" else 200
    else:
        assert kind == "faq"
        body = _chat("faq", said)
    r = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == status, (kind, r.text)
    answer = _openai_text(r) if status == 200 else r.text
    if kind in ("tools", "tools_stream"):
        arguments = orjson.loads(answer)["query"]  # the app got them back
        assert all(c.text in arguments for c in canaries), arguments
    return answer, r.headers.get("x-veteran-trajectory-id")


def _events(r: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in r.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield orjson.loads(line[6:])


def _openai_text(r: httpx.Response) -> str:
    """The answer's content and tool-call arguments, whole or streamed."""
    if not r.headers["content-type"].startswith("text/event-stream"):
        message = r.json()["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        return (message.get("content") or "") + "".join(
            c["function"]["arguments"] for c in calls)
    parts = []
    for event in _events(r):
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            parts.append(delta.get("content") or "")
            parts += [(c.get("function") or {}).get("arguments") or ""
                      for c in delta.get("tool_calls") or ()]
    return "".join(parts)


def _anthropic_text(r: httpx.Response) -> str:
    if not r.headers["content-type"].startswith("text/event-stream"):
        return "".join(b.get("text", "") for b in r.json()["content"])
    return "".join((e.get("delta") or {}).get("text", "") for e in _events(r)
                   if e.get("type") == "content_block_delta")


async def _feedback(http: httpx.AsyncClient, trajectory: str, i: int, seen: Seen) -> None:
    """Feedback carrying canaries: a demonstration, a comment, a comment on a rating."""
    later, _ = text(i + 1)
    for metric, value, comment in (("demonstration", f"The right answer: {later}", None),
                                   ("note", f"customer said {later}", None),
                                   ("resolved", True, f"resolved for {later}")):
        r = await http.post("/v1/feedback", json={"trajectory_id": trajectory, "metric": metric,
                                                  "value": value, "comment": comment})
        assert r.status_code == 200, r.text
        seen.counts["feedback"] += 1
        seen.check("POST /v1/feedback", r.content)


# `veteran serve` as a process, and the official SDKs.


@contextlib.contextmanager
def _serve(ws: Workspace, log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "veteran.cli", "serve", "-w", str(ws.path), "--port",
             str(port)], stdout=sink, stderr=subprocess.STDOUT, env={**os.environ})
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", proc, "veteran serve", 60)
            yield url
            proc.send_signal(signal.SIGTERM)  # drains, and flushes the captures
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _served(ws: Workspace, log: Path, seen: Seen) -> bytes:
    base = IN_PROCESS
    with _serve(ws, log) as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client, \
            anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0) as claude:
        for n in range(SERVED):
            i = base + 5 * n
            said, canaries = text(i)
            done = client.chat.completions.create(
                model="desk", messages=[{"role": "user", "content": said}])
            seen.got("sdk_plain", i, canaries, done.choices[0].message.content or "")
            said, canaries = text(i + 1)
            with client.chat.completions.create(
                    model="desk", stream=True,
                    messages=[{"role": "user", "content": said}]) as stream:
                got = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            seen.got("sdk_stream", i + 1, canaries, got)
            said, canaries = text(i + 2)
            with client.chat.completions.create(
                    model="sluggish", stream=True,
                    messages=[{"role": "user", "content": f"{said}\n{said}"}]) as stream:
                got = ""
                for chunk in stream:  # a few words, then the client goes away
                    got += chunk.choices[0].delta.content or "" if chunk.choices else ""
                    if len(got) > len(said) // 2:
                        break
            seen.got("sdk_abandoned", i + 2, canaries, got)
            said, canaries = text(i + 3)
            message = claude.messages.create(
                model="desk", max_tokens=512, messages=[{"role": "user", "content": said}])
            seen.got("sdk_anthropic", i + 3, canaries,
                     "".join(getattr(b, "text", "") for b in message.content))
            said, canaries = text(i + 4)
            with claude.messages.stream(model="desk", max_tokens=512,
                                        messages=[{"role": "user", "content": said}]) as events:
                got = "".join(events.text_stream)
            seen.got("sdk_anthropic_stream", i + 4, canaries, got)
            seen.markers += [marker(i + k) for k in range(5) if marker(i + k) in text(i + k)[0]]
    return log.read_bytes()


# Commands: evaluations, memory, exports.


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _suite(ws: Workspace) -> None:
    (ws.path / "evals").mkdir()
    (ws.path / "evals" / "leaks.toml").write_text(textwrap.dedent(SUITE), encoding="utf-8")
    lines = []
    for n in range(SAMPLES):
        said, canaries = text(5000 + n)
        if n % 3 == 0:  # a verdict the echoing judge finds in the answer and quotes
            verdict = {"reasoning": f"it names {canaries[0].text}", "score": 1}
            said = f"{said} {orjson.dumps(verdict).decode()}"
        lines.append(orjson.dumps({"id": f"s{n}", "input": said, "target": canaries[0].text}))
    (ws.path / "evals" / "leaks.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def _commands(ws: Workspace, out: Path, seen: Seen) -> None:
    w = ["-w", str(ws.path)]
    _suite(ws)
    for _ in range(2):  # the second run answers from the eval call cache
        seen.check("eval run --json", _run("eval", "run", "leaks", "--json", "-q", *w))
        seen.counts["eval_sample"] += SAMPLES
        seen.counts["eval_judge"] += SAMPLES
    seen.check("eval report --json", _run("eval", "report", "leaks", "--json", *w))
    _run("eval", "report", "leaks", "--html", str(out / "report.html"), *w)
    seen.check("kb promote", _run("kb", "promote", "leaks", "--function", "desk", "--limit",
                                  str(PROMOTED), "--json", *w))
    for n in range(5):
        query, _ = text(n)
        seen.check("kb search --json", _run("kb", "search", "leaks", query, "--min-score", "0",
                                            "--k", "50", "--json", *w))
    _run("trajectories", "export", "-o", str(out / "trajectories.jsonl"), *w)
    listed = _run("trajectories", "list", "--json", "--limit", "200", *w)
    seen.check("trajectories list --json", listed)
    for row in orjson.loads(listed)["data"][:50]:
        seen.check("trajectories show", _run("trajectories", "show", row["id"], *w))
    said, _ = text(7)
    seen.check("feedback add", _run("feedback", "add", "--trajectory", row["id"], "--metric",
                                    "demonstration", "--value", said, "--comment", said, *w))
    seen.counts["feedback"] += 1
    _run("data", "export", "desk", "--format", "openai-sft", "--out", str(out / "sft"), *w)
    _run("data", "export", "desk", "--format", "openai-sft", "--corrected", "--out",
         str(out / "corrected"), *w)
    _run("data", "export", "desk", "--format", "openai-rft", "--kind", "environment", "--out",
         str(out / "rft"), *w)
    _run("env", "export", "desk", "--suite", "leaks", "--source", "store", "--grader", "has",
         "--out", str(out / "env"), *w)
    assert marker(1).encode() in (out / "trajectories.jsonl").read_bytes()


async def _store_api(ws: Workspace, seen: Seen) -> None:
    """Every trajectory through GET /v1/trajectories[/{id}], and the promoted memory through
    POST /v1/kb/{collection}/search."""
    async with in_process(ws) as (http, _):
        cursor: str | None = None
        ids: list[str] = []
        while True:
            params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
            r = await http.get("/v1/trajectories", params=params)
            assert r.status_code == 200, r.text
            seen.check("GET /v1/trajectories", r.content)
            page = r.json()
            ids += [t["id"] for t in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        for trajectory in ids:
            r = await http.get(f"/v1/trajectories/{trajectory}")
            seen.check("GET /v1/trajectories/{id}", r.content)
        assert len(ids) >= IN_PROCESS
        for n in range(5):
            query, _ = text(n)
            r = await http.post("/v1/kb/leaks/search", json={"query": query, "k": 50,
                                                              "min_score": 0})
            assert r.status_code == 200, r.text
            seen.check("POST /v1/kb/leaks/search", r.content)
            seen.hits += len(r.json()["data"])
        _check_database(seen, ws, "at the end, open")
