"""The shipped all-MiniLM-L6-v2, for real: loaded from the installed package, never downloaded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from veteran.config import parse_config
from veteran.errors import ConfigError
from veteran.memory.embed import (
    MINILM,
    MINILM_INT8,
    MiniLMEmbedder,
    OpenAIEmbedder,
    default_embedder,
    minilm_dir,
)


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLMEmbedder]:
    yield MiniLMEmbedder()


def test_vectors_are_normalised_and_384_wide(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(["A cat sits on the mat.", "x" * 5000, "naïve café — ünïcode"])
    assert vectors.shape == (3, 384) and minilm.dim == 384
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_similar_sentences_are_closer_than_unrelated_ones(minilm: MiniLMEmbedder) -> None:
    a, b, c = minilm.embed([
        "How do I get a refund for my order?",
        "I want my money back for this purchase.",
        "The volcano erupted and covered the village in ash.",
    ])
    assert float(a @ b) > 0.5
    assert float(a @ b) > float(a @ c) + 0.3


def test_batches_and_order_do_not_change_vectors(minilm: MiniLMEmbedder) -> None:
    texts = [f"sentence number {i} " * (i % 7 + 1) for i in range(40)]
    together = minilm.embed(texts)
    alone = np.stack([minilm.embed([t])[0] for t in texts[:5]])
    assert np.allclose(together[:5], alone, atol=1e-5)


def test_onnx_encoder_gives_the_transformers_pipeline_vectors(minilm: MiniLMEmbedder) -> None:
    # The sentence-transformers pipeline of the model, in torch: AutoModel, mean pooling over
    # the attention mask, L2 norm. Texts of different lengths, so the batch is padded.
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["Refund please.", "My parcel never arrived and the tracking page shows nothing " * 3,
             "naïve café"]
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    model = AutoModel.from_pretrained(str(minilm_dir()), local_files_only=True).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    assert np.abs(minilm.embed(texts) - expected.numpy()).max() < 1e-5


def test_the_int8_flavour_is_another_embedder_close_to_the_float_one(
        minilm: MiniLMEmbedder) -> None:
    int8 = MiniLMEmbedder(int8=True)
    assert (int8.name, minilm.name) == (MINILM_INT8, MINILM) and int8.dim == 384
    texts = ["How do I get a refund for my order?", "I want my money back for this purchase.",
             "The volcano erupted and covered the village in ash.", "My parcel is lost."]
    quantized, exact = int8.embed(texts), minilm.embed(texts)
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(quantized, exact, atol=1e-3)  # other vectors: never mixed with these
    assert (quantized * exact).sum(1).min() > 0.85
    a, b, c, _ = quantized
    assert float(a @ b) > float(a @ c) + 0.3


def test_count_tokens_uses_the_wordpiece_tokenizer(minilm: MiniLMEmbedder) -> None:
    assert minilm.count_tokens("") == 0
    assert minilm.count_tokens("hello world") == 2
    # WordPiece splits rare words into pieces; the count is not truncated at 256.
    assert minilm.count_tokens("antidisestablishmentarianism") > 1
    assert minilm.count_tokens("word " * 1000) == 1000


def test_is_thread_safe(minilm: MiniLMEmbedder) -> None:
    expected = minilm.embed(["parallel text"])[0]
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(minilm.embed(["parallel text"])[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert all(np.allclose(r, expected, atol=1e-5) for r in results)


def test_model_folder_is_the_installed_package() -> None:
    folder = minilm_dir()
    assert folder.name == "model" and (folder / "tokenizer.json").is_file()


PROVIDERS = {"up": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
             "m": {"kind": "mock"}}


def test_default_embedder_from_config() -> None:
    assert isinstance(default_embedder(parse_config({})), MiniLMEmbedder)
    local = parse_config({"memory": {"embedder": "local"}})
    assert isinstance(default_embedder(local), MiniLMEmbedder)
    config = parse_config({"providers": PROVIDERS,
                           "memory": {"embedder": "up/text-embedding-3-small"}})
    remote = default_embedder(config)
    assert isinstance(remote, OpenAIEmbedder) and remote.name == "up/text-embedding-3-small"
    for name, problem in (("m/whatever", "kind"), ("nope/model", "neither")):
        config = parse_config({"providers": PROVIDERS, "memory": {"embedder": name}})
        with pytest.raises(ConfigError, match=problem):
            default_embedder(config)


def test_an_openai_compatible_provider_embeds_over_loopback(
    upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from veteran.errors import UpstreamError

    monkeypatch.setenv("EMB_KEY", "sk-embed-secret")
    config = parse_config({
        "providers": {"up": {"kind": "openai", "base_url": upstream.url,
                             "api_key_env": "EMB_KEY"}},
        "memory": {"embedder": "up/text-embedding-3-small"},
    })
    remote = default_embedder(config)
    assert isinstance(remote, OpenAIEmbedder)
    remote.batch = 2  # several requests for one call
    vectors = remote.embed(["alpha", "beta", "alpha", "gamma", "delta"])
    assert vectors.shape == (5, 16) and remote.dim == 16
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    sent = upstream.requests[-3:]
    assert [r["input"] for r in sent] == [["alpha", "beta"], ["alpha", "gamma"], ["delta"]]
    assert all(r["model"] == "text-embedding-3-small" for r in sent)
    assert upstream.headers[-1]["authorization"] == "Bearer sk-embed-secret"

    async def from_the_loop() -> Any:
        try:
            return await remote.aembed(["alpha"])
        finally:
            await remote.aclose()

    assert np.allclose(asyncio.run(from_the_loop())[0], vectors[0])
    with pytest.raises(UpstreamError) as failed:
        remote.embed(["fault:status=503"])
    assert failed.value.upstream_status == 503 and "sk-embed-secret" not in str(failed.value)
