"""Memory put into prompts, and the semantic cache, through a real gateway on loopback in front
of the fake upstream, with the shipped MiniLM embedder (the production path)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.conftest import serve, write_workspace
from veteran.cli import cli
from veteran.memory.embed import default_embedder
from veteran.memory.ingest import ingest
from veteran.memory.store import MemoryStore
from veteran.store import Store
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread
from veteran.workspace import Workspace

CONFIG = """
[providers.up]
kind = "openai"
base_url = "{upstream}"

[functions.support]
system = "You answer customer questions."
[functions.support.variants.a]
model = "up/gpt-x"
[functions.support.memory]
collections = ["handbook", "not-ingested-yet"]
max_tokens = {budget}

[functions.everything]
[functions.everything.variants.a]
model = "up/gpt-x"
[functions.everything.memory]
collections = ["handbook"]
min_score = 0.0

[functions.faq]
[functions.faq.variants.a]
model = "up/{faq_model}"
[functions.faq.cache]
threshold = 0.9
"""

DOCS = {
    "returns.md": "# Returns\n\nYou may return any item within 30 days of delivery for a full "
                  "refund. Items must be unused and in their original packaging.\n",
    "shipping.md": "# Shipping\n\nStandard shipping takes 3 to 5 business days. Express "
                   "shipping arrives the next business day if ordered before noon.\n",
    "warranty.md": "# Warranty\n\nElectronics carry a two-year warranty covering defects in "
                   "materials and workmanship. Accidental damage is not covered.\n",
}


def workspace_for(tmp_path: Path, upstream: FakeUpstream, budget: int = 400,
                  faq_model: str = "gpt-x") -> Workspace:
    ws = write_workspace(tmp_path / "ws", CONFIG.format(
        upstream=upstream.url, budget=budget, faq_model=faq_model))
    docs = tmp_path / "handbook"
    docs.mkdir(exist_ok=True)
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        ingest(MemoryStore(store.engine), default_embedder(ws.load_config()), "handbook", [docs])
    finally:
        store.close()
    return ws


@pytest.fixture
def gateway(tmp_path: Path, upstream: FakeUpstream) -> Iterator[ServerThread]:
    with serve(workspace_for(tmp_path, upstream)) as server:
        yield server


def trajectory(server: ServerThread, id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{server.url}/v1/trajectories/{id}").json()
    return found


def ask(client: openai.OpenAI, model: str, text: str, **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **extra)


@pytest.fixture
def client(gateway: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


def test_the_best_chunks_go_into_the_prompt_with_their_sources(
    gateway: ServerThread, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    raw = ask(client, "support", "Can I get my money back if I return an unused item?")
    assert raw.parse().choices[0].message.content.startswith("echo: Can I get my money")
    sent = upstream.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "You answer customer questions."}
    context = sent[1]
    assert context["role"] == "system" and "[1] (handbook/returns.md" in context["content"]
    assert "within 30 days of delivery" in context["content"]
    assert sent[2]["role"] == "user"
    recorded = trajectory(gateway, raw.headers["x-veteran-trajectory-id"])["context"]
    assert recorded["collections"] == ["handbook", "not-ingested-yet"]
    assert recorded["chunks"][0]["source"] == "handbook/returns.md"
    assert 0 < recorded["tokens"] <= recorded["budget"] == 400
    assert {c["source"] for c in recorded["chunks"]} <= {f"handbook/{n}" for n in DOCS}


def test_what_does_not_fit_the_budget_is_left_out(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with serve(workspace_for(tmp_path, upstream, budget=60)) as server, \
            openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as client:
        raw = ask(client, "support", "What does the warranty cover?")
        recorded = trajectory(server, raw.headers["x-veteran-trajectory-id"])["context"]
    assert len(recorded["chunks"]) == 1 and recorded["tokens"] <= 60
    assert recorded["chunks"][0]["source"] == "handbook/warranty.md"


def test_an_unrelated_question_gets_no_memory(
    gateway: ServerThread, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    # issue 13: every chunk found was put in, however unrelated (a fused score ranks, it does
    # not measure relevance); [memory] min_score, 0.25 by default, now leaves them out.
    question = "What's a good recipe for banana bread?"
    raw = ask(client, "support", question)
    sent = upstream.requests[-1]["messages"]
    assert sent == [{"role": "system", "content": "You answer customer questions."},
                    {"role": "user", "content": question}]
    recorded = trajectory(gateway, raw.headers["x-veteran-trajectory-id"])["context"]
    assert recorded["chunks"] == [] and recorded["tokens"] == 0
    # A function's own min_score wins: at 0 whatever ranks goes in, as before.
    raw = ask(client, "everything", question)
    context = upstream.requests[-1]["messages"][0]
    assert context["role"] == "system" and "[1] (handbook/" in context["content"]
    chunks = trajectory(gateway, raw.headers["x-veteran-trajectory-id"])["context"]["chunks"]
    assert chunks and all(0 <= c["relevance"] < 0.25 for c in chunks)


def test_a_close_repeat_is_answered_from_the_cache(
    gateway: ServerThread, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    first = ask(client, "faq", "What is your refund policy?")
    assert first.headers["x-veteran-cache"] == "miss"
    first_id = first.headers["x-veteran-trajectory-id"]
    wait_for_entries(gateway, 1)
    calls = len(upstream.requests)

    again = ask(client, "faq", "what's your refund policy")
    assert again.headers["x-veteran-cache"] == "hit"
    assert again.headers["x-veteran-cached-from"] == first_id
    assert len(upstream.requests) == calls  # the provider was not called
    answer = again.parse()
    assert answer.choices[0].message.content == "echo: What is your refund policy?"
    assert answer.usage is not None and answer.usage.total_tokens == 0
    stored = trajectory(gateway, again.headers["x-veteran-trajectory-id"])
    assert stored["cached"] is True and stored["cost"] == 0
    assert stored["context"]["cache"]["trajectory_id"] == first_id
    assert stored["context"]["cache"]["similarity"] >= 0.9
    assert trajectory(gateway, first_id)["cached"] is False
    # the hit names the model whose answer it gave again (it was None/None)
    assert (stored["provider"], stored["model"], stored["variant"]) == ("up", "gpt-x", "a")
    assert again.headers["x-veteran-variant"] == "a"
    workspace = gateway.gateway.workspace  # type: ignore[attr-defined]
    listed = CliRunner().invoke(cli, ["trajectories", "list", "--function", "faq",
                                      "--workspace", str(workspace.path)])
    assert listed.exit_code == 0, listed.output
    assert "None" not in listed.output and listed.output.count("up/gpt-x") == 2

    with client.chat.completions.with_streaming_response.create(
        model="faq", messages=[{"role": "user", "content": "What's the refund policy?"}],
        stream=True,
    ) as streamed:
        assert streamed.headers["x-veteran-cache"] == "hit"
        text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    assert text == "echo: What is your refund policy?"
    assert len(upstream.requests) == calls


def test_different_numbers_params_or_questions_are_not_cache_hits(
    gateway: ServerThread, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    ask(client, "faq", "What is the refund policy for order 4471?")
    ask(client, "faq", "How do I reset my password?", temperature=0.2)
    ask(client, "faq", "Convert 30 euros to US dollars.")
    ask(client, "faq", "Which accessories are compatible with the QS-4653?")
    ask(client, "faq", "What is the maximum operating temperature of the XR-2067?")
    wait_for_entries(gateway, 5)
    for text, extra in [
        ("What is the refund policy for order 4417?", {}),  # another order
        ("How do I reset my password?", {"temperature": 0.9}),  # other parameters
        ("How do I change my shipping address?", {}),  # another question
        ("Convert 30 US dollars to euros.", {}),  # the same words, roles swapped
        ("Which accessories are not compatible with the QS-4653?", {}),  # negated
        ("What is the minimum operating temperature of the XR-2067?", {}),  # the other extreme
    ]:
        raw = ask(client, "faq", text, **extra)
        assert raw.headers["x-veteran-cache"] == "miss", text
    assert ask(client, "faq", "What's the refund policy for order 4471?"
               ).headers["x-veteran-cache"] == "hit"


def test_changing_a_variant_retires_its_cache(tmp_path: Path, upstream: FakeUpstream) -> None:
    ws = workspace_for(tmp_path, upstream)
    with serve(ws) as server, \
            openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as client:
        ask(client, "faq", "What is your refund policy?")
        wait_for_entries(server, 1)
        assert ask(client, "faq", "What is your refund policy?").headers["x-veteran-cache"] \
            == "hit"
    (ws.path / "veteran.toml").write_text(
        (ws.path / "veteran.toml").read_text().replace('model = "up/gpt-x"\n[functions.faq',
                                                       'model = "up/gpt-x"\n[functions.faq')
        .replace('[functions.faq.variants.a]\nmodel = "up/gpt-x"',
                 '[functions.faq.variants.a]\nmodel = "up/gpt-y"'))
    with serve(ws) as server, \
            openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as client:
        assert ask(client, "faq", "What is your refund policy?").headers["x-veteran-cache"] \
            == "miss"
    assert upstream.requests[-1]["model"] == "gpt-y"


def wait_for_entries(server: ServerThread, n: int) -> None:
    """Answers are cached off the request path: wait until `n` entries are stored."""
    engine: sa.Engine = server.gateway.store.engine  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM semantic_cache")).scalar_one() >= n:
                return
        assert time.monotonic() < deadline
        time.sleep(0.02)
