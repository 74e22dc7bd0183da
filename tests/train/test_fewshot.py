"""The `fewshot` recipe: keeps the latest distinct examples with their embeddings; no training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from veteran.datasets.types import Example
from veteran.models import FewshotExamples
from veteran.testing.embedder import HashEmbedder
from veteran.train.recipes._hf import RecipeError
from veteran.train.recipes.fewshot import FewshotRecipe
from veteran.train.types import TrainJob


def example(n: int, user: str | None, answer: str | None, **completion: Any) -> Example:
    prompt: list[dict[str, Any]] = [{"role": "system", "content": "Answer briefly."}]
    if user is not None:
        prompt += [{"role": "user", "content": "earlier turn"},
                   {"role": "assistant", "content": "ok"},
                   {"role": "user", "content": user}]
    return Example(id=f"0190{n:08d}", episode_id=f"e{n}", prompt=prompt,
                   completion={"role": "assistant", "content": answer, **completion})


def job(tmp_path: Path, train: list[Example], **params: Any) -> TrainJob:
    return TrainJob("support", "fewshot", train, [], tmp_path / "out", tmp_path / "ck",
                    params=params)


def test_writes_examples_and_normalised_embeddings(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    train = [example(3, "How do I reset my password?", "Use the reset link."),
             example(1, "Where is my parcel?", " Check the tracking page. "),
             example(2, "How do I reset my password?", "Use the reset link."),  # duplicate
             example(4, "Refund please", None, tool_calls=[{"id": "c", "type": "function"}]),
             example(5, None, "no user message")]
    result = FewshotRecipe(embedder).train(job(tmp_path, train))
    assert result.kind == "fewshot" and result.base_model is None
    assert result.metrics == {"examples": 2.0, "duplicates": 1.0, "skipped": 2.0}
    assert result.params == {"max_examples": 2000, "k": 4}
    out = tmp_path / "out"
    rows = [orjson.loads(line) for line in (out / "examples.jsonl").read_bytes().splitlines()]
    # oldest first; a duplicate keeps its latest trajectory; answers stripped; only the last
    # user message is kept
    assert rows == [{"id": "019000000001", "user": "Where is my parcel?",
                     "assistant": "Check the tracking page."},
                    {"id": "019000000003", "user": "How do I reset my password?",
                     "assistant": "Use the reset link."}]
    vectors = np.load(out / "embeddings.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (2, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    spec = orjson.loads((out / "fewshot.json").read_bytes())
    assert spec == {"version": 1, "embedder": {"name": embedder.name, "dim": embedder.dim},
                    "input": "last-user-message", "count": 2, "k": 4}


def test_keeps_the_latest_up_to_max_examples(tmp_path: Path) -> None:
    train = [example(n, f"question {n}", f"answer {n}") for n in range(10)]
    result = FewshotRecipe(HashEmbedder()).train(job(tmp_path, train, max_examples="3", k=2))
    examples = FewshotExamples.load(tmp_path / "out")
    assert examples.ids == ["019000000007", "019000000008", "019000000009"]
    assert examples.k == 2
    assert result.metrics["examples"] == 3


def test_nearest_examples_come_best_first(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    train = [example(1, "reset my password please", "a"),
             example(2, "track my parcel delivery", "b"),
             example(3, "password reset link expired", "c")]
    FewshotRecipe(embedder).train(job(tmp_path, train))
    examples = FewshotExamples.load(tmp_path / "out")
    query = embedder.embed(["I need to reset my password"])[0]
    nearest = examples.nearest(query, 2)
    assert [examples.answers[i] for i, _ in nearest] == ["a", "c"]
    assert nearest[0][1] >= nearest[1][1]
    assert len(examples.nearest(query, 10)) == 3


def test_nothing_usable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="none of the 1 examples"):
        FewshotRecipe(HashEmbedder()).train(job(tmp_path, [example(1, None, "x")]))
    with pytest.raises(RecipeError, match="max_examples"):
        FewshotRecipe(HashEmbedder()).train(job(tmp_path, [example(1, "q", "a")],
                                                max_examples=0))
