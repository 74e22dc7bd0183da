"""The company's rules in `veteran.toml`: what is detected (`[dictionaries.NAME]`,
`[patterns.NAME]`), what is redacted where (`[redact]`, `[functions.NAME.redact]`), the ordered
rules (`[[policies]]`) and the watch on vendors' hand-offs (`[handoff]`).

Beside `config.py` at the bottom of the package (it imports no other room): `veteran.policies`
acts on these settings, `config.Config` holds them. docs/policies.md is the user's guide.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENTITY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"

# What veteran finds without configuration. The structured ones are validated (Luhn, IBAN
# checksums, national-id check digits, phone numbering plans, known secret formats);
# `person` and `address` come from dictionaries (no statistical recognizer installs offline
# with its weights from PyPI): see docs/policies.md.
STRUCTURED_ENTITIES = ("secret", "email", "phone", "card", "iban", "national_id", "ip")
BUILTIN_ENTITIES = (*STRUCTURED_ENTITIES, "person", "address")
RESERVED_RULES = ("redact",)  # the name under which [redact] settings are disclosed

Action = Literal["route", "redact", "refuse", "handoff"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_entity(name: str) -> str:
    if not re.match(ENTITY_PATTERN, name):
        raise ValueError(f"entity {name!r} must match {ENTITY_PATTERN} (lower case, digits, _)")
    return name


def _check_entities(names: list[str]) -> list[str]:
    for name in names:
        _check_entity(name)
    if len(set(names)) != len(names):
        raise ValueError("an entity is listed twice")
    return names


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


class DictionaryConfig(_Strict):
    """`[dictionaries.NAME]`: the company's own terms (customer names, project code names),
    found as whole words and reported as `entity`."""

    entity: str
    terms: list[str] = Field(default_factory=list)
    file: str | None = None  # one term per line, relative to the workspace; '#' comments
    case_sensitive: bool = False

    @field_validator("entity")
    @classmethod
    def _entity(cls, name: str) -> str:
        return _check_entity(name)

    @model_validator(mode="after")
    def _some_terms(self) -> DictionaryConfig:
        if not self.terms and self.file is None:
            raise ValueError("give `terms` or a `file` of terms")
        if any(not term.strip() for term in self.terms):
            raise ValueError("a term is empty")
        return self


class PatternConfig(_Strict):
    """`[patterns.NAME]`: a regular expression whose matches are reported as `entity`."""

    entity: str
    regex: str

    @field_validator("entity")
    @classmethod
    def _entity(cls, name: str) -> str:
        return _check_entity(name)

    @field_validator("regex")
    @classmethod
    def _regex(cls, pattern: str) -> str:
        _check_regex(pattern)
        if re.compile(pattern).match(""):
            raise ValueError("the pattern matches the empty string")
        return pattern


class RedactConfig(_Strict):
    """`[redact]`, the workspace default: which entities are replaced by placeholders, in what
    is stored (`storage`) and in what the provider sees (`provider`: pseudonymisation, the app
    gets the real values back). Without a `[redact]` table, secrets are kept out of storage."""

    entities: list[str] = Field(default_factory=lambda: ["secret"])
    storage: bool = True
    provider: bool = False

    @field_validator("entities")
    @classmethod
    def _entities(cls, names: list[str]) -> list[str]:
        return _check_entities(names)


class FunctionRedactConfig(_Strict):
    """`[functions.NAME.redact]`: the keys it sets replace the workspace default's."""

    entities: list[str] | None = None
    storage: bool | None = None
    provider: bool | None = None

    @field_validator("entities")
    @classmethod
    def _entities(cls, names: list[str] | None) -> list[str] | None:
        return None if names is None else _check_entities(names)

    def over(self, default: RedactConfig) -> RedactConfig:
        return default.model_copy(update=self.model_dump(exclude_none=True))


class RuleMatch(_Strict):
    """When a rule fires: every criterion given must hold; a list holds when any item does."""

    entities: list[str] = Field(default_factory=list)  # any of these detected in the request
    keywords: list[str] = Field(default_factory=list)  # whole words, case-insensitive
    regex: str | None = None  # searched in the request's text
    tags: dict[str, str] = Field(default_factory=dict)  # the request carries all of these
    teams: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)  # API key ids (`veteran keys list`)
    functions: list[str] = Field(default_factory=list)
    # A classifier model (trained with the `classifier` recipe) as PROVIDER/MODEL or a
    # function: the rule holds when it answers `label` for the request's last user message.
    classifier: str | None = None
    label: str | None = None

    @field_validator("entities")
    @classmethod
    def _entities(cls, names: list[str]) -> list[str]:
        return _check_entities(names)

    @field_validator("regex")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        return None if pattern is None else _check_regex(pattern)

    @model_validator(mode="after")
    def _criteria(self) -> RuleMatch:
        if (self.classifier is None) != (self.label is None):
            raise ValueError("`classifier` and `label` go together")
        if not any((self.entities, self.keywords, self.regex, self.tags, self.teams, self.keys,
                    self.functions, self.classifier)):
            raise ValueError("a match needs at least one criterion")
        return self


class PolicyRule(_Strict):
    """`[[policies]]`: one rule, applied in the order written. `refuse` stops at the first that
    fires; the first `route` or `handoff` that fires chooses the route; every `redact` that
    fires adds its entities to what the provider sees as placeholders."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    match: RuleMatch
    action: Action
    to: str | None = None  # route, handoff: a variant of the function, or PROVIDER/MODEL
    reason: str | None = None  # refuse: told to the caller
    note: str | None = None  # handoff: added to the answer
    entities: list[str] | None = None  # redact: default the match's entities, else all found

    @model_validator(mode="after")
    def _action(self) -> PolicyRule:
        if self.name in RESERVED_RULES:
            raise ValueError(f"the rule name {self.name!r} is reserved")
        if self.action in ("route", "handoff") and not self.to:
            raise ValueError(f"a {self.action} rule needs `to` (a variant or PROVIDER/MODEL)")
        if self.action not in ("route", "handoff") and self.to is not None:
            raise ValueError("only route and handoff rules have `to`")
        if self.action == "refuse" and not self.reason:
            raise ValueError("a refuse rule needs a `reason`, told to the caller")
        if self.action != "refuse" and self.reason is not None:
            raise ValueError("only refuse rules have a `reason`")
        if self.action != "handoff" and self.note is not None:
            raise ValueError("only handoff rules have a `note`")
        if self.action != "redact" and self.entities is not None:
            raise ValueError("only redact rules have `entities`")
        if self.entities is not None:
            _check_entities(self.entities)
        return self


class HandoffConfig(_Strict):
    """`[handoff]`: the watch on what the upstream says answered. An answer from another model
    than the one asked, or a new `system_fingerprint` for a route, is recorded on the
    trajectory, counted in /metrics, logged and, with `webhook`, POSTed."""

    enabled: bool = True
    webhook: str | None = Field(default=None, pattern=r"^https?://\S+$")
    fingerprint_changes: bool = True  # also alert when a route's system_fingerprint changes
