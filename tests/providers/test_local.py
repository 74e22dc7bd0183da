"""The `local` provider: request checks (fast) and the embedded SmolLM2 model (slow)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from veteran.errors import BadRequest, NotFound, Unsupported, UpstreamError
from veteran.providers.base import ModelInfo, ModelRequest
from veteran.providers.local import BUILTIN, LocalProvider, LocalSettings

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
COUNTING = [{"role": "user", "content": "Count from 1 to 300, separated by commas."}]


def make(**settings: Any) -> LocalProvider:
    return LocalProvider("local", LocalSettings(kind="local", **settings))


def complete(provider: LocalProvider, model: str = BUILTIN, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", QUESTION)
    return asyncio.run(provider.complete(ModelRequest(model, body)))


def stream(provider: LocalProvider, **body: Any) -> list[dict[str, Any]]:
    body.setdefault("messages", QUESTION)

    async def collect() -> list[dict[str, Any]]:
        return [chunk async for chunk in provider.stream(ModelRequest(BUILTIN, body))]

    return asyncio.run(collect())


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


# Fast: no weights load.


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        LocalSettings.model_validate({"kind": "local", "max_new_token": 10})


def test_knows_builtin_and_paths() -> None:
    settings = LocalSettings(kind="local", paths={"mine": "/models/mine.gguf"},
                             models={"priced": ModelInfo()})
    assert settings.knows_model(BUILTIN)
    assert settings.knows_model("mine")
    assert not settings.knows_model("gpt-4o")
    assert settings.model_names() == sorted([BUILTIN, "mine", "priced"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
         "response_format"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"messages": [{"role": "tool", "tool_call_id": "1", "content": "42"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, "messages"),
    ],
)
def test_unsupported_features_fail_before_loading(body: dict[str, Any], param: str) -> None:
    # The model's path does not exist: reaching the load would raise UpstreamError instead.
    provider = make(preload=False, paths={"missing": "/nonexistent/model.gguf"})
    with pytest.raises(Unsupported) as caught:
        complete(provider, "missing", **body)
    assert caught.value.param == param
    if param == "response_format":
        assert "cannot enforce structured output" in caught.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 5000}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": [1, 2]}, "stop"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages"),
    ],
)
def test_invalid_values_are_bad_requests(body: dict[str, Any], param: str) -> None:
    provider = make(preload=False, paths={"missing": "/nonexistent/model.gguf"})
    with pytest.raises(BadRequest) as caught:
        complete(provider, "missing", **body)
    assert caught.value.param == param


def test_missing_path_is_a_clear_error() -> None:
    provider = make(preload=False, paths={"mine": "/nonexistent/mine.gguf"})
    with pytest.raises(UpstreamError, match=r"'mine': /nonexistent/mine.gguf does not exist"):
        complete(provider, "mine")


def test_unknown_model_is_not_found() -> None:
    with pytest.raises(NotFound):
        complete(make(preload=False), "gpt-4o")


def test_concurrent_first_requests_share_one_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    loads: list[dict[str, Any]] = []

    def fake_model(folder: str, **kwargs: Any) -> Any:
        loads.append({"folder": folder, **kwargs})
        time.sleep(0.2)
        return SimpleNamespace(config=SimpleNamespace(max_position_embeddings=64))

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: object())
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)
    provider = make(preload=False, paths={"tiny": str(tmp_path)})

    async def twice() -> tuple[Any, Any]:
        return await asyncio.gather(provider._model("tiny"), provider._model("tiny"))

    first, second = asyncio.run(twice())
    assert first is second
    assert loads == [{"folder": str(tmp_path), "local_files_only": True}]


def test_loading_shows_no_progress_bars_but_keeps_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """transformers' two kinds of bar (its switchable one and the GGUF reader's bare tqdm) stay
    off while a model loads, and are back after; warnings and log records still come through."""
    import logging
    import warnings

    import transformers
    from transformers import modeling_gguf_pytorch_utils as gguf
    from transformers.utils import logging as hf_logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    hf_logging.get_logger("transformers").addHandler(handler)
    monkeypatch.setattr(hf_logging, "_tqdm_active", True)
    bare = gguf.tqdm

    def fake_model(folder: str, **kwargs: Any) -> Any:
        for _ in gguf.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
            pass
        for _ in hf_logging.tqdm(range(3), desc="Loading weights"):
            pass
        hf_logging.get_logger("transformers.modeling_utils").warning("a real log warning")
        warnings.warn("a real warning", UserWarning, stacklevel=1)
        return SimpleNamespace(config=SimpleNamespace(max_position_embeddings=64))

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: object())
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)
    provider = make(preload=False, paths={"tiny": str(tmp_path)})
    try:
        with pytest.warns(UserWarning, match="a real warning"):
            asyncio.run(provider._model("tiny"))
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    err = capfd.readouterr().err
    assert "GGUF" not in err and "Loading weights" not in err and "it/s" not in err
    assert [r.getMessage() for r in records] == ["a real log warning"]
    assert hf_logging.is_progress_bar_enabled() and gguf.tqdm is bare  # restored


# Slow: the embedded model, loaded once for the module.


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    provider = make()
    asyncio.run(provider.start())
    yield provider
    asyncio.run(provider.close())


@pytest.mark.slow
def test_answers_greedily_with_usage(provider: LocalProvider) -> None:
    answer = complete(provider)
    choice = answer["choices"][0]
    assert "Paris" in choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    tokenizer = provider._models[BUILTIN].tokenizer
    prompt = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True,
                                           return_dict=True)["input_ids"]
    written = tokenizer.encode(choice["message"]["content"], add_special_tokens=False)
    usage = answer["usage"]
    assert usage["prompt_tokens"] == len(prompt)
    assert usage["completion_tokens"] == len(written) + 1  # and the end-of-turn token
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.slow
def test_stream_matches_the_whole_answer(provider: LocalProvider) -> None:
    whole = complete(provider)
    chunks = stream(provider)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c for c in chunks[1:-2] if c["choices"][0]["delta"].get("content")]
    assert len(pieces) >= 3
    assert text_of(chunks) == whole["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert len({c["id"] for c in chunks}) == 1


@pytest.mark.slow
def test_token_budget_ends_with_length(provider: LocalProvider) -> None:
    answer = complete(provider, max_tokens=3)
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 3
    chunks = stream(provider, max_completion_tokens=3)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


@pytest.mark.slow
def test_stop_strings_cut_the_text(provider: LocalProvider) -> None:
    answer = complete(provider, stop=["Paris", "London"])
    assert answer["choices"][0]["message"]["content"] == "The capital of France is "
    assert answer["choices"][0]["finish_reason"] == "stop"
    chunks = stream(provider, stop="Paris")
    assert text_of(chunks) == "The capital of France is "
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.slow
def test_seed_makes_sampling_repeatable(provider: LocalProvider) -> None:
    first = complete(provider, temperature=1.0, seed=7, max_tokens=12)
    again = complete(provider, temperature=1.0, seed=7, max_tokens=12)
    assert first["choices"][0]["message"] == again["choices"][0]["message"]


@pytest.mark.slow
def test_closing_the_stream_stops_generation(provider: LocalProvider) -> None:
    # Uncancelled, this prompt runs to its token budget.
    long = complete(provider, messages=COUNTING, max_tokens=24)
    assert long["choices"][0]["finish_reason"] == "length"
    before = provider.generated_tokens

    async def abandon() -> None:
        request = ModelRequest(BUILTIN, {"messages": COUNTING, "max_tokens": 256})
        chunks = cast(AsyncGenerator[dict[str, Any], None], provider.stream(request))
        await anext(chunks)  # role
        await anext(chunks)  # first text
        await chunks.aclose()
        # One worker: this runs only once the abandoned generation has stopped.
        await provider.complete(ModelRequest(BUILTIN, {"messages": QUESTION, "max_tokens": 1}))

    asyncio.run(abandon())
    abandoned = provider.generated_tokens - before - 1
    assert 1 <= abandoned < 32


@pytest.mark.slow
def test_generation_failure_is_an_upstream_error(
    provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(provider._models[BUILTIN].model, "generate", broken)
    with pytest.raises(UpstreamError, match="local model failed: RuntimeError: out of cheese"):
        complete(provider)
    with pytest.raises(UpstreamError, match="out of cheese"):
        stream(provider)


@pytest.mark.slow
def test_loading_the_embedded_model_writes_no_progress_bar(
    capfd: pytest.CaptureFixture[str],
) -> None:
    fresh = make(preload=False)
    try:
        asyncio.run(fresh._model(BUILTIN))
    finally:
        asyncio.run(fresh.close())
    err = capfd.readouterr().err
    assert "GGUF" not in err and "Loading weights" not in err and "it/s" not in err, err
