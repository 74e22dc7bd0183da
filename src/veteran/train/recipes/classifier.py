"""`classifier`: for functions that answer with a label or a few labelled fields, the shipped
MiniLM embedding of the request plus a trained linear head: milliseconds per call on a CPU,
served by the `local` provider.

The input is the last user message (`models.format.input_text`: where a classification
function's caller puts the item to classify; the system prompt is the same in every call).
The outputs decide the layout:

- every answer a JSON object with the same keys and scalar values (`{"queue": "billing",
  "priority": "high"}`): one head per key, answered as a JSON object with the keys in their
  trained order;
- otherwise the whole answer (stripped) is the label: one head.

A head is multinomial logistic regression over the normalised embedding, fitted full-batch with
L-BFGS from zeros (a convex problem: the same data gives the same weights; `job.seed` seeds
torch all the same). Answers that are not a small label set are refused: more than `max_labels`
distinct values, or most values seen once (free text; use `fewshot` or `sft-lora`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, ClassVar

import numpy as np

from veteran.datasets.types import Example
from veteran.models import ClassifierModel, Head, Matrix, input_text
from veteran.train.recipes._embedding import EmbeddingRecipe
from veteran.train.recipes._hf import Param, RecipeError, resolve
from veteran.train.types import ModelKind, Needs, Progress, TrainJob, TrainResult

PARAMS: dict[str, Param] = {
    "l2": Param(1e-3, "L2 penalty on the head's weights", low=0.0, high=10.0),
    "max_iter": Param(500, "L-BFGS iterations per head", low=1),
    "max_labels": Param(64, "most distinct values an answer (or a field) may take", low=2,
                        high=4096),
    "class_weight": Param("uniform", "\"balanced\": weigh classes by inverse frequency",
                          choices=("uniform", "balanced")),
    "embedder": Param("minilm-int8", "the shipped MiniLM's int8 encoder (fastest) or its float "
                      "one (\"minilm\": the vectors memory and fewshot use)",
                      choices=("minilm-int8", "minilm")),
}
SCALARS = (str, int, float, bool, type(None))


class ClassifierRecipe(EmbeddingRecipe):
    name: ClassVar[str] = "classifier"
    kind: ClassVar[ModelKind] = "classifier"
    needs: ClassVar[Needs] = "sft"

    def check(self, job: TrainJob) -> None:
        self._labelled(job)

    def _labelled(self, job: TrainJob) -> tuple[dict[str, Any], list[str], list[str]]:
        """(parameters, training texts, their answers), once both are fit to learn from."""
        p = resolve(self.name, job.params, PARAMS)
        texts, answers = _inputs(job.train, "train")
        fields, _ = _layout(answers)
        columns = _columns(answers, fields)
        for field, column in zip(fields, columns, strict=True):
            _check_labels(column, field, p["max_labels"])
        if all(len(set(column)) < 2 for column in columns):
            raise RecipeError("classifier: every training example has the same answer; "
                              "there is nothing to learn")
        _inputs(job.eval, "eval")
        return p, texts, answers

    def train(self, job: TrainJob) -> TrainResult:
        began = time.perf_counter()
        p, texts, answers = self._labelled(job)
        fields, separators = _layout(answers)
        columns = _columns(answers, fields)
        embedder = self.embedder(int8=p["embedder"] == "minilm-int8")
        total = len(fields) + 1
        vectors = embedder.embed(texts)
        job.progress(Progress(1, total))
        heads = []
        for step, (field, column) in enumerate(zip(fields, columns, strict=True), start=2):
            labels = list(dict.fromkeys(column))  # first-seen order: deterministic
            index = {label: i for i, label in enumerate(labels)}
            targets = np.asarray([index[v] for v in column], dtype=np.int64)
            weight, bias, loss = _fit(vectors, targets, len(labels), p, job.seed)
            heads.append(Head(field, [_value(v, field) for v in labels], weight, bias))
            job.progress(Progress(step, total, {"loss": loss}))
        model = ClassifierModel(embedder.name, int(embedder.dim), heads, separators)
        model.save(job.output_dir)
        metrics = _accuracy(model, vectors, answers, "train")
        if job.eval:
            eval_texts, eval_answers = _inputs(job.eval, "eval")
            metrics |= _accuracy(model, embedder.embed(eval_texts), eval_answers, "eval")
        metrics |= {"examples": float(len(texts)),
                    "labels": float(sum(len(h.labels) for h in heads))}
        return TrainResult(kind="classifier", base_model=embedder.name, metrics=metrics,
                           params=p, seconds=time.perf_counter() - began)


def _inputs(examples: list[Example], split: str) -> tuple[list[str], list[str]]:
    texts, answers = [], []
    for ex in examples:
        text, content = input_text(ex.prompt), ex.completion.get("content")
        if ex.completion.get("tool_calls") or not isinstance(content, str):
            raise RecipeError(f"classifier: {split} example {ex.id} answers with tool calls or "
                              "no text; a classifier learns text answers only")
        if not text:
            raise RecipeError(f"classifier: {split} example {ex.id} has no user message to "
                              "classify")
        texts.append(text)
        answers.append(content.strip())
    if split == "train" and len(texts) < 2:
        raise RecipeError(f"classifier: {len(texts)} training example(s); at least 2 needed")
    return texts, answers


def _layout(answers: list[str]) -> tuple[list[str | None], tuple[str, str] | None]:
    """One head per key when every answer is a JSON object with the same keys and scalar
    values (with the separators the first answer was written with); else one whole-answer head."""
    keys: list[str] | None = None
    for answer in answers:
        try:
            value = json.loads(answer)
        except ValueError:
            return [None], None
        if (not isinstance(value, dict) or not value
                or not all(isinstance(v, SCALARS) for v in value.values())):
            return [None], None
        if keys is None:
            keys = list(value)
        elif set(value) != set(keys):
            return [None], None
    assert keys is not None
    first = json.loads(answers[0])
    compact = json.dumps(first, ensure_ascii=False, separators=(",", ":"))
    return list(keys), ((",", ":") if answers[0] == compact else (", ", ": "))


def _columns(answers: list[str], fields: list[str | None]) -> list[list[str]]:
    """The label of each answer per head; a field's value as JSON text (so 1, "1" and true
    stay apart)."""
    if fields == [None]:
        return [answers]
    parsed = [json.loads(a) for a in answers]
    return [[json.dumps(p[f], ensure_ascii=False) for p in parsed] for f in fields]


def _value(label: str, field: str | None) -> Any:
    return label if field is None else json.loads(label)


def _check_labels(column: list[str], field: str | None, max_labels: int) -> None:
    counts = Counter(column)
    what = "answers" if field is None else f"values of field {field!r}"
    advice = ("a classifier learns a small set of labels; for free text use the fewshot or "
              "sft-lora recipe")
    if len(counts) > max_labels:
        raise RecipeError(f"classifier: {len(counts)} distinct {what} in {len(column)} "
                          f"examples (at most {max_labels}, param max_labels); {advice}")
    once = sum(1 for n in counts.values() if n == 1)
    if len(counts) > 1 and once * 2 > len(counts):
        raise RecipeError(f"classifier: {once} of {len(counts)} distinct {what} appear only "
                          f"once; {advice}")


def _fit(vectors: Matrix, targets: np.ndarray, classes: int, p: dict[str, Any], seed: int
         ) -> tuple[Matrix, Matrix, float]:
    """Multinomial logistic regression, full-batch L-BFGS from zeros; (weight, bias, loss)."""
    dim = vectors.shape[1]
    if classes == 1:  # a field that never changes: always that value
        return np.zeros((1, dim), np.float32), np.zeros(1, np.float32), 0.0
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    y = torch.from_numpy(targets)
    class_weight = None
    if p["class_weight"] == "balanced":
        counts = torch.bincount(y, minlength=classes).to(torch.float32)
        class_weight = counts.sum() / (classes * counts)
    weight = torch.zeros(classes, dim, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=p["max_iter"],
                                  history_size=20, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9)

    def objective() -> torch.Tensor:
        logits = x @ weight.T + bias
        loss: torch.Tensor = torch.nn.functional.cross_entropy(logits, y, weight=class_weight)
        return loss + 0.5 * float(p["l2"]) * (weight * weight).sum()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        final = float(objective())
    return weight.detach().numpy().copy(), bias.detach().numpy().copy(), final


def _accuracy(model: ClassifierModel, vectors: Matrix, answers: list[str], split: str
              ) -> dict[str, float]:
    """Exact answers (every field right), and per field for JSON answers."""
    predicted = model.answers(vectors)
    if not model.answers_json:
        right = sum(p == a for p, a in zip(predicted, answers, strict=True))
        return {f"{split}_accuracy": right / max(1, len(answers))}
    out: dict[str, float] = {}
    exact = np.ones(len(answers), dtype=bool)
    for head in model.heads:
        field = str(head.field)
        hits = np.asarray([_field(p, field) == _field(a, field)
                           for p, a in zip(predicted, answers, strict=True)], dtype=bool)
        exact &= hits
        out[f"{split}_accuracy.{field}"] = float(hits.mean()) if len(hits) else 0.0
    out[f"{split}_accuracy"] = float(exact.mean()) if len(exact) else 0.0
    return out


def _field(answer: str, field: str) -> str | None:
    """A field of a JSON answer as JSON text; None when the answer is not such an object."""
    try:
        value = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(value, dict) or field not in value:
        return None
    return json.dumps(value[field], ensure_ascii=False)
