"""`veteran.toml` → typed, validated settings.

Every error names the file and the dotted key (`veteran.toml: functions.triage.variants.big.model:
unknown provider 'up'`). Provider tables are validated by the `Settings` class of their provider
kind, so a plugin's own keys are checked as strictly as the built-in ones.

This module is at the bottom of the package: it imports no other room. So the settings every
provider shares (`ProviderSettings` and its parts) are defined here, and a kind's own `Settings`
class is found through the `veteran.providers` entry-point group, the one every provider (built
in or a plugin) registers in, without importing `veteran.providers`. `veteran.providers.base`
re-exports the settings for plugin authors.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from veteran.errors import ConfigError
from veteran.policy_settings import (
    BUILTIN_ENTITIES,
    DictionaryConfig,
    FunctionRedactConfig,
    HandoffConfig,
    PatternConfig,
    PolicyRule,
    RedactConfig,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MetricType = Literal["boolean", "float", "label", "comment", "demonstration"]
PROVIDER_GROUP = "veteran.providers"  # the entry-point group of provider classes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Providers: the settings every kind shares; a kind's `Settings` subclass adds its own keys.


class ModelInfo(_Strict):
    """A model a provider offers, with optional prices in currency units per million tokens."""

    input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)


class RetrySettings(_Strict):
    """`[providers.NAME.retry]`: how failed calls to a provider are retried (gateway/resilience.py).
    Only retryable failures are retried: no connection, 429, 500, 502, 503, 504, 529."""

    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_initial: float = Field(default=0.25, gt=0, le=60)  # seconds before the first retry
    backoff_max: float = Field(default=8.0, gt=0, le=600)  # cap of the doubling backoff
    # A Retry-After longer than this is not waited for: the call moves on to the fallbacks.
    retry_after_max: float = Field(default=30.0, ge=0, le=3600)


class BreakerSettings(_Strict):
    """`[providers.NAME.breaker]`: after `failures` failed requests in a row (a request counts
    once, whatever its retries) within `window` seconds the provider is marked down for
    `cooldown` seconds; then one probe call decides whether it is back."""

    failures: int = Field(default=5, ge=1, le=1000)
    window: float = Field(default=60.0, gt=0, le=86400)
    cooldown: float = Field(default=30.0, gt=0, le=86400)


class ProviderSettings(_Strict):
    """Settings shared by every provider; a provider's own `Settings` subclass adds its keys."""

    kind: str
    models: dict[str, ModelInfo] = Field(default_factory=dict)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)

    def knows_model(self, name: str) -> bool:
        """Whether `PROVIDER/name` is servable. Default: any (remote servers know their own)."""
        return True

    def model_names(self) -> list[str]:
        """Models listed by `GET /v1/models` for this provider."""
        return sorted(self.models)

    # How a call is made, not what it answers (retries, breaker, prices): left out of
    # `fingerprint`. A kind adds its own (timeouts, pool sizes) to this set.
    NOT_DECIDING: ClassVar[frozenset[str]] = frozenset({"models", "retry", "breaker"})

    def fingerprint(self, model: str) -> dict[str, Any]:
        """The settings that decide this provider's answer for `model`, to key cached answers
        on (the eval call cache): every setting but those named in `NOT_DECIDING`. A setting a
        kind adds counts unless the kind names it there, so a new setting can only cost a cache
        miss, never bring back an answer made under other settings. Holds no secret: settings
        name a key's environment variable, never its value."""
        return self.model_dump(mode="json", exclude=set(self.NOT_DECIDING))


@cache
def provider_entry_points() -> dict[str, EntryPoint]:
    """The installed provider kinds (`veteran.providers` entry points), by kind; read once."""
    return {ep.name: ep for ep in entry_points(group=PROVIDER_GROUP)}


def provider_kinds() -> list[str]:
    """Every provider kind that is installed."""
    return sorted(provider_entry_points())


def provider_settings_class(kind: str) -> type[ProviderSettings]:
    """The `Settings` class of the provider registered for `kind`; `KeyError` when no installed
    package provides it. Loading the entry point imports the provider's module: a plugin is
    found at run time, which is what lets this module stay below the providers."""
    cls = provider_entry_points()[kind].load()
    settings = getattr(cls, "Settings", None)
    if not (isinstance(settings, type) and issubclass(settings, ProviderSettings)):
        raise TypeError(f"entry point {PROVIDER_GROUP}:{kind} has no ProviderSettings `Settings`")
    return settings


class FewshotConfig(_Strict):
    """`[functions.F.variants.V.fewshot]`: put the k most similar examples of a registered
    `fewshot` model (`veteran train F --recipe fewshot`) before each request's messages."""

    model: str = Field(description="the registered model's id")
    k: int = Field(default=4, ge=1, le=32)


class VariantConfig(_Strict):
    model: str = Field(pattern=r"^[^/\s]+/\S+$", description="PROVIDER/MODEL")
    weight: float = Field(default=1.0, ge=0)
    system: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    # Replace the provider's retry count and timeouts for this variant's calls.
    max_retries: int | None = Field(default=None, ge=0, le=10)
    connect_timeout: float | None = Field(default=None, gt=0)
    read_timeout: float | None = Field(default=None, gt=0)
    total_timeout: float | None = Field(default=None, gt=0)
    fewshot: FewshotConfig | None = None

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def provider_model(self) -> str:
        return self.model.split("/", 1)[1]


class FunctionMemoryConfig(_Strict):
    """`[functions.NAME.memory]`: put the best chunks of these collections into each request."""

    collections: list[str] = Field(min_length=1)
    max_tokens: int = Field(default=800, ge=16, le=100_000)  # budget for the inserted context
    k: int = Field(default=8, ge=1, le=100)  # chunks retrieved per collection before packing
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    filters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # Chunks less relevant than this are left out (default: [memory] min_score).
    min_score: float | None = Field(default=None, ge=0, le=1)


class FunctionCacheConfig(_Strict):
    """`[functions.NAME.cache]`: answer a close-enough repeat of an earlier request from cache."""

    threshold: float = Field(default=0.92, gt=0, le=1)  # cosine similarity of the requests
    ttl_seconds: float = Field(default=86_400, gt=0)


class GateConfig(_Strict):
    """`[functions.NAME.gate]`: the eval gate a model must pass before `veteran models promote`
    gives it traffic: the candidate against the function's main variant on `suite`."""

    suite: str
    grader: str | None = None  # default: the suite's first
    max_drop: float = Field(default=0.02, ge=0)


class FunctionConfig(_Strict):
    system: str | None = None
    variants: dict[str, VariantConfig] = Field(min_length=1)
    # Variants tried in this order when the chosen one fails (a fallback-only variant has
    # weight 0). Not used when the client pins a variant with x-veteran-variant.
    fallbacks: list[str] = Field(default_factory=list)
    memory: FunctionMemoryConfig | None = None
    cache: FunctionCacheConfig | None = None
    gate: GateConfig | None = None
    redact: FunctionRedactConfig | None = None  # over the workspace's [redact]

    @field_validator("variants")
    @classmethod
    def _weights(cls, variants: dict[str, VariantConfig]) -> dict[str, VariantConfig]:
        for name in variants:
            _check_name(name)
        if sum(v.weight for v in variants.values()) <= 0:
            raise ValueError("at least one variant needs a weight above 0")
        return variants

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks(cls, fallbacks: list[str], info: ValidationInfo) -> list[str]:
        variants = info.data.get("variants") or {}
        for name in fallbacks:
            if name not in variants:
                raise ValueError(
                    f"fallback {name!r} is not a variant of this function "
                    f"(variants: {', '.join(variants)})"
                )
        if len(set(fallbacks)) != len(fallbacks):
            raise ValueError("a variant is listed twice")
        return fallbacks


class MetricConfig(_Strict):
    type: MetricType
    level: Literal["trajectory", "episode"] = "trajectory"
    optimize: Literal["max", "min"] | None = None
    labels: list[str] | None = Field(default=None, description="allowed values of a label metric")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=1, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)


class CaptureConfig(_Strict):
    # durable: a response reaches the client in full only after its trajectory is committed.
    durable: bool = True
    batch_max: int = Field(default=512, ge=1, le=100_000)
    # SQLite `synchronous`: "normal" survives a process crash (kill -9); "full" also a power cut.
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    # Bound of the on-disk spool (workspace `spool/`) that holds captures while the store is away.
    spool_max_bytes: int = Field(default=1 << 30, ge=1024)


class TeamConfig(_Strict):
    """Limits on a team's model calls, over all its keys (see docs/security.md)."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    spend_per_day: float | None = Field(default=None, gt=0)


class MemoryConfig(_Strict):
    """`[memory]`: how collections are embedded and chunked (`veteran kb add`)."""

    # "local" (the shipped all-MiniLM-L6-v2) or PROVIDER/MODEL of an OpenAI-compatible provider
    embedder: str = Field(default="local", pattern=r"^(local|[^/\s]+/\S+)$")
    chunk_tokens: int = Field(default=200, ge=16, le=8192)
    overlap_tokens: int = Field(default=40, ge=0)
    # The least relevance (the larger of the query-chunk cosine similarity and the share of the
    # query's keyword weight in the chunk, 0-1) of a chunk put into a prompt or shown by
    # `kb search`; calibrated for the local MiniLM embedder (veteran/memory/search.py).
    min_score: float = Field(default=0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _overlap(self) -> MemoryConfig:
        if self.overlap_tokens * 2 > self.chunk_tokens:
            raise ValueError("overlap_tokens must be at most half of chunk_tokens")
        return self


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> float:
    """`30s`, `15m`, `1h`, `1d` (or a bare number of seconds) -> seconds; above 0."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h or 1d")
    seconds = float(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("a duration must be above 0")
    return seconds


class CanariesConfig(_Strict):
    """`[canaries]`: suites `veteran serve` re-runs on a schedule to catch silent drift."""

    suites: list[str] = Field(default_factory=list)
    every: str = "1h"
    webhook: str | None = Field(default=None, pattern=r"^https?://\S+$")  # alerts are POSTed
    min_history: int = Field(default=5, ge=2, le=10_000)  # earlier points before judging
    min_drop: float = Field(default=0.05, ge=0)  # smallest drop that alerts

    @field_validator("every")
    @classmethod
    def _every(cls, every: str) -> str:
        parse_duration(every)
        return every

    @property
    def every_seconds(self) -> float:
        return parse_duration(self.every)


class EvalsConfig(_Strict):
    """`[evals]`: how evaluations run (`veteran eval`, promotion gates)."""

    # How long an answer in the eval call cache is used: `30s`, `15m`, `1h`, `1d`, or seconds.
    # Vendors change a model behind its name; an old answer measures the model it was then.
    cache_ttl: str | StrictFloat = "1d"

    @field_validator("cache_ttl")
    @classmethod
    def _cache_ttl(cls, ttl: str | float) -> str | float:
        if isinstance(ttl, str):
            parse_duration(ttl)
        elif ttl <= 0:
            raise ValueError("a duration must be above 0")
        return ttl

    @property
    def cache_ttl_seconds(self) -> float:
        ttl = self.cache_ttl
        return parse_duration(ttl) if isinstance(ttl, str) else float(ttl)


class Config(_Strict):
    database_url: str | None = None
    server: ServerConfig = Field(default_factory=ServerConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    functions: dict[str, FunctionConfig] = Field(default_factory=dict)
    metrics: dict[str, MetricConfig] = Field(default_factory=dict)
    teams: dict[str, TeamConfig] = Field(default_factory=dict)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    canaries: CanariesConfig = Field(default_factory=CanariesConfig)
    evals: EvalsConfig = Field(default_factory=EvalsConfig)
    # The company's rules (policy_settings.py, docs/policies.md).
    redact: RedactConfig = Field(default_factory=RedactConfig)
    dictionaries: dict[str, DictionaryConfig] = Field(default_factory=dict)
    patterns: dict[str, PatternConfig] = Field(default_factory=dict)
    policies: list[PolicyRule] = Field(default_factory=list)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    _folder: Path | None = PrivateAttr(default=None)

    @property
    def folder(self) -> Path | None:
        """The folder of the file this config was read from (the workspace), None when it was
        not read from a file. Relative paths in the config are resolved against it."""
        return self._folder

    def entities(self) -> list[str]:
        """Every entity type this config can detect: the built-in ones, then those its
        dictionaries and patterns report."""
        extra = [d.entity for d in self.dictionaries.values()]
        extra += [p.entity for p in self.patterns.values()]
        return list(dict.fromkeys((*BUILTIN_ENTITIES, *extra)))

    def redaction(self, function: str | None) -> RedactConfig:
        """The redaction that applies to a call of `function` (None: a PROVIDER/MODEL call)."""
        settings = self.functions.get(function) if function is not None else None
        if settings is None or settings.redact is None:
            return self.redact
        return settings.redact.over(self.redact)


def _check_name(name: str) -> None:
    import re

    if not re.match(NAME_PATTERN, name):
        raise ValueError(f"name {name!r} must match {NAME_PATTERN} (letters, digits, . _ -)")


def read_toml(path: Path, *, missing: str = "file not found") -> dict[str, Any]:
    """The TOML table in `path`; `ConfigError` naming the file when it is absent or invalid."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), None, missing) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), None, f"not valid TOML: {exc}") from None


def parse_config_text(text: str, shown: str, folder: Path | None = None) -> Config:
    """Validate the text of a veteran.toml (a published version: live reload)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, None, f"not valid TOML: {exc}") from None
    return parse_config(raw, shown, folder=folder)


def load_config(path: Path) -> Config:
    """Read and validate `path`; raises `ConfigError` naming the file and key. Relative paths
    in it (the local provider's `paths`) are resolved against the file's folder."""
    return parse_config(read_toml(path), str(path), folder=path.expanduser().resolve().parent)


def parse_config(raw: dict[str, Any], shown: str = "veteran.toml",
                 folder: Path | None = None) -> Config:
    """Validate a parsed TOML table. `folder`: the workspace, against which provider settings
    resolve relative paths (given to their validators as the context key "folder")."""
    data = dict(raw)
    providers_raw = data.pop("providers", {})
    if not isinstance(providers_raw, dict):
        raise ConfigError(shown, "providers", "must be a table of providers")
    data["providers"] = {
        name: _provider_settings(name, table, shown, folder)
        for name, table in providers_raw.items()
    }
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, shown, prefix=()) from None
    for kind_table in ("functions", "metrics", "teams", "dictionaries", "patterns"):
        for name in getattr(config, kind_table):
            try:
                _check_name(name)
            except ValueError as exc:
                raise ConfigError(shown, f"{kind_table}.{name}", str(exc)) from None
    config._folder = folder
    _check_references(config, shown)
    return config


def _provider_settings(name: str, table: Any, shown: str,
                       folder: Path | None = None) -> ProviderSettings:
    key = f"providers.{name}"
    try:
        _check_name(name)
    except ValueError as exc:
        raise ConfigError(shown, key, str(exc)) from None
    if not isinstance(table, dict):
        raise ConfigError(shown, key, "must be a table")
    kind = table.get("kind")
    installed = ", ".join(provider_kinds())
    if not isinstance(kind, str):
        raise ConfigError(shown, f"{key}.kind", f"required; one of {installed}")
    try:
        settings = provider_settings_class(kind)
    except KeyError:
        raise ConfigError(
            shown, f"{key}.kind", f"unknown provider kind {kind!r}; installed: {installed}"
        ) from None
    try:
        return settings.model_validate(table, context={"folder": folder})
    except ValidationError as exc:
        raise _config_error(exc, shown, prefix=("providers", name)) from None


def _check_references(config: Config, shown: str) -> None:
    for fname, function in config.functions.items():
        for vname, variant in function.variants.items():
            key = f"functions.{fname}.variants.{vname}.model"
            settings = config.providers.get(variant.provider)
            if settings is None:
                raise ConfigError(shown, key, f"unknown provider {variant.provider!r}")
            if not settings.knows_model(variant.provider_model):
                known = ", ".join(settings.model_names()) or "none"
                raise ConfigError(
                    shown, key,
                    f"provider {variant.provider!r} has no model {variant.provider_model!r} "
                    f"(known: {known})",
                )
    for mname, metric in config.metrics.items():
        if metric.labels is not None and metric.type != "label":
            raise ConfigError(shown, f"metrics.{mname}.labels", "only a label metric has labels")
    _check_policies(config, shown)


def _check_policies(config: Config, shown: str) -> None:
    """Every entity, function, team, variant and model the rules name exists."""
    known = config.entities()

    def entities(key: str, names: list[str] | None) -> None:
        for name in names or ():
            if name not in known:
                raise ConfigError(shown, key, f"unknown entity {name!r} (known: "
                                  f"{', '.join(known)})")

    entities("redact.entities", config.redact.entities)
    for fname, function in config.functions.items():
        if function.redact is not None:
            entities(f"functions.{fname}.redact.entities", function.redact.entities)
    names: set[str] = set()
    for i, rule in enumerate(config.policies):
        key = f"policies.{i}"
        if rule.name in names:
            raise ConfigError(shown, f"{key}.name", f"another rule is named {rule.name!r}")
        names.add(rule.name)
        entities(f"{key}.match.entities", rule.match.entities)
        entities(f"{key}.entities", rule.entities)
        for fname in rule.match.functions:
            if fname not in config.functions:
                raise ConfigError(shown, f"{key}.match.functions", f"unknown function {fname!r}")
        for team in rule.match.teams:
            if team not in config.teams:
                raise ConfigError(shown, f"{key}.match.teams", f"unknown team {team!r}")
        if rule.match.classifier is not None:
            _check_model(config, shown, f"{key}.match.classifier", rule.match.classifier)
        if rule.to is not None:
            if "/" in rule.to:
                _check_model(config, shown, f"{key}.to", rule.to)
            elif not rule.match.functions:
                raise ConfigError(shown, f"{key}.to", f"{rule.to!r} is a variant: name the "
                                  "functions it belongs to in match.functions, or give "
                                  "PROVIDER/MODEL")
            else:
                for fname in rule.match.functions:
                    if rule.to not in config.functions[fname].variants:
                        raise ConfigError(shown, f"{key}.to", f"function {fname!r} has no "
                                          f"variant {rule.to!r}")
    for dname, dictionary in config.dictionaries.items():
        if dictionary.file is not None and config.folder is not None:
            path = config.folder / dictionary.file
            if not path.is_file():
                raise ConfigError(shown, f"dictionaries.{dname}.file", f"no file {path}")


def _check_model(config: Config, shown: str, key: str, model: str) -> None:
    """`model` is a function or a PROVIDER/MODEL the config knows."""
    if model in config.functions:
        return
    provider, _, name = model.partition("/")
    settings = config.providers.get(provider)
    if settings is None or not name or not settings.knows_model(name):
        raise ConfigError(shown, key, f"unknown model {model!r}: a function or PROVIDER/MODEL")


def _config_error(exc: ValidationError, shown: str, prefix: tuple[str, ...]) -> ConfigError:
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in (*prefix, *err["loc"]))
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append((key, msg))
    key, msg = problems[0]
    error = ConfigError(shown, key, msg)
    if len(problems) > 1:
        more = "; ".join(f"{k}: {m}" for k, m in problems[1:])
        error.message = f"{error.message} (also: {more})"
        error.args = (error.message,)
    return error
