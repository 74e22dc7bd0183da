"""Model-graded evaluation: an LLM judge with a rubric, and a pairwise judge.

Both ask through a `Complete` (the runner's goes through the gateway, so judge calls are
trajectories too) and read a JSON verdict, tolerating prose or code fences around it. A verdict
that cannot be read raises `Skip`: the sample is left out of the judge's statistics, and the
runner keeps the reason.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any

import orjson

from veteran.evals.errors import GraderError, Skip
from veteran.evals.types import Complete, Output, Sample, Score

JUDGE_SYSTEM = (
    "You are a strict, fair evaluator. Grade the response against the rubric. Answer with one "
    "JSON object and nothing else: {fields}"
)
PAIRWISE_SYSTEM = (
    "You are a strict, fair evaluator. Two responses answer the same conversation. Decide which "
    "one better satisfies the rubric; ignore their order and length. Answer with one JSON "
    'object and nothing else: {"reasoning": "...", "winner": "1" | "2" | "tie"}'
)


def render_conversation(messages: list[dict[str, Any]]) -> str:
    lines = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if m.get("tool_calls"):
            content = f"{content or ''} [tool calls: {orjson.dumps(m['tool_calls']).decode()}]"
        lines.append(f"[{m.get('role', '?')}] {content if content is not None else ''}")
    return "\n".join(lines)


def render_output(output: Output) -> str:
    if output.tool_calls:
        calls = orjson.dumps(output.tool_calls).decode()
        return f"{output.text}\n[tool calls: {calls}]" if output.text else f"[tool calls: {calls}]"
    return output.text


def _reference_text(reference: Any) -> str:
    return reference if isinstance(reference, str) else orjson.dumps(reference).decode()


def _excerpt(text: str) -> str:
    """The start of a judge's answer for a skip reason, on one line: its line breaks become
    spaces, not `\\n` escapes glued to the next word, so storage redaction still finds the
    values the judge quoted (the runner hides them before the reason is stored)."""
    return repr(" ".join(text[:200].split()))


def parse_verdict(text: str) -> dict[str, Any]:
    """The last JSON object in `text` (fences and prose around it allowed); `{}` when none."""
    decoder_starts = [m.start() for m in re.finditer(r"\{", text)]
    for start in reversed(decoder_starts):
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    try:
                        found = orjson.loads(text[start:end + 1])
                    except orjson.JSONDecodeError:
                        break
                    if isinstance(found, dict):
                        return found
                    break
    verdict: dict[str, Any] = {}
    for key in ("score", "label", "winner"):  # "score: 0.7" or "Label = good" in prose
        m = re.search(rf"\b{key}\b\W{{0,3}}\s*([\w.\-]+)", text, re.IGNORECASE)
        if m:
            verdict[key] = m.group(1)
    return verdict


def _content(completion: dict[str, Any]) -> str:
    try:
        content = completion["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise Skip("judge answered without a message") from None
    return content if isinstance(content, str) else ""


class _ModelGrader:
    def __init__(self, name: str, spec: dict[str, Any], complete: Complete | None) -> None:
        if complete is None:
            raise GraderError(f"grader {name!r}: a model grader needs a model to call (complete)")
        model = spec.get("model")
        if not isinstance(model, str) or not model:
            raise GraderError(f"grader {name!r}: `model` is required (a gateway model name)")
        rubric = spec.get("rubric")
        if not isinstance(rubric, str) or not rubric.strip():
            raise GraderError(f"grader {name!r}: `rubric` is required")
        params = spec.get("params", {})
        if not isinstance(params, dict):
            raise GraderError(f"grader {name!r}: `params` must be a table")
        self.name = name
        self.model = model
        self.rubric = rubric
        self.params: dict[str, Any] = {"temperature": 0, **params}
        self._complete = complete

    async def _ask(self, system: str, user: str) -> tuple[dict[str, Any], str]:
        body = {"model": self.model, **self.params,
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": user}]}
        text = _content(await self._complete(body))
        return parse_verdict(text), text


class LLMJudge(_ModelGrader):
    """Scores an output against a rubric: a score in `range` (normalised to [0, 1]) or, with
    `labels`, one label (value 1 when it is in `passing_labels`)."""

    def __init__(self, name: str, spec: dict[str, Any], complete: Complete | None) -> None:
        super().__init__(name, spec, complete)
        labels = spec.get("labels")
        if labels is not None and (
            not isinstance(labels, list) or len(labels) < 2
            or not all(isinstance(x, str) for x in labels)
        ):
            raise GraderError(f"grader {name!r}: `labels` must list at least two strings")
        self.labels: list[str] | None = labels
        passing = spec.get("passing_labels", labels[:1] if labels else None)
        if labels is not None and (not isinstance(passing, list) or not set(passing) <= set(
                labels)):
            raise GraderError(f"grader {name!r}: `passing_labels` must be a subset of `labels`")
        self.passing: list[str] = list(passing or [])
        low, high = spec.get("range", [0, 1])
        if not (isinstance(low, int | float) and isinstance(high, int | float) and low < high):
            raise GraderError(f"grader {name!r}: `range` must be [low, high] with low < high")
        self.range = (float(low), float(high))
        threshold = spec.get("pass_threshold")
        if threshold is not None and not isinstance(threshold, int | float):
            raise GraderError(f"grader {name!r}: `pass_threshold` must be a number")
        self.pass_threshold: float | None = threshold

    def instructions(self) -> str:
        if self.labels is not None:
            fields = f'{{"reasoning": "...", "label": one of {orjson.dumps(self.labels).decode()}}}'
        else:
            low, high = self.range
            fields = f'{{"reasoning": "...", "score": a number from {low:g} to {high:g}}}'
        return JUDGE_SYSTEM.format(fields=fields)

    def prompt(self, sample: Sample, output: Output) -> str:
        parts = [f"# Rubric\n{self.rubric}",
                 f"# Conversation\n{render_conversation(sample.messages)}"]
        if sample.reference is not None:
            parts.append(f"# Reference answer\n{_reference_text(sample.reference)}")
        parts.append(f"# Response to grade\n{render_output(output)}")
        return "\n\n".join(parts)

    async def grade(self, sample: Sample, output: Output) -> Score:
        if output.error is not None:
            return Score(0.0, passed=False, explanation=f"the call failed: {output.error}")
        verdict, text = await self._ask(self.instructions(), self.prompt(sample, output))
        reasoning = verdict.get("reasoning")
        explanation = reasoning if isinstance(reasoning, str) else text[:500]
        if self.labels is not None:
            label = str(verdict.get("label", "")).strip().strip('"').lower()
            match = next((x for x in self.labels if x.lower() == label), None)
            if match is None:
                raise Skip(f"judge gave no label among {self.labels}: {_excerpt(text)}")
            passed = match in self.passing
            return Score(1.0 if passed else 0.0, passed=passed, explanation=explanation,
                         label=match)
        try:
            raw = float(verdict["score"])
        except (KeyError, TypeError, ValueError):
            raise Skip(f"judge gave no score: {_excerpt(text)}") from None
        if not math.isfinite(raw):
            raise Skip(f"judge gave no finite score: {_excerpt(text)}")
        low, high = self.range
        value = min(1.0, max(0.0, (raw - low) / (high - low)))
        above = None if self.pass_threshold is None else raw >= self.pass_threshold
        return Score(value, passed=above, explanation=explanation)


class PairwiseJudge(_ModelGrader):
    """Compares two outputs; the order shown to the judge is drawn per sample from `seed`, and
    the verdict mapped back. As a `Grader`, compares the output (A) with the reference (B)."""

    def __init__(self, name: str, spec: dict[str, Any], complete: Complete | None) -> None:
        super().__init__(name, spec, complete)
        seed = spec.get("seed", 0)
        if not isinstance(seed, int):
            raise GraderError(f"grader {name!r}: `seed` must be an integer")
        self.seed = seed
        self.both_orders = bool(spec.get("both_orders", False))

    def a_first(self, sample: Sample) -> bool:
        """Whether A is shown first for this sample (a fixed coin per seed and sample id)."""
        digest = hashlib.sha256(f"{self.seed}\x00{self.name}\x00{sample.id}".encode()).digest()
        return random.Random(digest).random() < 0.5

    async def _judge(self, sample: Sample, first: str, second: str) -> float:
        """1 when the first shown wins, 0 when the second does, 0.5 for a tie."""
        user = "\n\n".join([
            f"# Rubric\n{self.rubric}",
            f"# Conversation\n{render_conversation(sample.messages)}",
            f"# Response 1\n{first}", f"# Response 2\n{second}",
        ])
        verdict, text = await self._ask(PAIRWISE_SYSTEM, user)
        winner = str(verdict.get("winner", "")).strip().strip('"').lower()
        if winner in {"1", "response 1"}:
            return 1.0
        if winner in {"2", "response 2"}:
            return 0.0
        if winner in {"tie", "0", "equal", "none"}:
            return 0.5
        raise Skip(f"judge gave no winner: {_excerpt(text)}")

    async def compare(self, sample: Sample, output_a: Output, output_b: Output) -> float:
        """The probability that A is better, in [0, 1]; 0.5 for a tie."""
        a, b = render_output(output_a), render_output(output_b)
        if self.a_first(sample):
            result = await self._judge(sample, a, b)
        else:
            result = 1.0 - await self._judge(sample, b, a)
        if self.both_orders:  # the other order too, to cancel the judge's position bias
            other = (1.0 - await self._judge(sample, b, a) if self.a_first(sample)
                     else await self._judge(sample, a, b))
            result = (result + other) / 2
        return result

    async def grade(self, sample: Sample, output: Output) -> Score:
        if output.error is not None:
            return Score(0.0, passed=False, explanation=f"the call failed: {output.error}")
        if sample.reference is None:
            raise Skip("no reference to compare with")
        reference = Output(text=_reference_text(sample.reference)
                           if not isinstance(sample.reference, list) else
                           str(sample.reference[0]))
        value = await self.compare(sample, output, reference)
        return Score(value, passed=value > 0.5 if value != 0.5 else None,
                     explanation="win rate against the reference")
