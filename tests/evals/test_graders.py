"""Each grader on hand-made cases that pass and fail; judges with a scripted model."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pytest

from tests.evals.scripted import Scripted
from veteran.evals.errors import GraderError, Skip
from veteran.evals.graders import grader_from_config, to_openai_grader
from veteran.evals.judges import PairwiseJudge
from veteran.evals.types import Output, Sample, Score


def grade(spec: dict[str, Any], output: Output | str, reference: Any = None,
          feedback: dict[str, Any] | None = None, **kwargs: Any) -> Score:
    grader = grader_from_config("g", spec, **kwargs)
    out = Output(text=output) if isinstance(output, str) else output
    sample = Sample(id="s1", messages=[{"role": "user", "content": "q"}], reference=reference,
                    feedback=feedback or {})
    return asyncio.run(grader.grade(sample, out))


@pytest.mark.parametrize(("spec", "output", "reference", "passed"), [
    ({"type": "exact"}, " Paris\n", "Paris", True),
    ({"type": "exact"}, "paris", "Paris", False),
    ({"type": "exact"}, "Lyon", ["Paris", "Lyon"], True),
    ({"type": "normalized"}, "The  Eiffel tower!", "eiffel Tower", True),
    ({"type": "normalized"}, "Eiffel towers", "eiffel tower", False),
    ({"type": "contains"}, "It is Paris.", "Paris", True),
    ({"type": "contains"}, "It is paris.", "Paris", False),
    ({"type": "contains", "ignore_case": True}, "It is paris.", "Paris", True),
    ({"type": "contains", "value": "yes"}, "yes indeed", None, True),
    ({"type": "regex", "pattern": r"\d{3}-\d{4}"}, "call 555-1234", None, True),
    ({"type": "regex", "pattern": r"\d{3}", "full": True}, "1234", None, False),
    ({"type": "regex", "pattern": "^yes$", "flags": "im"}, "well\nYES", None, True),
    ({"type": "numeric"}, "The answer is 1,234.", "1234", True),
    ({"type": "numeric", "abs_tol": 0.01}, "about 3.14159", 3.14, True),
    ({"type": "numeric", "rel_tol": 0.01}, "-2e3 units", -1990, True),
    ({"type": "numeric"}, "no number", 4, False),
    ({"type": "numeric"}, "5", 4, False),
])
def test_string_and_number_graders(spec: dict[str, Any], output: str, reference: Any,
                                   passed: bool) -> None:
    score = grade(spec, output, reference)
    assert score.passed is passed and score.value == (1.0 if passed else 0.0)


def test_failed_call_scores_zero_and_missing_reference_skips() -> None:
    assert grade({"type": "exact"}, Output(text="", error="boom"), "x").passed is False
    with pytest.raises(Skip):
        grade({"type": "exact"}, "x", None)


def test_json_schema() -> None:
    spec = {"type": "json_schema", "schema": {
        "type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}
    assert grade(spec, '```json\n{"n": 3}\n```').passed is True
    bad = grade(spec, '{"n": "three"}')
    assert bad.passed is False and "integer" in (bad.explanation or "")
    assert grade(spec, "not json").passed is False
    with pytest.raises(GraderError, match="bad schema"):
        grader_from_config("g", {"type": "json_schema", "schema": {"type": 12}})


def test_json_field() -> None:
    spec = {"type": "json_field", "path": "a.b[1]"}
    assert grade(spec, '{"a": {"b": [0, 7]}}', {"a": {"b": [9, 7]}}).passed is True
    assert grade(spec, '{"a": {"b": [0, 7]}}', '{"a": {"b": [9, 8]}}').passed is False
    assert grade(spec, '{"a": {"b": [0, 7]}}', 7).passed is True
    assert grade({**spec, "value": "x"}, '{"a": {"b": [0, "x"]}}').passed is True
    assert grade(spec, '{"a": {}}', 7).passed is False


def call(name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return {"id": "c", "type": "function", "function": {"name": name, "arguments": args}}


def test_tool_call() -> None:
    spec = {"type": "tool_call"}
    reference = [call("weather", {"city": "Paris", "days": 2}), call("time", {})]
    same = Output(text="", tool_calls=[call("time", "{}"),
                                       call("weather", '{"days": 2, "city": "Paris"}')])
    assert grade(spec, same, reference).passed is True
    assert grade({**spec, "ordered": True}, same, reference).passed is False
    wrong = Output(text="", tool_calls=[call("weather", {"city": "Lyon", "days": 2}),
                                        call("time", {})])
    assert grade(spec, wrong, reference).passed is False
    assert grade({**spec, "arguments": False}, wrong, reference).passed is True
    assert grade(spec, Output(text="sunny"), reference).passed is False
    single = {"name": "weather", "arguments": {"city": "Paris"}}
    assert grade(spec, Output(text="", tool_calls=[call("weather", {"city": "Paris"})]),
                 single).passed is True


class BagOfLetters:
    """A tiny embedder: letter counts, normalised."""

    name = "letters"
    dim = 26

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for i, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        normalised: np.ndarray[Any, np.dtype[np.float32]] = (out / norms).astype(np.float32)
        return normalised

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def test_embedding_similarity() -> None:
    spec = {"type": "embedding_similarity", "threshold": 0.9}
    same = grade(spec, "listen", "silent", embedder=BagOfLetters())
    assert same.passed is True and same.value == pytest.approx(1.0, abs=1e-6)
    assert grade(spec, "xyz", "abc", embedder=BagOfLetters()).passed is False
    with pytest.raises(GraderError, match="embedder"):
        grader_from_config("g", spec)


def test_python_grader() -> None:
    spec = {"type": "python", "function": "tests.evals.helpers:shorter_than_reference"}
    assert grade(spec, "ab", "abc").passed is True
    assert grade(spec, "abcd", "abc").passed is False
    assert grade({"type": "python", "function": "tests.evals.helpers:half"}, "x").value == 0.5
    with pytest.raises(GraderError, match="cannot import"):
        grader_from_config("g", {"type": "python", "function": "tests.evals.helpers:nope"})
    with pytest.raises(GraderError, match="module:callable"):
        grader_from_config("g", {"type": "python", "function": "print('x')"})


def test_feedback_grader() -> None:
    spec = {"type": "feedback", "metric": "resolved"}
    assert grade(spec, "x", feedback={"resolved": True}).passed is True
    assert grade(spec, "x", feedback={"resolved": 0.25}).value == 0.25
    label = grade({**spec, "passing": ["good"]}, "x", feedback={"resolved": "good"})
    assert label.passed is True and label.label == "good"
    with pytest.raises(Skip, match="resolved"):
        grade(spec, "x", feedback={"other": 1})


def test_unknown_type() -> None:
    with pytest.raises(GraderError, match="unknown type 'fuzzy'"):
        grader_from_config("g", {"type": "fuzzy"})


def test_llm_judge_score_mode() -> None:
    model = Scripted('Thinking... ```json\n{"reasoning": "ok", "score": 8}\n```', "score: 2",
                     "I cannot decide")
    spec = {"type": "llm_judge", "model": "judge", "rubric": "Is it polite?", "range": [0, 10],
            "pass_threshold": 7}
    first = grade(spec, "Thank you!", "Thanks", complete=model)
    assert first.value == pytest.approx(0.8) and first.passed is True
    assert first.explanation == "ok"
    body = model.bodies[0]
    assert body["model"] == "judge" and body["temperature"] == 0
    assert "Is it polite?" in body["messages"][1]["content"]
    assert "Thank you!" in body["messages"][1]["content"]
    assert grade(spec, "meh", complete=model).value == pytest.approx(0.2)
    with pytest.raises(Skip, match="no score"):
        grade(spec, "x", complete=model)


def test_llm_judge_label_mode() -> None:
    model = Scripted('{"label": "Correct"}', '{"label": "wrong"}', '{"label": "maybe"}')
    spec = {"type": "llm_judge", "model": "judge", "rubric": "r",
            "labels": ["correct", "wrong"], "passing_labels": ["correct"]}
    right = grade(spec, "x", complete=model)
    assert right.passed is True and right.label == "correct"
    assert grade(spec, "x", complete=model).passed is False
    with pytest.raises(Skip, match="no label"):
        grade(spec, "x", complete=model)
    with pytest.raises(GraderError, match="subset"):
        grader_from_config("g", {**spec, "passing_labels": ["x"]}, complete=model)
    with pytest.raises(GraderError, match="complete"):
        grader_from_config("g", spec)


def test_pairwise_randomises_order_and_maps_the_verdict_back() -> None:
    spec = {"type": "pairwise", "model": "judge", "rubric": "Which is better?", "seed": 3}
    samples = [Sample(id=f"s{i}", messages=[{"role": "user", "content": "q"}])
               for i in range(40)]
    a, b = Output(text="ANSWER-A"), Output(text="ANSWER-B")

    class PrefersA(Scripted):
        async def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
            text = body["messages"][1]["content"]
            first = "1" if text.index("ANSWER-A") < text.index("ANSWER-B") else "2"
            self.answers.append(f'{{"winner": "{first}"}}')
            return await super().__call__(body)

    model = PrefersA()
    judge = grader_from_config("g", spec, complete=model)
    assert isinstance(judge, PairwiseJudge)
    orders = [judge.a_first(s) for s in samples]
    assert 10 < sum(orders) < 30  # both orders occur
    assert orders == [judge.a_first(s) for s in samples]  # and the same every time
    assert [asyncio.run(judge.compare(s, a, b)) for s in samples] == [1.0] * 40
    assert [asyncio.run(judge.compare(s, b, a)) for s in samples] == [0.0] * 40

    first_always = Scripted(*['{"winner": "1"}'] * 40)  # a judge with pure position bias
    biased = grader_from_config("g", spec, complete=first_always)
    assert isinstance(biased, PairwiseJudge)
    results = [asyncio.run(biased.compare(s, a, b)) for s in samples]
    assert results == [1.0 if o else 0.0 for o in orders]

    tie = grader_from_config("g", {**spec, "both_orders": True},
                             complete=Scripted('{"winner": "tie"}', '{"winner": "tie"}'))
    assert isinstance(tie, PairwiseJudge)
    assert asyncio.run(tie.compare(samples[0], a, b)) == 0.5


def test_pairwise_as_a_grader_compares_with_the_reference() -> None:
    spec = {"type": "pairwise", "model": "judge", "rubric": "r"}
    score = grade(spec, "mine", "reference", complete=Scripted('{"winner": "tie"}'))
    assert score.value == 0.5 and score.passed is None
    with pytest.raises(Skip):
        grade(spec, "mine", None, complete=Scripted())


def test_openai_export_shapes() -> None:
    assert to_openai_grader("ex", {"type": "exact"}) == {
        "name": "ex", "type": "string_check", "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}", "operation": "eq"}
    assert to_openai_grader("c", {"type": "contains", "ignore_case": True})["operation"] == "ilike"
    assert to_openai_grader("c", {"type": "contains", "value": "ok"})["reference"] == "ok"
    sim = to_openai_grader("e", {"type": "embedding_similarity", "threshold": 0.7})
    assert sim["type"] == "text_similarity" and sim["evaluation_metric"] == "cosine"
    assert sim["pass_threshold"] == 0.7
    assert to_openai_grader("n", {"type": "normalized"})["evaluation_metric"] == "fuzzy_match"

    score = to_openai_grader("j", {"type": "llm_judge", "model": "gpt-4o", "rubric": "Polite?",
                                   "range": [1, 5], "pass_threshold": 4})
    assert score["type"] == "score_model" and score["model"] == "gpt-4o"
    assert score["range"] == [1.0, 5.0] and score["pass_threshold"] == 4
    assert score["sampling_params"] == {"temperature": 0}
    assert [m["role"] for m in score["input"]] == ["system", "user"]
    assert "Polite?" in score["input"][1]["content"]
    assert "{{sample.output_text}}" in score["input"][1]["content"]

    label = to_openai_grader("l", {"type": "llm_judge", "model": "m", "rubric": "r",
                                   "labels": ["good", "bad"]})
    assert label["type"] == "label_model" and label["passing_labels"] == ["good"]
    assert label["labels"] == ["good", "bad"]

    python = to_openai_grader(
        "p", {"type": "python", "function": "tests.evals.helpers:shorter_than_reference"})
    assert python["type"] == "python"
    namespace: dict[str, Any] = {}
    exec(python["source"], namespace)  # the exported source runs as OpenAI would run it
    assert namespace["grade"]({"output_text": "ab"}, {"reference": "abc"}) == 1.0
    assert namespace["grade"]({"output_text": "abcd"}, {"reference": "abc"}) == 0.0

    for spec in ({"type": "regex", "pattern": "x"}, {"type": "feedback", "metric": "m"},
                 {"type": "tool_call"}, {"type": "pairwise"}):
        with pytest.raises(GraderError, match="no OpenAI graders equivalent"):
            to_openai_grader("x", spec)


def test_nan_free_scores() -> None:
    score = grade({"type": "numeric"}, "4.0", 4)
    assert not math.isnan(score.value) and score.passed is True
