"""Pseudonymisation end to end (issue 14, "Done means"): a real gateway on loopback in front of
an upstream that answers with the placeholders it was sent (tests/policies/echo_upstream.py),
called through the official `openai` and `anthropic` SDKs, plain and streamed.

The provider sees placeholders only; the application gets its values back in the content and
in the tool call's arguments; the stored trajectory keeps the placeholders. Streamed, the
upstream cuts its content and arguments at every offset k (and again at k + 1 and k + 4, so a
placeholder also arrives in three pieces). Every offset goes through the OpenAI surface with
httpx (a few ms a request); the SDKs take every offset inside the placeholders of the content
and of the arguments, and a sample of the rest: the SDKs parse the same bytes, and running both
of them at every offset of both answers would triple the test's time for no other path.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.conftest import serve, write_workspace
from tests.policies.echo_upstream import PLACEHOLDER, TOOL, Echo, answer
from veteran.access import create_key
from veteran.store import Store
from veteran.testing.server import ServerThread

CONFIG = """
[providers.up]
kind = "openai"
base_url = "{echo}/v1"
[providers.up.retry]
max_retries = 0

[functions.assist]
[functions.assist.variants.a]
model = "up/gpt-4o"

[redact]
entities = ["email", "phone", "customer", "account"]
provider = true

[dictionaries.customers]
entity = "customer"
terms = ["Zoë Ågren", 'Bob "Bobby" Tables']

[patterns.account]
entity = "account"
regex = 'CORP\\\\[a-z]+'
"""
CUSTOMER, EMAIL, PHONE = "Zoë Ågren", "alice@example.com", "+44 20 7946 0958"
VALUES = (CUSTOMER, EMAIL, PHONE)
PLACEHOLDERS = ("<CUSTOMER_1>", "<EMAIL_1>", "<PHONE_1>")
SAID = f"Bonjour, ici {CUSTOMER} — écrivez à {EMAIL} ou appelez le {PHONE}, merci ✓"
MASKED = "Bonjour, ici <CUSTOMER_1> — écrivez à <EMAIL_1> ou appelez le <PHONE_1>, merci ✓"
MESSAGES: list[Any] = [{"role": "user", "content": SAID}]
OPENAI_TOOLS: list[Any] = [{"type": "function", "function": {
    "name": TOOL, "parameters": {"type": "object", "properties": {}}}}]
ANTHROPIC_TOOLS: list[Any] = [{"name": TOOL, "input_schema": {"type": "object",
                                                              "properties": {}}}]
# What the application must get back, and what the upstream answers.
CONTENT, ARGUMENTS = answer(list(VALUES), SAID)
SENT_CONTENT, SENT_ARGUMENTS = answer(list(PLACEHOLDERS), MASKED)


@dataclass
class Setup:
    echo: Echo
    gateway: ServerThread
    http: httpx.Client
    openai: openai.OpenAI
    anthropic: anthropic.Anthropic

    def check_sides(self, trajectory_id: str) -> None:
        """The upstream's last request, and the stored trajectory, hold placeholders only."""
        sent = self.echo.requests[-1]
        assert sent["messages"][-1]["content"] == MASKED
        stored = self.http.get(f"/v1/trajectories/{trajectory_id}")
        assert stored.status_code == 200, stored.text
        trajectory = stored.json()
        assert trajectory["request"]["messages"][-1]["content"] == MASKED
        message = trajectory["response"]["choices"][0]["message"]
        assert message["content"] == SENT_CONTENT
        assert orjson.loads(message["tool_calls"][0]["function"]["arguments"]) == orjson.loads(
            SENT_ARGUMENTS)
        for side in (orjson.dumps(sent).decode(), stored.text):
            for value in VALUES:
                assert value not in side and orjson.dumps(value).decode()[1:-1] not in side
        assert [d["to"] for d in trajectory["policy"]] == ["provider"]
        assert trajectory["policy"][0]["entities"] == {"customer": 1, "email": 1, "phone": 1}

    def stream_http(self, splits: tuple[int, ...]) -> tuple[str, str, str]:
        """A streamed call through the OpenAI surface with httpx: content, arguments,
        trajectory id."""
        self.echo.splits = splits
        body = {"model": "assist", "messages": MESSAGES, "stream": True, "tools": OPENAI_TOOLS}
        content, arguments = [], []
        with self.http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200, response.read()
            trajectory_id = response.headers["x-veteran-trajectory-id"]
            assert response.headers["x-veteran-policy"] == "redact=redact:provider"
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in orjson.loads(line[6:])["choices"]:
                    delta = choice["delta"]
                    content.append(delta.get("content") or "")
                    for call in delta.get("tool_calls") or ():
                        assert call["index"] == 0
                        arguments.append(call["function"].get("arguments") or "")
        return "".join(content), "".join(arguments), trajectory_id

    def stream_openai(self, splits: tuple[int, ...]) -> tuple[str, str, str]:
        self.echo.splits = splits
        content, arguments, names = [], [], []
        with self.openai.chat.completions.with_streaming_response.create(
                model="assist", messages=MESSAGES, tools=OPENAI_TOOLS, stream=True) as response:
            trajectory_id = response.headers["x-veteran-trajectory-id"]
            for chunk in response.parse():
                for choice in chunk.choices:
                    content.append(choice.delta.content or "")
                    for call in choice.delta.tool_calls or ():
                        assert call.index == 0
                        if call.function is not None:
                            arguments.append(call.function.arguments or "")
                            names.append(call.function.name or "")
        assert "".join(names) == TOOL
        return "".join(content), "".join(arguments), trajectory_id

    def stream_anthropic(self, splits: tuple[int, ...]) -> tuple[str, str, str]:
        """Content and the tool's input as JSON, from the SDK's own accumulated message."""
        self.echo.splits = splits
        with self.anthropic.messages.stream(model="assist", max_tokens=100, messages=MESSAGES,
                                            tools=ANTHROPIC_TOOLS) as stream:
            text = "".join(stream.text_stream)
            message = stream.get_final_message()
            trajectory_id = stream.response.headers["x-veteran-trajectory-id"]
        assert message.stop_reason == "tool_use"
        [block, tool] = message.content
        assert block.type == "text" and block.text == text
        assert tool.type == "tool_use" and tool.name == TOOL
        return text, orjson.dumps(tool.input).decode(), trajectory_id


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    echo = Echo()
    with ServerThread(echo, lifespan="off") as upstream:
        ws = write_workspace(tmp_path_factory.mktemp("roundtrip") / "ws",
                             CONFIG.format(echo=upstream.url))
        with (serve(ws) as gateway,
              httpx.Client(base_url=gateway.url, timeout=20) as http,
              openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0,
                            timeout=20) as openai_client,
              anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0,
                                  timeout=20) as anthropic_client):
            yield Setup(echo, gateway, http, openai_client, anthropic_client)


def spans(text: str) -> list[int]:
    """Every offset strictly inside a placeholder of `text`."""
    return [k for m in PLACEHOLDER.finditer(text) for k in range(m.start() + 1, m.end())]


def same_arguments(got: str) -> None:
    assert orjson.loads(got) == orjson.loads(ARGUMENTS)


def test_the_openai_sdk_gets_its_values_back_in_a_plain_answer(setup: Setup) -> None:
    raw = setup.openai.chat.completions.with_raw_response.create(
        model="assist", messages=MESSAGES, tools=OPENAI_TOOLS)
    message = raw.parse().choices[0].message
    assert raw.headers["x-veteran-policy"] == "redact=redact:provider"
    assert message.content == CONTENT
    [call] = message.tool_calls or []
    assert call.type == "function" and call.function.name == TOOL
    same_arguments(call.function.arguments)
    setup.check_sides(raw.headers["x-veteran-trajectory-id"])


def test_the_anthropic_sdk_gets_its_values_back_in_a_plain_answer(setup: Setup) -> None:
    raw = setup.anthropic.messages.with_raw_response.create(
        model="assist", max_tokens=100, messages=MESSAGES, tools=ANTHROPIC_TOOLS)
    message = raw.parse()
    assert raw.headers["x-veteran-policy"] == "redact=redact:provider"
    assert message.stop_reason == "tool_use"
    [text, tool] = message.content
    assert text.type == "text" and text.text == CONTENT
    assert tool.type == "tool_use" and tool.name == TOOL
    assert tool.input == orjson.loads(ARGUMENTS)
    setup.check_sides(raw.headers["x-veteran-trajectory-id"])


def test_a_stream_cut_at_every_offset_is_revealed_whole(setup: Setup) -> None:
    longest = max(len(SENT_CONTENT), len(SENT_ARGUMENTS))
    for k in range(longest + 1):
        for splits in ((k,), (k, k + 1), (k, k + 4)):
            content, arguments, trajectory_id = setup.stream_http(splits)
            assert content == CONTENT, splits
            same_arguments(arguments)
            setup.check_sides(trajectory_id)


def test_a_stream_of_one_character_chunks_is_revealed_whole(setup: Setup) -> None:
    every = tuple(range(max(len(SENT_CONTENT), len(SENT_ARGUMENTS))))
    for stream in (setup.stream_http, setup.stream_openai, setup.stream_anthropic):
        content, arguments, trajectory_id = stream(every)
        assert content == CONTENT
        same_arguments(arguments)
        setup.check_sides(trajectory_id)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_the_sdks_get_their_values_back_from_a_stream_split_inside_each_placeholder(
    setup: Setup, sdk: str,
) -> None:
    stream = setup.stream_openai if sdk == "openai" else setup.stream_anthropic
    # inside every placeholder of the content and of the arguments, and a sample elsewhere
    offsets = sorted({*spans(SENT_CONTENT), *spans(SENT_ARGUMENTS),
                      *range(0, len(SENT_ARGUMENTS) + 1, 7)})
    for k in offsets:
        content, arguments, trajectory_id = stream((k, k + 3))
        assert content == CONTENT, k
        same_arguments(arguments)
        setup.check_sides(trajectory_id)


def test_the_placeholders_of_an_episode_are_stable_across_its_turns(setup: Setup) -> None:
    """Turn two sends turn one's answer back as the SDK gave it (values, tool call, a tool
    result): the provider sees the same placeholders, the app gets the same values."""
    headers = {"x-veteran-episode-id": "ep-stable"}
    first = setup.openai.chat.completions.with_raw_response.create(
        model="assist", messages=MESSAGES, tools=OPENAI_TOOLS, extra_headers=headers)
    said = first.parse().choices[0].message
    [call] = said.tool_calls or []
    second_phone = "+44 20 7946 0999"
    history: list[Any] = [*MESSAGES, said.model_dump(exclude_none=True),
                          {"role": "tool", "tool_call_id": call.id,
                           "content": f"sent to {EMAIL}; {CUSTOMER} also has {second_phone}"},
                          {"role": "user", "content": f"Thanks. And {second_phone}?"}]
    raw = setup.openai.chat.completions.with_raw_response.create(
        model="assist", messages=history, tools=OPENAI_TOOLS, extra_headers=headers)
    sent = orjson.dumps(setup.echo.requests[-1]["messages"]).decode()
    for value in (*VALUES, second_phone):
        assert value not in sent
    assert setup.echo.requests[-1]["messages"][-2]["content"] == (
        "sent to <EMAIL_1>; <CUSTOMER_1> also has <PHONE_2>")
    message = raw.parse().choices[0].message
    content, _ = answer([*VALUES, second_phone], f"Thanks. And {second_phone}?")
    assert message.content == content


@pytest.mark.parametrize("surface", ["plain", "stream", "anthropic"])
def test_a_value_that_json_must_escape_comes_back_in_valid_arguments(
    setup: Setup, surface: str,
) -> None:
    """A value with a backslash (a Windows account) or quotes (a customer) revealed inside a
    tool call's arguments must be escaped there, or they are no longer JSON (the Anthropic
    surface answers 502)."""
    account, customer = "CORP\\jsmith", 'Bob "Bobby" Tables'
    asked: list[Any] = [{"role": "user", "content": f"log in as {account} for {customer}"}]
    setup.echo.splits = (20,)
    if surface == "anthropic":
        message = setup.anthropic.messages.create(model="assist", max_tokens=100,
                                                  messages=asked, tools=ANTHROPIC_TOOLS)
        arguments = orjson.dumps(message.content[1].input).decode()  # type: ignore[union-attr]
    elif surface == "stream":
        stream = setup.openai.chat.completions.create(model="assist", messages=asked,
                                                      stream=True)
        arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                            for c in stream if c.choices and c.choices[0].delta.tool_calls
                            and c.choices[0].delta.tool_calls[0].function)
    else:
        completion = setup.openai.chat.completions.create(model="assist", messages=asked)
        [call] = completion.choices[0].message.tool_calls or []
        assert call.type == "function"
        arguments = call.function.arguments
    assert setup.echo.requests[-1]["messages"][-1]["content"] == (
        "log in as <ACCOUNT_1> for <CUSTOMER_1>")
    revealed = orjson.loads(arguments)
    assert revealed["to"] == [account, customer]
    assert revealed["said"] == asked[0]["content"]


def test_a_value_in_tool_arguments_and_in_plain_text_is_one_value(setup: Setup) -> None:
    """The account the app sends escaped in an earlier tool call's arguments and as text in
    its message gets one placeholder, and comes back escaped in the new arguments."""
    account = "CORP\\jsmith"
    history: list[Any] = [
        {"role": "user", "content": "who am I?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": TOOL, "arguments": orjson.dumps({"user": account}).decode()}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "user", "content": f"now as {account} again"}]
    completion = setup.openai.chat.completions.create(
        model="assist", messages=history, extra_headers={"x-veteran-episode-id": "ep-account"})
    sent = setup.echo.requests[-1]["messages"]
    assert orjson.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {
        "user": "<ACCOUNT_1>"}
    assert sent[3]["content"] == "now as <ACCOUNT_1> again"
    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert orjson.loads(call.function.arguments)["to"] == [account]


def test_values_escaped_in_json_tool_results_reach_the_provider_as_placeholders(
    setup: Setup,
) -> None:
    """json.dumps escapes every non-ASCII character by default (ensure_ascii: Zo\\u00eb), and
    any JSON writer may escape more (\\/, \\u0040): the provider must still see placeholders,
    in the same JSON values, and the trajectory keep none of the values."""
    import json

    arguments = json.dumps({"customer": CUSTOMER, "email": EMAIL})
    result = json.dumps({"name": CUSTOMER, "phone": PHONE}, indent=2)
    escaped = ('{"note": "alice\\u0040example.com \\/ Zo\\u00eb \\u00c5gren", '
               '"n": 123456789012345678901234567890}')
    history: list[Any] = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function", "function": {"name": TOOL, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": result},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": escaped}]}]
    raw = setup.openai.chat.completions.with_raw_response.create(model="assist",
                                                                 messages=history)
    sent = setup.echo.requests[-1]["messages"]
    assert orjson.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {
        "customer": "<CUSTOMER_1>", "email": "<EMAIL_1>"}
    assert sent[2]["content"] == json.dumps({"name": "<CUSTOMER_1>", "phone": "<PHONE_1>"},
                                            indent=2)  # the layout is the app's
    note = sent[3]["content"][0]["text"]
    assert note == '{"note": "<EMAIL_1> / <CUSTOMER_1>", "n": 123456789012345678901234567890}'
    stored = setup.http.get(f"/v1/trajectories/{raw.headers['x-veteran-trajectory-id']}")
    assert stored.status_code == 200, stored.text
    request = orjson.dumps(stored.json()["request"]).decode()
    assert not [v for v in (CUSTOMER, EMAIL, PHONE, "Zo\\u00eb", "alice\\u0040") if v in request]


# --- Concurrency: two keys, shared episode ids, overlapping values -------------------------

SHARED = "shared@example.com"  # in every request
N = 64


@dataclass(frozen=True)
class Ask:
    """Request `i`: key A or B, one of three episode ids (the same ids under both keys), a
    value in every request, one its neighbour of the other key also sends, two of its own."""

    i: int

    @property
    def key(self) -> str:
        return "a" if self.i % 2 == 0 else "b"

    @property
    def episode(self) -> str:
        return f"ep-{self.i % 3}"

    @property
    def stream(self) -> bool:
        return self.i % 4 >= 2

    @property
    def values(self) -> tuple[str, str, str, str]:
        return (SHARED, f"pair{self.i // 2}@example.com", f"user{self.i}@example.com",
                f"+44 20 7946 0{self.i:03d}")

    @property
    def text(self) -> str:
        shared, pair, own, phone = self.values
        return f"Ticket T{self.i:03d}: write to {shared}, {pair} and {own}, call {phone}."

    def masked(self, said: str) -> dict[str, str]:
        """This request's own placeholders (from what the upstream was sent) -> values."""
        p = r"(<[A-Z][A-Z0-9_]*_\d+>)"
        match = re.fullmatch(rf"Ticket T{self.i:03d}: write to {p}, {p} and {p}, call {p}\.",
                             said)
        assert match, said
        return dict(zip(match.groups(), self.values, strict=True))


def nonce(said: str) -> int:
    return int(said[len("Ticket T"):][:3])


@dataclass
class Keyed:
    echo: Echo
    gateway: ServerThread
    keys: dict[str, str]  # "a", "b": app keys; "view-a", "view-b": their teams' viewers
    http: httpx.Client

    def client(self, who: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.gateway.url + "/v1", api_key=self.keys[who],
                                  max_retries=0, timeout=30)

    def stored(self, who: str, trajectory_id: str) -> str:
        response = self.http.get(f"/v1/trajectories/{trajectory_id}",
                                 headers={"authorization": f"Bearer {self.keys['view-' + who]}"})
        assert response.status_code == 200, response.text
        return response.text


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    """A gateway with API keys (teams a and b) in front of an upstream that answers every
    placeholder any request ever sent it, cutting the start of a stream's content and arguments
    every 1 to 7 characters."""
    echo = Echo(answer_all=True, delay=0.005,
                splits_for=lambda said: range(0, 120, nonce(said) % 7 + 1)
                if said.startswith("Ticket T") else ())
    with ServerThread(echo, lifespan="off") as upstream:
        ws = write_workspace(tmp_path_factory.mktemp("concurrent") / "ws",
                             CONFIG.format(echo=upstream.url))
        store = Store.open(ws.database_url(ws.load_config()))
        try:
            keys = {who: create_key(store, team=team, role=role)[1]
                    for who, team, role in (("a", "a", "app"), ("b", "b", "app"),
                                            ("view-a", "a", "viewer"),
                                            ("view-b", "b", "viewer"))}
        finally:
            store.close()
        with serve(ws) as gateway, httpx.Client(base_url=gateway.url, timeout=20) as http:
            yield Keyed(echo, gateway, keys, http)


async def ask(client: openai.AsyncOpenAI, text: str, episode: str, stream: bool
              ) -> tuple[str, str, str]:
    """Content, tool-call arguments and trajectory id of one call through the async SDK."""
    messages: list[Any] = [{"role": "user", "content": text}]
    headers = {"x-veteran-episode-id": episode}
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(
            model="assist", messages=messages, tools=OPENAI_TOOLS, extra_headers=headers)
        message = raw.parse().choices[0].message
        [call] = message.tool_calls or []
        assert call.type == "function"
        return (message.content or "", call.function.arguments,
                raw.headers["x-veteran-trajectory-id"])
    chunks = await client.chat.completions.create(
        model="assist", messages=messages, tools=OPENAI_TOOLS, stream=True,
        extra_headers=headers)
    content, arguments = [], []
    async for chunk in chunks:
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            for piece in choice.delta.tool_calls or ():
                arguments.append((piece.function.arguments or "") if piece.function else "")
    return ("".join(content), "".join(arguments),
            chunks.response.headers["x-veteran-trajectory-id"])


def test_concurrent_requests_with_overlapping_values_never_see_each_others(
    keyed: Keyed,
) -> None:
    asks = [Ask(i) for i in range(N)]

    async def run() -> list[tuple[str, str, str]]:
        clients = {"a": keyed.client("a"), "b": keyed.client("b")}
        try:
            return await asyncio.gather(*(ask(clients[a.key], a.text, a.episode, a.stream)
                                          for a in asks))
        finally:
            for client in clients.values():
                await client.close()

    got = asyncio.run(run())
    every_value = {v for a in asks for v in a.values}
    sent = orjson.dumps(keyed.echo.requests).decode()
    assert not [v for v in every_value if v in sent]  # the upstream saw placeholders only
    answered = {nonce(said): (said, content, arguments)
                for said, content, arguments in keyed.echo.answers
                if said.startswith("Ticket T")}
    literal = 0
    for a, (content, arguments, trajectory_id) in zip(asks, got, strict=True):
        said, sent_content, sent_arguments = answered[a.i]
        own = a.masked(said)

        def reveal(text: str, own: dict[str, str] = own) -> str:
            return PLACEHOLDER.sub(lambda m: own.get(m[0], m[0]), text)

        assert content == reveal(sent_content), a
        assert orjson.loads(arguments) == orjson.loads(reveal(sent_arguments)), a
        others = every_value - set(a.values)
        assert not [v for v in others if v in content or v in arguments], a
        # the answer lists other requests' placeholders: they stay as they are
        literal += len(set(PLACEHOLDER.findall(content)))
        stored = keyed.stored(a.key, trajectory_id)
        assert not [v for v in every_value if v in stored]
    assert literal > N  # every answer held placeholders of others (and they stayed literal)


def test_a_typed_placeholder_comes_back_as_typed_never_as_a_value(keyed: Keyed) -> None:
    """LiteLLM issue 14516 / PR 19950: one token table for every request revealed stale or
    other requests' values. Here a user types placeholders that other requests of the same
    key and episode, another key, and this key's other episodes produced."""
    if not keyed.echo.known:  # run alone: give the vaults some placeholders first
        test_concurrent_requests_with_overlapping_values_never_see_each_others(keyed)
    typed = "What are <EMAIL_1>, <EMAIL_2> and <PHONE_1>? Réponse courte ✓"
    every_value = {v for i in range(N) for v in Ask(i).values}

    async def run() -> list[tuple[str, str, str]]:
        clients = {"a": keyed.client("a"), "b": keyed.client("b")}
        try:
            return await asyncio.gather(*(
                ask(clients[key], typed, episode, stream)
                for key in ("a", "b") for episode in ("ep-0", "ep-fresh")
                for stream in (False, True)))
        finally:
            for client in clients.values():
                await client.close()

    for content, arguments, _ in asyncio.run(run()):
        assert f"« {typed} »" in content
        assert "<EMAIL_1>" in content and "<PHONE_1>" in content
        assert not [v for v in every_value if v in content or v in arguments]
        assert orjson.loads(arguments)["to"] == keyed.echo.known[:len(orjson.loads(
            arguments)["to"])]


def test_a_typed_placeholder_taken_by_the_requests_own_value_comes_back_as_that_value(
    setup: Setup,
) -> None:
    """Documented (docs/policies.md, Pseudonymisation): a vault numbers values without reading
    what the user typed, so a typed <EMAIL_1> and the first e-mail of a fresh episode share
    it, and both come back as the user's own address, never another request's."""
    typed = f"I typed <EMAIL_1> and my address is {EMAIL}"
    message = setup.openai.chat.completions.create(
        model="assist", messages=[{"role": "user", "content": typed}],
        extra_headers={"x-veteran-episode-id": "ep-typed"}).choices[0].message
    sent = setup.echo.requests[-1]["messages"][-1]["content"]
    assert sent == "I typed <EMAIL_1> and my address is <EMAIL_1>"
    assert f"« I typed {EMAIL} and my address is {EMAIL} »" in (message.content or "")
