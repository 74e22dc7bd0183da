"""Every policy action is disclosed (issue 14, "Done means"): for each action (route, redact,
refuse, handoff) and each match (entities, keywords, regex, tags, team, key), and for the
`[redact]` disclosures (provider and storage), plain and streamed: the `x-veteran-policy`
header, the stored trajectory's `policy` list and /metrics' veteran_policy_decisions_total.

A real gateway with API keys (teams red and blue) on loopback, in front of an upstream that
answers with what it was sent (tests/policies/echo_upstream.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.conftest import serve, write_workspace
from tests.policies.echo_upstream import Echo, answer
from veteran.access import create_key
from veteran.store import Store
from veteran.testing.server import ServerThread
from veteran.workspace import Workspace

CONFIG = """
[providers.up]
kind = "openai"
base_url = "ECHO/v1"
[providers.up.retry]
max_retries = 0

[teams.red]
[teams.blue]

[functions.assist]
[functions.assist.variants.main]
model = "up/gpt-4o"
[functions.assist.variants.private]
model = "up/private-llm"
weight = 0.0

[functions.pseudo]
[functions.pseudo.variants.a]
model = "up/gpt-4o"
[functions.pseudo.redact]
provider = true

[redact]
entities = ["secret", "email"]

[dictionaries.projects]
entity = "project"
terms = ["Bluebird"]

[[policies]]
name = "no-secrets"
action = "refuse"
reason = "secrets never leave the company"
match = { entities = ["secret"] }

[[policies]]
name = "suspended"
action = "refuse"
reason = "this key is suspended"
match = { keys = ["SUSPENDED"] }

[[policies]]
name = "codename"
action = "route"
to = "private"
match = { entities = ["project"], functions = ["assist"] }

[[policies]]
name = "confidential"
action = "route"
to = "private"
match = { keywords = ["confidential"], functions = ["assist"] }

[[policies]]
name = "legal"
action = "handoff"
to = "up/legal-llm"
note = "Answered by the legal team's model, under the company's rule 'legal'."
match = { regex = '\\bcase [0-9]+\\b' }

[[policies]]
name = "vip"
action = "redact"
entities = ["email"]
match = { tags = { tier = "vip" } }

[[policies]]
name = "red-team"
action = "route"
to = "up/red-llm"
match = { teams = ["red"] }
"""
NOTE = "Answered by the legal team's model, under the company's rule 'legal'."
SECRET = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "alice@example.com"
DECISIONS = re.compile(r'^veteran_policy_decisions_total\{(.*)\} (\S+)$', re.MULTILINE)


@dataclass
class Result:
    status: int
    headers: httpx.Headers
    content: str  # the answer's text as the app got it (streamed: joined), or the error message
    trajectory: dict[str, Any]


@dataclass
class Setup:
    echo: Echo
    gateway: ServerThread
    http: httpx.Client
    keys: dict[str, str]  # who -> key: red, blue, suspended (apps), view-red, view-blue
    key_ids: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[who]}"}

    def decisions(self) -> dict[tuple[str, str], float]:
        """veteran_policy_decisions_total by (rule, action)."""
        text = self.http.get("/metrics", headers=self.auth("view-red")).text
        found = {}
        for labels, value in DECISIONS.findall(text):
            pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            found[pairs["rule"], pairs["action"]] = float(value)
        return found

    def ask(self, text: str, *, who: str = "blue", stream: bool = False,
            function: str = "assist", headers: dict[str, str] | None = None) -> Result:
        """One call on the OpenAI surface; the result with its stored trajectory."""
        body = {"model": function, "messages": [{"role": "user", "content": text}],
                "stream": stream}
        with self.http.stream("POST", "/v1/chat/completions", json=body,
                              headers={**self.auth(who), **(headers or {})}) as response:
            raw = response.read()
        if response.status_code != 200:
            content = orjson.loads(raw)["error"]["message"]
        elif stream:
            content = "".join(
                choice["delta"].get("content") or ""
                for line in raw.decode().splitlines()
                if line.startswith("data: {")
                for choice in orjson.loads(line[6:])["choices"])
        else:
            content = orjson.loads(raw)["choices"][0]["message"]["content"]
        return Result(response.status_code, response.headers, content,
                      self.trajectory(response.headers["x-veteran-trajectory-id"], who))

    def trajectory(self, trajectory_id: str, who: str) -> dict[str, Any]:
        team = "red" if who == "red" else "blue"
        response = self.http.get(f"/v1/trajectories/{trajectory_id}",
                                 headers=self.auth("view-" + team))
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    echo = Echo()
    with ServerThread(echo, lifespan="off") as upstream:
        path = tmp_path_factory.mktemp("actions") / "ws"
        text = CONFIG.replace("ECHO", upstream.url)
        ws = write_workspace(path, text.replace('"SUSPENDED"', '"none"'))
        store = Store.open(ws.database_url(ws.load_config()))
        try:
            made = {who: create_key(store, team=team, role=role)
                    for who, team, role in (("red", "red", "app"), ("blue", "blue", "app"),
                                            ("suspended", "blue", "app"),
                                            ("view-red", "red", "viewer"),
                                            ("view-blue", "blue", "viewer"))}
        finally:
            store.close()
        ws = write_workspace(path, text.replace("SUSPENDED", made["suspended"][0].id))
        with serve(Workspace(ws.path)) as gateway, httpx.Client(base_url=gateway.url,
                                                               timeout=20) as http:
            yield Setup(echo, gateway, http, {who: key for who, (_, key) in made.items()},
                        {who: record.id for who, (record, _) in made.items()})


def counted(setup: Setup, before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """What veteran_policy_decisions_total counted since `before`."""
    after = setup.decisions()
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])


@STREAMS
def test_refuse_on_a_detected_entity(setup: Setup, stream: bool) -> None:
    before, asked = setup.decisions(), len(setup.echo.requests)
    got = setup.ask(f"deploy with {SECRET} please", stream=stream)
    assert got.status == 403
    assert "secrets never leave the company" in got.content
    assert "no-secrets" in got.content
    assert got.headers["x-veteran-policy"] == "no-secrets=refuse"
    assert len(setup.echo.requests) == asked  # the provider saw nothing
    t = got.trajectory
    assert (t["status"], t["stream"]) == ("error", stream)
    assert "secrets never leave the company" in t["error"]
    assert t["policy"] == [
        {"rule": "no-secrets", "action": "refuse", "reason": "secrets never leave the company",
         "why": {"entities": {"secret": 1}}},
        {"rule": "redact", "action": "redact", "to": "storage", "entities": {"secret": 1}}]
    assert SECRET not in orjson.dumps(t).decode()
    assert counted(setup, before) == {("no-secrets", "refuse"): 1, ("redact", "redact"): 1}


@STREAMS
def test_refuse_on_a_key(setup: Setup, stream: bool) -> None:
    before = setup.decisions()
    got = setup.ask("hello", who="suspended", stream=stream)
    assert got.status == 403
    assert "this key is suspended" in got.content
    assert got.headers["x-veteran-policy"] == "suspended=refuse"
    t = got.trajectory
    assert t["status"] == "error" and t["key_id"] == setup.key_ids["suspended"]
    assert t["policy"] == [{"rule": "suspended", "action": "refuse",
                            "reason": "this key is suspended", "why": {"keys": True}}]
    assert counted(setup, before) == {("suspended", "refuse"): 1}
    assert setup.ask("hello", who="blue", stream=stream).status == 200  # another key is not


@STREAMS
@pytest.mark.parametrize(("text", "rule", "why"), [
    ("This is confidential: summarise it.", "confidential",
     {"keyword": "confidential", "functions": True}),
    ("Status of project Bluebird?", "codename", {"entities": {"project": 1}, "functions": True}),
], ids=["keyword", "entity"])
def test_route_to_a_variant(setup: Setup, stream: bool, text: str, rule: str,
                            why: dict[str, Any]) -> None:
    before = setup.decisions()
    got = setup.ask(text, stream=stream)
    assert got.status == 200
    assert got.headers["x-veteran-policy"] == f"{rule}=route:private"
    assert got.headers["x-veteran-variant"] == "private"
    assert setup.echo.requests[-1]["model"] == "private-llm"
    assert got.content == answer([], text)[0]
    t = got.trajectory
    assert (t["status"], t["variant"], t["model"]) == ("ok", "private", "private-llm")
    assert t["policy"] == [{"rule": rule, "action": "route", "to": "private", "why": why}]
    assert counted(setup, before) == {(rule, "route"): 1}


@STREAMS
def test_route_on_a_team(setup: Setup, stream: bool) -> None:
    before = setup.decisions()
    got = setup.ask("hello from red", who="red", stream=stream)
    assert got.status == 200
    assert got.headers["x-veteran-policy"] == "red-team=route:up/red-llm"
    assert "x-veteran-variant" not in got.headers  # PROVIDER/MODEL: no variant answered
    assert setup.echo.requests[-1]["model"] == "red-llm"
    t = got.trajectory
    assert (t["function"], t["variant"], t["provider"], t["model"]) == (
        "assist", None, "up", "red-llm")
    assert t["policy"] == [{"rule": "red-team", "action": "route", "to": "up/red-llm",
                            "why": {"teams": True}}]
    assert counted(setup, before) == {("red-team", "route"): 1}
    assert setup.ask("hello from blue", stream=stream).headers.get("x-veteran-policy") is None


@STREAMS
def test_handoff_adds_its_note_to_the_answer_and_stores_the_models_own(
    setup: Setup, stream: bool,
) -> None:
    text = "What does case 42 say?"
    before = setup.decisions()
    got = setup.ask(text, stream=stream)
    assert got.status == 200
    assert got.headers["x-veteran-policy"] == "legal=handoff:up/legal-llm"
    assert setup.echo.requests[-1]["model"] == "legal-llm"
    own = answer([], text)[0]
    assert got.content == f"{own}\n\n{NOTE}"
    t = got.trajectory
    assert t["response"]["choices"][0]["message"]["content"] == own
    assert (t["provider"], t["model"]) == ("up", "legal-llm")
    assert t["policy"] == [{"rule": "legal", "action": "handoff", "to": "up/legal-llm",
                            "note": NOTE, "why": {"regex": True}}]
    assert counted(setup, before) == {("legal", "handoff"): 1}


@STREAMS
def test_a_redact_rule_on_tags_puts_values_behind_placeholders(setup: Setup,
                                                               stream: bool) -> None:
    text = f"Write to {EMAIL}."
    before = setup.decisions()
    got = setup.ask(text, stream=stream, headers={"x-veteran-tags": "tier=vip"})
    assert got.status == 200
    # [redact] keeps e-mails and secrets out of storage, more than the rule hides from the
    # provider; but the only value found is hidden from both: disclosed once, as provider
    assert got.headers["x-veteran-policy"] == "vip=redact, redact=redact:provider"
    assert setup.echo.requests[-1]["messages"][-1]["content"] == "Write to <EMAIL_1>."
    assert got.content == answer([EMAIL], text)[0]  # the value comes back to the app
    t = got.trajectory
    assert t["tags"] == {"tier": "vip"}
    assert t["policy"] == [
        {"rule": "vip", "action": "redact", "entities": ["email"], "why": {"tags": True}},
        {"rule": "redact", "action": "redact", "to": "provider", "entities": {"email": 1}}]
    assert EMAIL not in orjson.dumps(t).decode()
    assert counted(setup, before) == {("vip", "redact"): 1, ("redact", "redact"): 1}


@STREAMS
def test_storage_redaction_is_disclosed(setup: Setup, stream: bool) -> None:
    """[redact] without `provider`: the provider sees the value, the store does not."""
    text = f"Write to {EMAIL}."
    before = setup.decisions()
    got = setup.ask(text, stream=stream)
    assert got.status == 200
    assert got.headers["x-veteran-policy"] == "redact=redact:storage"
    assert setup.echo.requests[-1]["messages"][-1]["content"] == text
    assert got.content == answer([], text)[0]
    t = got.trajectory
    assert t["request"]["messages"][-1]["content"] == "Write to <EMAIL_1>."
    assert EMAIL not in orjson.dumps(t).decode()
    # the answer repeats the value (in its content and its arguments): counted with the request
    assert t["policy"] == [{"rule": "redact", "action": "redact", "to": "storage",
                            "entities": {"email": 3}}]
    assert counted(setup, before) == {("redact", "redact"): 1}


@STREAMS
def test_provider_redaction_is_disclosed(setup: Setup, stream: bool) -> None:
    """[functions.pseudo.redact] provider = true."""
    text = f"Write to {EMAIL}."
    before = setup.decisions()
    got = setup.ask(text, stream=stream, function="pseudo")
    assert got.status == 200
    assert got.headers["x-veteran-policy"] == "redact=redact:provider"
    assert setup.echo.requests[-1]["messages"][-1]["content"] == "Write to <EMAIL_1>."
    assert got.content == answer([EMAIL], text)[0]
    t = got.trajectory
    assert t["policy"] == [{"rule": "redact", "action": "redact", "to": "provider",
                            "entities": {"email": 1}}]
    assert EMAIL not in orjson.dumps(t).decode()
    assert counted(setup, before) == {("redact", "redact"): 1}


def test_no_rule_no_header(setup: Setup) -> None:
    got = setup.ask("hello")
    assert got.status == 200 and "x-veteran-policy" not in got.headers
    assert got.trajectory["policy"] is None


# --- The Anthropic surface ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk(setup: Setup) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=setup.gateway.url, api_key=setup.keys["blue"],
                             max_retries=0, timeout=20) as client:
        yield client


def test_refusal_on_the_anthropic_surface(setup: Setup, sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        sdk.messages.create(model="assist", max_tokens=50,
                            messages=[{"role": "user", "content": f"key {SECRET}"}])
    assert "secrets never leave the company" in caught.value.message
    assert caught.value.response.headers["x-veteran-policy"] == "no-secrets=refuse"
    t = setup.trajectory(caught.value.response.headers["x-veteran-trajectory-id"], "blue")
    assert t["status"] == "error" and t["policy"][0]["rule"] == "no-secrets"


@STREAMS
def test_handoff_note_on_the_anthropic_surface(setup: Setup, sdk: anthropic.Anthropic,
                                               stream: bool) -> None:
    text = "What does case 7 say?"
    asked: list[Any] = [{"role": "user", "content": text}]
    message: anthropic.types.Message
    if stream:
        with sdk.messages.stream(model="assist", max_tokens=50, messages=asked) as events:
            message = events.get_final_message()
            headers = events.response.headers
    else:
        raw = sdk.messages.with_raw_response.create(model="assist", max_tokens=50,
                                                    messages=asked)
        message, headers = raw.parse(), raw.headers
    assert headers["x-veteran-policy"] == "legal=handoff:up/legal-llm"
    texts = [b.text for b in message.content if b.type == "text"]
    assert "".join(texts).endswith(f"\n\n{NOTE}")
    assert "".join(texts) == f"{answer([], text)[0]}\n\n{NOTE}"
    t = setup.trajectory(headers["x-veteran-trajectory-id"], "blue")
    assert t["response"]["choices"][0]["message"]["content"] == answer([], text)[0]
