"""`POST /v1/embeddings` with the official OpenAI SDK, and `POST /v1/kb/{collection}/search`,
on a real gateway on loopback, over SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest

from veteran.memory.embed import MiniLMEmbedder, OpenAIEmbedder
from veteran.memory.store import MemoryStore, document_id
from veteran.memory.types import Chunk
from veteran.providers.openai import OpenAISettings
from veteran.testing.server import ServerThread

DOCS = {
    "errors.md": ["Error ERR-4021 means the card issuer declined the payment.",
                  "Error ERR-5100 means the bank did not answer in time."],
    "refunds.md": ["Refunds are paid back to the original card within five working days."],
    "security.md": ["To reset a password, open Settings, then Security, then choose Reset."],
}


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def kb(gateway_server: ServerThread, minilm: MiniLMEmbedder) -> Iterator[ServerThread]:
    memory = MemoryStore(gateway_server.gateway.store.engine)  # type: ignore[attr-defined]
    memory.ensure_collection("handbook", embedder=minilm.name, dim=minilm.dim,
                             chunk_tokens=200, overlap_tokens=40)
    for source, texts in DOCS.items():
        doc = document_id("handbook", source, "hash-" + source)
        chunks = [Chunk(f"{doc}:{n}", "handbook", doc, source, n, text, 12,
                        {"area": source.removesuffix(".md"), "tags": ["faq"] if n else []})
                  for n, text in enumerate(texts)]
        memory.replace_document("handbook", source, content_hash="hash-" + source, size=100,
                                metadata={}, chunks=chunks, embeddings=minilm.embed(texts))
    yield gateway_server


def test_embeddings_with_the_openai_sdk(client: openai.OpenAI, minilm: MiniLMEmbedder) -> None:
    texts = ["How do I get a refund?", "I want my money back.", "Volcanoes erupt."]
    answer = client.embeddings.create(model="local", input=texts)
    assert [d.index for d in answer.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in answer.data], dtype=np.float32)
    assert vectors.shape == (3, 384)
    assert np.allclose(vectors, minilm.embed(texts), atol=1e-5)
    assert answer.usage.prompt_tokens == sum(minilm.count_tokens(t) for t in texts)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens
    assert answer.model == "all-MiniLM-L6-v2"
    single = client.embeddings.create(model="all-MiniLM-L6-v2", input="Volcanoes erupt.")
    assert np.allclose(single.data[0].embedding, vectors[2], atol=1e-5)


def test_embeddings_base64(client: openai.OpenAI, http: httpx.Client) -> None:
    floats = client.embeddings.create(model="minilm", input=["hello"], encoding_format="float")
    # The SDK asks for base64 by default and decodes it itself.
    decoded = client.embeddings.create(model="minilm", input=["hello"])
    assert np.allclose(decoded.data[0].embedding, floats.data[0].embedding, atol=1e-6)
    raw = http.post("/v1/embeddings", json={"model": "local", "input": "hello",
                                             "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vector, floats.data[0].embedding, atol=1e-6)


def test_the_openai_embedder_reads_the_wire(gateway_server: ServerThread,
                                            minilm: MiniLMEmbedder) -> None:
    settings = OpenAISettings(kind="openai", base_url=gateway_server.url + "/v1")
    remote = OpenAIEmbedder("gw", settings, "local")
    texts = [f"text number {i}" for i in range(300)]  # two requests of up to 256
    assert np.allclose(remote.embed(texts), minilm.embed(texts), atol=1e-5)
    assert remote.dim == 384


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "local", "input": [[1, 2, 3]]}, "input"),
    ({"model": "local", "input": []}, "input"),
    ({"model": "local", "input": ["ok", ""]}, "input"),
    ({"model": "local"}, "input"),
    ({"model": "gpt-embedding-9", "input": "x"}, "model"),
    ({"model": "local", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "local", "input": "x", "dimensions": 128}, "dimensions"),
])
def test_embeddings_bad_input(http: httpx.Client, body: dict[str, object], param: str) -> None:
    answer = http.post("/v1/embeddings", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


def test_search_endpoint(kb: ServerThread, http: httpx.Client) -> None:
    answer = http.post("/v1/kb/handbook/search", json={"query": "ERR-4021", "k": 2})
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "list" and len(body["data"]) == 2
    top = body["data"][0]
    assert set(top) == {"id", "source", "text", "score", "bm25_rank", "dense_rank",
                        "similarity", "keywords", "metadata"}
    assert top["keywords"] > 0.5 and 0 < top["similarity"] <= 1
    assert top["text"].startswith("Error ERR-4021") and top["source"] == "errors.md"
    assert top["bm25_rank"] == 1 and top["metadata"]["area"] == "errors"
    dense = http.post("/v1/kb/handbook/search",
                      json={"query": "how do I get my money returned", "mode": "dense", "k": 1})
    assert dense.json()["data"][0]["source"] == "refunds.md"
    assert dense.json()["data"][0]["bm25_rank"] is None
    off_topic = {"query": "what is the capital of mongolia", "k": 3}
    assert len(http.post("/v1/kb/handbook/search", json=off_topic).json()["data"]) == 3
    kept = http.post("/v1/kb/handbook/search", json={**off_topic, "min_score": 0.5}).json()
    assert kept["data"] == []  # nothing relevant: the threshold leaves it all out
    filtered = http.post("/v1/kb/handbook/search",
                         json={"query": "error", "filters": {"tags": "faq"}, "k": 5})
    assert [d["text"][:14] for d in filtered.json()["data"]] == ["Error ERR-5100"]


def test_search_errors(kb: ServerThread, http: httpx.Client) -> None:
    missing = http.post("/v1/kb/nope/search", json={"query": "x"})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    for body, param in [({"query": ""}, "query"), ({"query": "x", "k": 0}, "k"),
                        ({"query": "x", "k": 101}, "k"), ({"query": "x", "k": True}, "k"),
                        ({"query": "x", "mode": "fuzzy"}, "mode"),
                        ({"query": "x", "filters": {"a": [1]}}, "filters"),
                        ({"query": "x", "filters": "a=1"}, "filters"),
                        ({"query": "x", "extra": 1}, "extra"),
                        ({"query": "x", "min_score": 2}, "min_score"),
                        ({"query": "x", "min_score": "high"}, "min_score")]:
        answer = http.post("/v1/kb/handbook/search", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["param"] == param
    assert http.get("/v1/kb/handbook/search").status_code == 405
    assert http.post("/v1/kb/handbook/other", json={"query": "x"}).status_code == 404
    assert http.post("/v1/kb//search", json={"query": "x"}).status_code == 404
