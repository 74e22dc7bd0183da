"""`evals/NAME.toml`: a suite names a dataset, graders and the variants to compare.

    [dataset]
    file = "tickets.jsonl"          # relative to the workspace; or:
    # function = "triage"           # trajectories captured for this function
    # since = "2026-11-01T00:00:00Z"; until = ...; tags = { team = "eu" }
    # metric = "resolved"; value = true
    # split = "test"; fractions = { train = 0.8, test = 0.2 }; seed = 0

    [graders.label]
    type = "exact"                  # options are the type's own (GRADER_OPTIONS; docs/evals.md)

    variants = ["triage:big", "triage:small", "up/gpt-x"]
    epochs = 1
    concurrency = 8                 # calls in flight per provider

Every error names the file and the dotted key, as `veteran.toml` errors do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from veteran.config import NAME_PATTERN, Config, _config_error, read_toml
from veteran.errors import ConfigError

SUITES_DIR = "evals"
VARIANT_PATTERN = re.compile(r"^(?:[^:/\s]+:[^:/\s]+|[^/\s]+/\S+)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(_Strict):
    file: str | None = None
    function: str | None = None
    since: str | None = None
    until: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    metric: str | None = None
    value: Any = None
    limit: int | None = Field(default=None, ge=1)
    split: str | None = None
    fractions: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "test": 0.2})
    seed: int = 0

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, fractions: dict[str, float]) -> dict[str, float]:
        if not fractions or any(f <= 0 for f in fractions.values()):
            raise ValueError("fractions must be positive")
        if abs(sum(fractions.values()) - 1.0) > 1e-6:
            raise ValueError("fractions must sum to 1")
        return fractions


class GraderConfig(BaseModel):
    """`[graders.NAME]`: `type` plus the grader's own options, checked against the type's
    options model (`GRADER_OPTIONS`) when the suite is read."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str

    def spec(self) -> dict[str, Any]:
        return self.model_dump()


# Each grader type's options, as strict as veteran.toml: an unknown or misspelt option is an
# error, not silently ignored. The grader classes (`evals/graders.py`, `evals/judges.py`) read
# the same names and check what a type cannot say (a pattern compiles, a schema is valid).


class _Options(_Strict):
    type: str


class _Expected(_Options):
    value: Any = None  # the expected answer for every sample; default: the sample's reference


class ExactOptions(_Expected):
    pass


class NormalizedOptions(_Expected):
    pass


class ContainsOptions(_Expected):
    ignore_case: bool = False


class RegexOptions(_Options):
    pattern: str
    flags: str = ""
    full: bool = False


class JsonSchemaOptions(_Options):
    # `schema` would shadow BaseModel.schema
    json_schema: dict[str, Any] = Field(alias="schema")


class JsonFieldOptions(_Expected):
    path: str


class NumericOptions(_Expected):
    abs_tol: float = Field(default=0.0, ge=0)
    rel_tol: float = Field(default=0.0, ge=0)


class ToolCallOptions(_Expected):
    arguments: bool = True
    ordered: bool = False


class EmbeddingSimilarityOptions(_Expected):
    threshold: float = 0.8


class PythonOptions(_Options):
    function: str


class FeedbackOptions(_Options):
    metric: str
    passing: list[str] = Field(default_factory=list)


class _JudgeOptions(_Options):
    model: str
    rubric: str
    params: dict[str, Any] = Field(default_factory=dict)


class LLMJudgeOptions(_JudgeOptions):
    range: tuple[float, float] = (0.0, 1.0)
    pass_threshold: float | None = None
    labels: list[str] | None = None
    passing_labels: list[str] | None = None


class PairwiseOptions(_JudgeOptions):
    seed: int = 0
    both_orders: bool = False


GRADER_OPTIONS: dict[str, type[_Options]] = {
    "exact": ExactOptions, "normalized": NormalizedOptions, "contains": ContainsOptions,
    "regex": RegexOptions, "json_schema": JsonSchemaOptions, "json_field": JsonFieldOptions,
    "numeric": NumericOptions, "tool_call": ToolCallOptions,
    "embedding_similarity": EmbeddingSimilarityOptions, "python": PythonOptions,
    "feedback": FeedbackOptions, "llm_judge": LLMJudgeOptions, "pairwise": PairwiseOptions,
}


def grader_option_names(kind: str) -> list[str]:
    """The options a grader type takes, as written in a suite (`type` aside)."""
    return [field.alias or name for name, field in GRADER_OPTIONS[kind].model_fields.items()
            if name != "type"]


def grader_problems(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for each thing wrong with a grader table (`type` and options); `[]` when
    there is none. The key is `type` or the option, as written in the suite."""
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in GRADER_OPTIONS:
        return [("type", f"unknown type {kind!r}; one of {', '.join(sorted(GRADER_OPTIONS))}")]
    try:
        GRADER_OPTIONS[kind].model_validate(spec)
    except ValidationError as exc:
        known = ", ".join(grader_option_names(kind)) or "none"
        problems = []
        # unknown options first: a misspelt one also makes the option it meant go missing
        for err in sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden"):
            key = ".".join(str(part) for part in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append((key, f"unknown option of a {kind!r} grader; its options: "
                                      f"{known}"))
            else:
                problems.append((key, err["msg"]))
        return problems
    return []


class SuiteConfig(_Strict):
    dataset: DatasetConfig
    graders: dict[str, GraderConfig] = Field(min_length=1)
    variants: list[str] = Field(min_length=1)
    epochs: int = Field(default=1, ge=1, le=100)
    concurrency: int = Field(default=8, ge=1, le=1024)
    system: str | None = None  # put first in every sample's messages
    params: dict[str, Any] = Field(default_factory=dict)  # merged into every request body
    description: str | None = None

    @field_validator("variants")
    @classmethod
    def _variants(cls, variants: list[str]) -> list[str]:
        for name in variants:
            if not VARIANT_PATTERN.match(name):
                raise ValueError(f"{name!r} is neither FUNCTION:VARIANT nor PROVIDER/MODEL")
        if len(set(variants)) != len(variants):
            raise ValueError("a variant is listed twice")
        return variants


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    config: SuiteConfig

    @property
    def shown(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to evaluate: a function's variant, pinned, or a provider's model."""

    name: str  # as written in the suite: "triage:big" or "up/gpt-x"
    model: str  # the request's `model`: the function, or PROVIDER/MODEL
    variant: str | None  # the pinned variant of the function

    @classmethod
    def parse(cls, name: str) -> Target:
        if ":" in name and "/" not in name:
            function, variant = name.split(":", 1)
            return cls(name, function, variant)
        return cls(name, name, None)


def suite_path(workspace: Path, name: str) -> Path:
    """`NAME` → `WORKSPACE/evals/NAME.toml`; a path to a .toml file is taken as it is."""
    if name.endswith(".toml"):
        return Path(name) if Path(name).is_absolute() else workspace / name
    return workspace / SUITES_DIR / f"{name}.toml"


def list_suites(workspace: Path) -> list[str]:
    folder = workspace / SUITES_DIR
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_suite(workspace: Path, name: str, config: Config | None = None) -> Suite:
    """Read and validate a suite; with the workspace `config`, also check what it names."""
    path = suite_path(workspace, name)
    suite = parse_suite(read_toml(path, missing="no such suite file"), path)
    if config is not None:
        check_suite(suite, config, workspace)
    return suite


def parse_suite(raw: dict[str, Any], path: Path) -> Suite:
    shown = str(path)
    try:
        config = SuiteConfig.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, shown, prefix=()) from None
    for name, table in config.graders.items():
        if not re.match(NAME_PATTERN, name):
            raise ConfigError(shown, f"graders.{name}", f"name must match {NAME_PATTERN}")
        problems = grader_problems(table.spec())
        if problems:
            key, problem = problems[0]
            more = "".join(f"; also {k}: {p}" for k, p in problems[1:])
            raise ConfigError(shown, f"graders.{name}.{key}", problem + more)
    dataset = config.dataset
    if (dataset.file is None) == (dataset.function is None):
        raise ConfigError(shown, "dataset", "give exactly one of `file` or `function`")
    if dataset.split is not None and dataset.split not in dataset.fractions:
        raise ConfigError(shown, "dataset.split",
                          f"{dataset.split!r} is not in fractions ({', '.join(dataset.fractions)})")
    return Suite(path.stem, path, config)


def check_suite(suite: Suite, config: Config, workspace: Path) -> None:
    """The variants, providers and dataset file a suite names exist in this workspace."""
    shown = suite.shown
    for i, name in enumerate(suite.config.variants):
        target = Target.parse(name)
        key = f"variants[{i}]"
        if target.variant is not None:
            function = config.functions.get(target.model)
            if function is None:
                raise ConfigError(shown, key, f"unknown function {target.model!r}")
            if target.variant not in function.variants:
                raise ConfigError(shown, key, f"function {target.model!r} has no variant "
                                  f"{target.variant!r} (variants: {', '.join(function.variants)})")
            continue
        provider, _, model = name.partition("/")
        settings = config.providers.get(provider)
        if settings is None:
            raise ConfigError(shown, key, f"unknown provider {provider!r}")
        if not settings.knows_model(model):
            raise ConfigError(shown, key, f"provider {provider!r} has no model {model!r}")
    dataset = suite.config.dataset
    if dataset.file is not None and not (workspace / dataset.file).is_file():
        raise ConfigError(shown, "dataset.file", f"no file {workspace / dataset.file}")
    if dataset.function is not None and dataset.function not in config.functions:
        raise ConfigError(shown, "dataset.function", f"unknown function {dataset.function!r}")
