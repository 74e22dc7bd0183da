"""`fewshot`: no training. Keeps the function's curated examples (the last user message and the
answer given to it) with the embeddings of the user messages; a variant with `fewshot = { model
= "ID" }` then puts the `k` most similar ones before each request (`gateway/fewshot.py`), in
front of any provider.

Exact duplicates (same message, same answer) are kept once; past `max_examples` the latest are
kept (trajectory ids are UUIDv7, so their order is the order the calls were made in). Examples
answered with tool calls, or without a user message, are skipped: a few-shot turn is text.
"""

from __future__ import annotations

import time
from typing import ClassVar

from veteran.datasets.types import Example
from veteran.models import FewshotExamples, input_text
from veteran.train.recipes._embedding import EmbeddingRecipe
from veteran.train.recipes._hf import Param, RecipeError, resolve
from veteran.train.types import ModelKind, Needs, Progress, TrainJob, TrainResult

PARAMS: dict[str, Param] = {
    "max_examples": Param(2000, "examples kept (the latest)", low=1, high=1_000_000),
    "k": Param(4, "examples per request when the variant does not say", low=1, high=32),
}


class FewshotRecipe(EmbeddingRecipe):
    name: ClassVar[str] = "fewshot"
    kind: ClassVar[ModelKind] = "fewshot"
    needs: ClassVar[Needs] = "sft"

    def check(self, job: TrainJob) -> None:
        resolve(self.name, job.params, PARAMS)
        _rows(job.train)

    def train(self, job: TrainJob) -> TrainResult:
        began = time.perf_counter()
        p = resolve(self.name, job.params, PARAMS)
        rows = _rows(job.train)
        skipped = len(job.train) - len(rows)
        seen: set[tuple[str, str]] = set()
        kept: list[tuple[str, str, str]] = []
        for row in reversed(rows):  # latest first, so a duplicate keeps its latest id
            if (row[1], row[2]) not in seen:
                seen.add((row[1], row[2]))
                kept.append(row)
        duplicates = len(rows) - len(kept)
        kept = kept[:p["max_examples"]][::-1]
        embedder = self.embedder()
        vectors = embedder.embed([user for _, user, _ in kept])
        FewshotExamples([r[0] for r in kept], [r[1] for r in kept], [r[2] for r in kept],
                        vectors, embedder.name, p["k"]).save(job.output_dir)
        metrics = {"examples": float(len(kept)), "duplicates": float(duplicates),
                   "skipped": float(skipped)}
        job.progress(Progress(1, 1, metrics))
        return TrainResult(kind="fewshot", base_model=None, metrics=metrics, params=p,
                           seconds=time.perf_counter() - began)


def _rows(examples: list[Example]) -> list[tuple[str, str, str]]:
    """(id, user message, answer) of the examples a few-shot turn can show, oldest first."""
    rows = []
    for ex in sorted(examples, key=lambda e: e.id):
        user, content = input_text(ex.prompt), ex.completion.get("content")
        if ex.completion.get("tool_calls") or not isinstance(content, str) or not user \
                or not content.strip():
            continue
        rows.append((ex.id, user, content.strip()))
    if not rows:
        raise RecipeError(f"fewshot: none of the {len(examples)} examples has a user "
                          "message answered with text")
    return rows
