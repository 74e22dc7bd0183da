"""Owned model folders served by the `local` provider: classifiers (fast, with the shipped
MiniLM), causal LMs from a LoRA adapter or whole weights (slow: the built-in SmolLM2), and the
workspace-relative `paths` they are configured with."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.conftest import write_workspace
from veteran.config import parse_config
from veteran.errors import BadRequest, Unsupported, UpstreamError
from veteran.memory.embed import MINILM, MiniLMEmbedder
from veteran.models import (
    MANIFEST,
    ClassifierModel,
    FewshotExamples,
    Head,
    read_manifest,
)
from veteran.providers.base import ModelRequest
from veteran.providers.local import BUILTIN, LocalProvider, LocalSettings

QUEUES = {"billing": "a question about an invoice, a payment, a charge or a refund",
          "technical": "the app crashes, shows an error or a page does not load",
          "shipping": "a parcel, a delivery or the tracking of an order"}


def manifest(folder: Path, kind: str, **extra: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"version": 1, "id": folder.name, "function": "triage", "recipe": kind,
              "kind": kind, "base_model": None, **extra}
    (folder / MANIFEST).write_bytes(orjson.dumps(record))


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def prototype_classifier(folder: Path, embedder: MiniLMEmbedder, *, fields: bool = False
                         ) -> None:
    """A classifier whose head scores each label by its description's embedding (no training:
    the provider is tested here, the recipe in tests/train)."""
    weight = embedder.embed(list(QUEUES.values())) * 20
    queue = Head("queue" if fields else None, list(QUEUES), weight,
                 np.zeros(len(QUEUES), np.float32))
    heads = [queue]
    if fields:  # a constant second field, as a recipe makes for a field that never changes
        heads.append(Head("priority", ["normal"], np.zeros((1, 384), np.float32),
                          np.zeros(1, np.float32)))
    ClassifierModel(MINILM, 384, heads, (", ", ": ") if fields else None).save(folder)
    manifest(folder, "classifier", base_model=MINILM)


def provider_for(**paths: Path) -> LocalProvider:
    return LocalProvider("local", LocalSettings(kind="local", preload=False,
                                                paths={k: str(v) for k, v in paths.items()}))


def ask(provider: LocalProvider, model: str, text: str | None = "My invoice is wrong",
        **body: Any) -> dict[str, Any]:
    body.setdefault("messages", [{"role": "system", "content": "Route the ticket."},
                                 {"role": "user", "content": text}])
    return asyncio.run(provider.complete(ModelRequest(model, body)))


def content(answer: dict[str, Any]) -> str:
    text: str = answer["choices"][0]["message"]["content"]
    return text


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory: pytest.TempPathFactory, minilm: MiniLMEmbedder
                ) -> Iterator[LocalProvider]:
    root = tmp_path_factory.mktemp("owned")
    prototype_classifier(root / "labels", minilm)
    prototype_classifier(root / "fields", minilm, fields=True)
    provider = provider_for(labels=root / "labels", fields=root / "fields")
    yield provider
    asyncio.run(provider.close())


# Workspace-relative paths


def test_relative_paths_resolve_against_the_workspace(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", """
        [providers.local]
        kind = "local"
        paths = { a = "models/a", b = "/srv/b.gguf", c = "~/c" }
    """)
    paths = ws.load_config().providers["local"].paths  # type: ignore[attr-defined]
    assert paths["a"] == str(ws.path.resolve() / "models" / "a")
    assert paths["b"] == "/srv/b.gguf"
    assert paths["c"] == str(Path("~/c").expanduser())
    assert ws.load_config().folder == ws.path.resolve()
    unanchored = parse_config({"providers": {"local": {"kind": "local",
                                                       "paths": {"a": "models/a"}}}})
    assert unanchored.providers["local"].paths == {"a": "models/a"}  # type: ignore[attr-defined]
    assert unanchored.folder is None


# Classifiers


def test_a_classifier_answers_its_label(classifiers: LocalProvider) -> None:
    answer = ask(classifiers, "labels", "I was charged twice, please refund me")
    assert content(answer) == "billing"
    assert answer["model"] == "labels"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["prompt_tokens"] > 3
    assert answer["usage"]["completion_tokens"] == 0
    assert content(ask(classifiers, "labels", "The app shows error 500 when I log in")) == (
        "technical")
    assert content(ask(classifiers, "labels", "Where is my parcel? Tracking says nothing")) == (
        "shipping")


def test_only_the_last_user_message_is_read(classifiers: LocalProvider) -> None:
    messages = [{"role": "user", "content": "My parcel never arrived"},
                {"role": "assistant", "content": "shipping"},
                {"role": "user", "content": [{"type": "text", "text": "Refund my invoice"}]}]
    assert content(ask(classifiers, "labels", messages=messages)) == "billing"


def test_a_classifier_streams_one_chunk(classifiers: LocalProvider) -> None:
    async def collect() -> list[dict[str, Any]]:
        request = ModelRequest("labels", {"messages": [
            {"role": "user", "content": "The page does not load"}], "stream": True})
        return [chunk async for chunk in classifiers.stream(request)]

    chunks = asyncio.run(collect())
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert [t for t in texts if t] == ["technical"]
    assert chunks[-1]["usage"]["prompt_tokens"] > 0


def test_a_fields_classifier_answers_json_in_field_order(classifiers: LocalProvider) -> None:
    text = content(ask(classifiers, "fields", "Refund the duplicate charge",
                       response_format={"type": "json_object"}))
    assert text == '{"queue": "billing", "priority": "normal"}'
    assert list(json.loads(text)) == ["queue", "priority"]


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"n": 2}, "n"),
    ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages"),
])
def test_a_label_classifier_refuses_what_it_cannot_do(
    classifiers: LocalProvider, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        ask(classifiers, "labels", **body)
    assert caught.value.param == param
    if param != "messages":
        assert isinstance(caught.value, Unsupported)


def test_preload_loads_owned_models_with_the_builtin(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    manifest(tmp_path / "owned", "classifier")
    provider = LocalProvider("local", LocalSettings(kind="local", paths={
        "owned": str(tmp_path / "owned"), "plain": str(tmp_path / "plain.gguf")}))
    loaded: list[str] = []

    async def load(name: str) -> None:
        loaded.append(name)

    monkeypatch.setattr(provider, "_model", load)
    asyncio.run(provider.start())
    assert loaded == [BUILTIN, "owned"]  # plain paths still load on first use


def test_broken_or_foreign_folders_are_clear_errors(tmp_path: Path) -> None:
    manifest(tmp_path / "shots", "fewshot")
    FewshotExamples(["t1"], ["hi"], ["hello"], np.full((1, 4), 0.5, np.float32), "x").save(
        tmp_path / "shots")
    manifest(tmp_path / "newer", "classifier", version=99)
    manifest(tmp_path / "half", "classifier")
    provider = provider_for(shots=tmp_path / "shots", newer=tmp_path / "newer",
                            half=tmp_path / "half", gone=tmp_path / "gone")
    with pytest.raises(UpstreamError, match="fewshot = "):
        ask(provider, "shots")
    with pytest.raises(UpstreamError, match="version 99"):
        ask(provider, "newer")
    with pytest.raises(UpstreamError, match="classifier.json"):
        ask(provider, "half")
    with pytest.raises(UpstreamError, match="does not exist"):
        ask(provider, "gone")
    assert read_manifest(tmp_path / "shots")["kind"] == "fewshot"


# Causal LMs: a LoRA adapter over the built-in model, merged at load; or whole weights.


GREETING = [{"role": "user", "content": "Say hello to the support team."}]


def greedy(provider: LocalProvider, model: str) -> str:
    return content(ask(provider, model, messages=GREETING, max_tokens=12))


@pytest.mark.slow
def test_an_adapter_is_merged_into_its_base(tmp_path: Path) -> None:
    import copy
    import shutil

    import torch
    from peft import LoraConfig, get_peft_model

    fresh, perturbed, whole = tmp_path / "fresh", tmp_path / "perturbed", tmp_path / "whole"
    chained = tmp_path / "chained"  # trained on top of `perturbed`, named by its id
    provider = provider_for(fresh=fresh, perturbed=perturbed, whole=whole, chained=chained)
    try:
        reference = greedy(provider, BUILTIN)
        assert reference.strip()
        # The artifacts are made from the provider's own copy of the built-in model: reading
        # the GGUF file again would take most of a minute on a busy CPU.
        builtin: Any = provider._models[BUILTIN]
        tokenizer, base = builtin.tokenizer, copy.deepcopy(builtin.model)
        for target in (fresh, perturbed):
            manifest(target, "causal-lm", base_model=BUILTIN)
        manifest(whole, "causal-lm")
        peft_model = get_peft_model(copy.deepcopy(base), LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
        # LoRA's B starts at zero: the adapter changes nothing yet.
        peft_model.save_pretrained(str(fresh / "adapter"), save_embedding_layers=False)
        tokenizer.save_pretrained(fresh / "adapter")
        shutil.copytree(fresh / "adapter", chained / "adapter")
        manifest(chained, "causal-lm", base_model="perturbed")
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
        peft_model.save_pretrained(str(perturbed / "adapter"), save_embedding_layers=False)
        # A whole Hugging Face folder (transformers will not save a model read from a GGUF
        # file until it forgets where it came from).
        base.hf_quantizer = None
        if hasattr(base.config, "quantization_config"):
            del base.config.quantization_config
        base.save_pretrained(whole / "weights")
        tokenizer.save_pretrained(whole / "weights")
        del peft_model, base

        assert greedy(provider, "fresh") == reference
        assert greedy(provider, "whole") == reference
        assert greedy(provider, "perturbed") != reference
        # Its base's adapter merged first, then its own (which changes nothing yet).
        assert greedy(provider, "chained") == greedy(provider, "perturbed")
    finally:
        asyncio.run(provider.close())
