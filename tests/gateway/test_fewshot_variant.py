"""A variant with `fewshot`: the k nearest examples of a fewshot model are put into each request
(after the system prompt, most similar last) and recorded in the trajectory's context; other
variants and functions are left exactly as they were. A real gateway on loopback, the mock
provider, and a bag-of-words embedder standing in for MiniLM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import serve, write_workspace
from veteran.datasets.types import Example
from veteran.errors import ConfigError
from veteran.gateway import Gateway
from veteran.gateway.fewshot import FewshotCaller
from veteran.gateway.resilience import Caller
from veteran.models import MANIFEST
from veteran.store import Store
from veteran.testing.embedder import HashEmbedder
from veteran.testing.server import ServerThread
from veteran.train.recipes.fewshot import FewshotRecipe
from veteran.train.types import TrainJob
from veteran.workspace import Workspace

MODEL_ID = "support-fewshot-1a2b3c"
CONFIG = """
[providers.m]
kind = "mock"

[functions.support]
system = "You answer customer questions."
fallbacks = ["plain"]
[functions.support.variants.shots]
model = "m/echo"
fewshot = {{ model = "{model}", k = 2 }}
[functions.support.variants.plain]
model = "m/echo"
weight = 0

[functions.other]
[functions.other.variants.a]
model = "m/echo"
"""
EXAMPLES = [("How do I reset my password?", "Use the reset link on the login page."),
            ("Where is my parcel?", "See the tracking page."),
            ("Can I get a refund for my order?", "Yes, within 30 days."),
            ("My password reset email never came", "Check the spam folder.")]


def fewshot_model(ws: Workspace, model_id: str = MODEL_ID, kind: str = "fewshot") -> Path:
    folder = ws.path / "models" / model_id
    train = [Example(id=f"0190000000{i:02d}", episode_id=f"e{i}",
                     prompt=[{"role": "user", "content": user}],
                     completion={"role": "assistant", "content": answer})
             for i, (user, answer) in enumerate(EXAMPLES)]
    FewshotRecipe(HashEmbedder()).train(TrainJob("support", "fewshot", train, [], folder,
                                                 folder / "ck"))
    (folder / MANIFEST).write_bytes(orjson.dumps({
        "version": 1, "id": model_id, "function": "support", "recipe": "fewshot",
        "kind": kind, "base_model": None}))
    return folder


@pytest.fixture(autouse=True)
def hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's memory embedder is the test one, as the examples were embedded with it."""
    monkeypatch.setattr("veteran.memory.embed.default_embedder", lambda config: HashEmbedder())


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = write_workspace(tmp_path / "ws", CONFIG.format(model=MODEL_ID))
    fewshot_model(ws)
    return ws


@pytest.fixture
def server(workspace: Workspace) -> Iterator[ServerThread]:
    with serve(workspace) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


def sent(server: ServerThread) -> list[dict[str, Any]]:
    """The messages the mock provider received last."""
    messages: list[dict[str, Any]] = server.gateway.providers["m"].requests[-1].body["messages"]  # type: ignore[attr-defined]
    return messages


def stored(server: ServerThread, raw: Any) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(
        f"{server.url}/v1/trajectories/{raw.headers['x-veteran-trajectory-id']}").json()
    return found


QUESTION: list[Any] = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "I never got the password reset email"}]


def test_the_nearest_examples_go_after_the_system_prompt(
    server: ServerThread, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="support", messages=QUESTION)
    assert raw.parse().choices[0].message.content == "echo: I never got the password reset email"
    assert raw.headers["x-veteran-variant"] == "shots"
    messages = sent(server)
    assert messages[:2] == [{"role": "system", "content": "You answer customer questions."},
                            QUESTION[0]]
    assert messages[2:6] == [
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": "Use the reset link on the login page."},
        {"role": "user", "content": "My password reset email never came"},  # most similar last
        {"role": "assistant", "content": "Check the spam folder."},
    ]
    assert messages[6:] == [QUESTION[1]]
    trajectory = stored(server, raw)
    used = trajectory["context"]["fewshot"]
    assert used["model"] == MODEL_ID and used["k"] == 2
    assert used["examples"] == ["019000000000", "019000000003"]  # in prompt order
    assert used["scores"][0] <= used["scores"][1]
    assert trajectory["request"]["messages"] == messages  # what the provider was told


def test_streams_get_the_examples_too(server: ServerThread, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="support", messages=QUESTION, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("echo:")
    assert len(sent(server)) == 7


def test_other_variants_and_functions_are_unchanged(
    server: ServerThread, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="support", messages=QUESTION, extra_headers={"x-veteran-variant": "plain"})
    assert sent(server) == [{"role": "system", "content": "You answer customer questions."},
                            *QUESTION]
    assert stored(server, raw)["context"] is None
    client.chat.completions.create(model="other", messages=QUESTION)
    assert sent(server) == QUESTION
    client.chat.completions.create(model="m/echo", messages=QUESTION)
    assert sent(server) == QUESTION


def test_a_gateway_without_fewshot_variants_keeps_the_plain_caller(
    tmp_path: Path, server: ServerThread
) -> None:
    assert isinstance(server.gateway.caller, FewshotCaller)  # type: ignore[attr-defined]
    config = write_workspace(tmp_path / "plain", """
        [providers.m]
        kind = "mock"
        [functions.f.variants.a]
        model = "m/echo"
    """).load_config()
    store = Store.open(f"sqlite:///{tmp_path}/plain.db")
    try:
        gateway = Gateway(config, store)
        assert type(gateway.caller) is Caller and gateway.fewshot is None
    finally:
        store.close()


@pytest.mark.parametrize(("setup", "problem"), [
    ("missing", "no veteran-model.json"),
    ("classifier", "is a classifier model, not a fewshot one"),
])
def test_an_unusable_model_stops_the_gateway_at_start(
    tmp_path: Path, setup: str, problem: str
) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG.format(model="gone" if setup == "missing"
                                                        else MODEL_ID))
    if setup == "classifier":
        fewshot_model(ws, kind="classifier")
    store = Store.open(f"sqlite:///{tmp_path}/v.db")
    try:
        gateway = Gateway(ws.load_config(), store)
        with pytest.raises(ConfigError) as caught:
            asyncio.run(gateway.start())
        assert caught.value.key == "functions.support.variants.shots.fewshot.model"
        assert problem in caught.value.message
        assert str(ws.path / "veteran.toml") in caught.value.message
    finally:
        store.close()
