"""Graders: one class per kind, built from a suite's `[graders.NAME]` table.

`grader_from_config(name, spec)` checks the options against the type's (`GRADER_OPTIONS` in
`veteran.evals.suite`: an unknown option is an error) and picks the class by `spec["type"]`.
Graders compare the output
with `spec["value"]` when given, else with the sample's reference; a list reference means any
of its answers will do. An output whose call failed scores 0 (failed). `to_openai_grader`
writes a definition in OpenAI's graders JSON shape where one exists.

Deterministic graders are here; the model-graded ones (`llm_judge`, `pairwise`) in `judges`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import re
import string
import textwrap
from collections.abc import Callable
from typing import Any

import jsonschema
import numpy as np
import orjson

from veteran.evals.errors import GraderError, Skip
from veteran.evals.judges import LLMJudge, PairwiseJudge, render_output
from veteran.evals.suite import GRADER_OPTIONS, grader_problems
from veteran.evals.types import Complete, Grader, Output, Sample, Score
from veteran.memory.types import Embedder

__all__ = ["GraderError", "Skip", "grader_from_config", "to_openai_grader"]

NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
ARTICLES = re.compile(r"\b(a|an|the)\b")
PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(ARTICLES.sub(" ", text).split())


def first_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    for m in NUMBER.finditer(str(value)):
        if any(ch.isdigit() for ch in m.group()):
            return float(m.group().replace(",", ""))
    return None


def parse_json(text: str) -> Any:
    """JSON from a model's text: bare, or inside a ``` fence. `ValueError` when neither."""
    fenced = re.search(r"```(?:json)?\s*\n?(.*?)```", text, re.DOTALL)
    try:
        return orjson.loads(fenced.group(1) if fenced else text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def json_path(value: Any, path: str) -> Any:
    """`a.b[0]` inside `value`; `KeyError` when it is not there."""
    if not path:
        return value
    for key, index in PATH_PART.findall(path):
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(path)
            value = value[int(index)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise KeyError(path)
    return value


def _fail(output: Output) -> Score:
    return Score(0.0, passed=False, explanation=f"the call failed: {output.error}")


def _verdict(passed: bool, explanation: str | None = None) -> Score:
    return Score(1.0 if passed else 0.0, passed=passed, explanation=explanation)


class _Matcher:
    """Base of pass/fail graders that check the output text against the expected answer(s)."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self.value = spec.get("value")

    def expected(self, sample: Sample) -> list[Any]:
        found = self.value if self.value is not None else sample.reference
        if found is None:
            raise Skip("no reference to compare with")
        return list(found) if isinstance(found, list) else [found]

    def check(self, text: str, expected: Any) -> bool:
        raise NotImplementedError

    async def grade(self, sample: Sample, output: Output) -> Score:
        if output.error is not None:
            return _fail(output)
        return _verdict(any(self.check(output.text, e) for e in self.expected(sample)))


class Exact(_Matcher):
    """The output equals the reference (surrounding whitespace ignored)."""

    def check(self, text: str, expected: Any) -> bool:
        return text.strip() == str(expected).strip()


class Normalized(_Matcher):
    """Equal after SQuAD normalisation (case, punctuation, articles, whitespace)."""

    def check(self, text: str, expected: Any) -> bool:
        return normalize(text) == normalize(str(expected))


class Contains(_Matcher):
    """The reference appears in the output (`ignore_case` to ignore case)."""

    def check(self, text: str, expected: Any) -> bool:
        if self.spec.get("ignore_case", False):
            return str(expected).casefold() in text.casefold()
        return str(expected) in text


class Regex(_Matcher):
    """`pattern` is found in the output (`full = true`: matches all of it); `flags` "ims"."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        super().__init__(name, spec)
        flags = 0
        for letter in spec.get("flags", ""):
            if letter not in "ims":
                raise GraderError(f"grader {name!r}: regex flags are letters of 'ims'")
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[letter]
        pattern = spec.get("pattern")
        if not isinstance(pattern, str):
            raise GraderError(f"grader {name!r}: `pattern` is required")
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as exc:
            raise GraderError(f"grader {name!r}: bad pattern: {exc}") from None
        self.full = bool(spec.get("full", False))

    def expected(self, sample: Sample) -> list[Any]:
        return [self.pattern]

    def check(self, text: str, expected: Any) -> bool:
        found = self.pattern.fullmatch(text) if self.full else self.pattern.search(text)
        return found is not None


class JsonSchema:
    """The output is JSON valid against `schema`."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise GraderError(f"grader {name!r}: `schema` (a JSON schema table) is required")
        try:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise GraderError(f"grader {name!r}: bad schema: {exc.message}") from None
        self.validator = cls(schema)

    async def grade(self, sample: Sample, output: Output) -> Score:
        if output.error is not None:
            return _fail(output)
        try:
            document = parse_json(output.text)
        except ValueError as exc:
            return _verdict(False, str(exc))
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(document))
        return _verdict(error is None, None if error is None else error.message)


class JsonField(_Matcher):
    """The output's JSON has, at `path` (`a.b[0]`), the expected value: `value`, else the same
    path in a JSON reference, else the reference itself."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        super().__init__(name, spec)
        path = spec.get("path")
        if not isinstance(path, str) or not PATH_PART.findall(path):
            raise GraderError(f"grader {name!r}: `path` is required (like `a.b[0]`)")
        self.path = path

    def expected(self, sample: Sample) -> list[Any]:
        if self.value is not None:
            return [self.value]
        out = []
        for reference in super().expected(sample):
            try:
                parsed = parse_json(reference) if isinstance(reference, str) else reference
                out.append(json_path(parsed, self.path))
            except (ValueError, KeyError):
                out.append(reference)
        return out

    async def grade(self, sample: Sample, output: Output) -> Score:
        if output.error is not None:
            return _fail(output)
        try:
            actual = json_path(parse_json(output.text), self.path)
        except ValueError as exc:
            return _verdict(False, str(exc))
        except KeyError:
            return _verdict(False, f"no {self.path} in the output")
        return _verdict(any(actual == e for e in self.expected(sample)), f"{self.path}={actual!r}")


class Numeric(_Matcher):
    """The first number in the output is within `abs_tol` or `rel_tol` of the expected one."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        super().__init__(name, spec)
        self.abs_tol = float(spec.get("abs_tol", 0.0))
        self.rel_tol = float(spec.get("rel_tol", 0.0))
        if self.abs_tol < 0 or self.rel_tol < 0:
            raise GraderError(f"grader {name!r}: tolerances cannot be negative")

    def check(self, text: str, expected: Any) -> bool:
        got, want = first_number(text), first_number(expected)
        if got is None or want is None:
            return False
        return math.isclose(got, want, rel_tol=self.rel_tol, abs_tol=self.abs_tol)


def _calls(value: Any) -> list[tuple[str, Any]]:
    """(name, parsed arguments) of OpenAI tool calls, or of {"name", "arguments"} dicts."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"not a tool call: {item!r}")
        function = item.get("function", item)
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            arguments = orjson.loads(arguments) if arguments.strip() else {}
        out.append((str(function.get("name")), arguments))
    return out


class ToolCall:
    """The output calls the reference's tools: same names, and (`arguments = true`, default)
    equal parsed arguments; order matters only with `ordered = true`."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.value = spec.get("value")
        self.arguments = bool(spec.get("arguments", True))
        self.ordered = bool(spec.get("ordered", False))

    def _key(self, call: tuple[str, Any]) -> str:
        name, arguments = call
        if not self.arguments:
            return name
        return name + orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS).decode()

    async def grade(self, sample: Sample, output: Output) -> Score:
        if output.error is not None:
            return _fail(output)
        reference = self.value if self.value is not None else sample.reference
        if reference is None:
            raise Skip("no reference tool call")
        try:
            want = [self._key(c) for c in _calls(reference)]
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise Skip(f"reference is not a tool call: {exc}") from None
        try:
            got = [self._key(c) for c in _calls(output.tool_calls)]
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _verdict(False, f"bad tool call arguments: {exc}")
        same = got == want if self.ordered else sorted(got) == sorted(want)
        return _verdict(same, None if same else f"called {got}")


class EmbeddingSimilarity(_Matcher):
    """Cosine similarity of output and reference embeddings (the best over a list reference);
    passed at `threshold` (default 0.8)."""

    def __init__(self, name: str, spec: dict[str, Any], embedder: Embedder | None) -> None:
        super().__init__(name, spec)
        if embedder is None:
            raise GraderError(f"grader {name!r}: embedding_similarity needs an embedder")
        self.embedder = embedder
        self.threshold = float(spec.get("threshold", 0.8))

    async def grade(self, sample: Sample, output: Output) -> Score:
        if output.error is not None:
            return _fail(output)
        texts = [render_output(output), *(str(e) for e in self.expected(sample))]
        vectors = await asyncio.to_thread(self.embedder.embed, texts)
        similarity = float(np.max(vectors[1:] @ vectors[0]))
        return Score(similarity, passed=similarity >= self.threshold,
                     explanation=f"cosine {similarity:.3f}")


def import_callable(name: str, target: Any) -> Callable[..., Any]:
    if not isinstance(target, str) or ":" not in target:
        raise GraderError(f"grader {name!r}: `function` must be 'module:callable'")
    module_name, _, attribute = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise GraderError(f"grader {name!r}: cannot import {target}: {exc}") from None
    if not callable(found):
        raise GraderError(f"grader {name!r}: {target} is not callable")
    return found  # type: ignore[no-any-return]


class Python:
    """`function = "module:callable"`, called with (sample, output), sync or async, returning
    a bool (pass/fail), a number, or a `Score`. It may raise `Skip`."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.function = import_callable(name, spec.get("function"))

    async def grade(self, sample: Sample, output: Output) -> Score:
        result = self.function(sample, output)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Score):
            return result
        if isinstance(result, bool):
            return _verdict(result)
        if isinstance(result, int | float):
            return Score(float(result))
        raise GraderError(f"grader {self.name!r} returned {type(result).__name__}, "
                          "not a bool, a number or a Score")


class FeedbackMetric:
    """The sample's stored feedback on `metric` as its score: a bool passes or fails, a number
    is the value, a string passes when in `passing` (default: none). `Skip` when absent."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        metric = spec.get("metric")
        if not isinstance(metric, str) or not metric:
            raise GraderError(f"grader {name!r}: `metric` is required")
        self.metric = metric
        self.passing = set(spec.get("passing", []))

    async def grade(self, sample: Sample, output: Output) -> Score:
        if self.metric not in sample.feedback:
            raise Skip(f"no {self.metric!r} feedback")
        value = sample.feedback[self.metric]
        if isinstance(value, bool):
            return _verdict(value)
        if isinstance(value, int | float):
            return Score(float(value))
        if isinstance(value, str):
            passed = value in self.passing
            return Score(1.0 if passed else 0.0, passed=passed, label=value)
        raise Skip(f"{self.metric!r} feedback is not a bool, number or label")


SIMPLE: dict[str, Callable[[str, dict[str, Any]], Grader]] = {
    "exact": Exact, "normalized": Normalized, "contains": Contains, "regex": Regex,
    "json_schema": JsonSchema, "json_field": JsonField, "numeric": Numeric,
    "tool_call": ToolCall, "python": Python, "feedback": FeedbackMetric,
}
TYPES = sorted(GRADER_OPTIONS)


def grader_from_config(
    name: str,
    spec: dict[str, Any],
    *,
    embedder: Embedder | None = None,
    complete: Complete | None = None,
) -> Grader:
    """The grader `spec["type"]` names, checked; `GraderError` names what is wrong."""
    _check(name, spec)
    kind = spec.get("type")
    if kind in SIMPLE:
        return SIMPLE[kind](name, spec)
    if kind == "embedding_similarity":
        return EmbeddingSimilarity(name, spec, embedder)
    if kind == "llm_judge":
        return LLMJudge(name, spec, complete)
    if kind == "pairwise":
        return PairwiseJudge(name, spec, complete)
    raise GraderError(f"grader {name!r}: unknown type {kind!r}; one of {', '.join(TYPES)}")


def _check(name: str, spec: dict[str, Any]) -> None:
    problems = grader_problems(spec)
    if problems:
        key, problem = problems[0]
        raise GraderError(f"grader {name!r}: {problem}" if key == "type"
                          else f"grader {name!r}: `{key}`: {problem}")


# Export to OpenAI graders JSON

OUTPUT = "{{sample.output_text}}"
REFERENCE = "{{item.reference}}"
PYTHON_SHIM = '''

def grade(sample, item):
    """OpenAI's entry point: calls {function} with veteran-shaped objects."""
    from types import SimpleNamespace
    s = SimpleNamespace(id=str(item.get("id", "")), messages=item.get("input") or [],
                        reference=item.get("reference"), metadata=item.get("metadata") or {{}},
                        episode_id=None, tools=None, feedback=item.get("feedback") or {{}})
    o = SimpleNamespace(text=sample.get("output_text") or "",
                        tool_calls=sample.get("output_tools") or [], completion=None,
                        trajectory_id=None, error=None)
    result = {function}(s, o)
    return float(getattr(result, "value", result))
'''


def _judge_input(judge: LLMJudge) -> list[dict[str, str]]:
    user = "\n\n".join([
        f"# Rubric\n{judge.rubric}", "# Conversation\n{{item.input}}",
        f"# Reference answer\n{REFERENCE}", f"# Response to grade\n{OUTPUT}",
    ])
    return [{"role": "system", "content": judge.instructions()}, {"role": "user", "content": user}]


async def _never(body: dict[str, Any]) -> dict[str, Any]:
    raise GraderError("exporting a grader calls no model")


EXPORTABLE = ("exact", "contains", "normalized", "embedding_similarity", "llm_judge", "python")


def to_openai_grader(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The definition in OpenAI's graders JSON. The data item is expected to hold `reference`
    (and `input` for judges); `GraderError` for kinds with no equivalent."""
    kind = spec.get("type")
    if kind in GRADER_OPTIONS and kind not in EXPORTABLE:
        raise GraderError(f"grader {name!r}: type {kind!r} has no OpenAI graders equivalent "
                          f"(exportable: {', '.join(EXPORTABLE)})")
    _check(name, spec)
    reference = str(spec["value"]) if spec.get("value") is not None else REFERENCE
    base: dict[str, Any] = {"name": name}
    if kind in {"exact", "contains"}:
        grader_from_config(name, spec)
        operation = "eq" if kind == "exact" else (
            "ilike" if spec.get("ignore_case", False) else "like")
        return {**base, "type": "string_check", "input": OUTPUT, "reference": reference,
                "operation": operation}
    if kind in {"normalized", "embedding_similarity"}:
        metric = "fuzzy_match" if kind == "normalized" else "cosine"
        threshold = 1.0 if kind == "normalized" else float(spec.get("threshold", 0.8))
        return {**base, "type": "text_similarity", "input": OUTPUT, "reference": reference,
                "evaluation_metric": metric, "pass_threshold": threshold}
    if kind == "llm_judge":
        judge = LLMJudge(name, spec, _never)
        out = {**base, "model": judge.model, "input": _judge_input(judge)}
        if judge.labels is not None:
            return {**out, "type": "label_model", "labels": judge.labels,
                    "passing_labels": judge.passing}
        out = {**out, "type": "score_model", "range": list(judge.range)}
        if judge.pass_threshold is not None:
            out["pass_threshold"] = judge.pass_threshold
        params = {k: v for k, v in judge.params.items()
                  if k in {"temperature", "top_p", "seed", "max_completions_tokens"}}
        return {**out, "sampling_params": params} if params else out
    if kind == "python":
        function = import_callable(name, spec.get("function"))
        try:
            source = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError) as exc:
            raise GraderError(f"grader {name!r}: no source for {spec['function']}: {exc}") from None
        called = getattr(function, "__name__", "")
        if not called.isidentifier() or called == "grade":
            raise GraderError(f"grader {name!r}: export needs a named function not called "
                              "`grade` (OpenAI's entry point)")
        return {**base, "type": "python", "source": source + PYTHON_SHIM.format(function=called)}
    raise AssertionError(f"exportable type {kind!r} is not exported")  # EXPORTABLE is wrong
