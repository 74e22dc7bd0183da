"""The company's ordered rules (`[[policies]]`): which fire for a request, and what they decide.

A rule fires when every criterion its match gives holds (within a list, any item). Rules are
read in the order written: a `refuse` that fires ends the reading; the first `route` or
`handoff` that fires chooses the route, and later ones are not read (so no classifier is asked
for a decision already taken); every `redact` that fires adds entities to what the provider
sees as placeholders. The classifier criterion is tried last within its rule: it costs a model
call, through the gateway's one call path (the caller passes `classify`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from veteran.policies.entities import Finding
from veteran.policy_settings import PolicyRule

# (rule, classifier model, text) -> the label the classifier answered
Classify = Callable[[PolicyRule, str, str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Subject:
    """What the rules look at in one request."""

    text: str  # every message part, joined
    findings: Sequence[Finding]  # detected in those parts (at least the entities rules need)
    last_user: str = ""  # what a classifier reads
    tags: Mapping[str, str] = field(default_factory=dict)
    team: str | None = None
    key_id: str | None = None
    function: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule that fired, and why: on the trajectory (`record`), in the `x-veteran-policy`
    header (`header`) and in /metrics. It never holds a detected value."""

    rule: str
    action: str
    to: str | None = None
    reason: str | None = None
    note: str | None = None
    entities: tuple[str, ...] = ()  # redact: the entities put behind placeholders
    why: Mapping[str, Any] = field(default_factory=dict)  # the criteria that held

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "action": self.action}
        for name in ("to", "reason", "note"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        if self.entities:
            out["entities"] = list(self.entities)
        if self.why:
            out["why"] = dict(self.why)
        return out

    def header(self) -> str:
        """`rule=action`, or `rule=action:target` for a route or hand-off."""
        return f"{self.rule}={self.action}" + (f":{self.to}" if self.to else "")


class _Rule:
    __slots__ = ("classifier", "entities", "keywords", "regex", "settings")

    def __init__(self, settings: PolicyRule) -> None:
        match = settings.match
        self.settings = settings
        self.entities = frozenset(match.entities)
        self.keywords = (re.compile(r"\b(?:" + "|".join(
            re.escape(k) for k in sorted(match.keywords, key=len, reverse=True)) + r")\b",
            re.IGNORECASE) if match.keywords else None)
        self.regex = re.compile(match.regex) if match.regex is not None else None
        self.classifier = match.classifier

    def cheap(self, subject: Subject) -> dict[str, Any] | None:
        """The criteria that need no model call: what held, or None when one did not."""
        match = self.settings.match
        why: dict[str, Any] = {}
        if match.functions and subject.function not in match.functions:
            return None
        if match.teams and subject.team not in match.teams:
            return None
        if match.keys and subject.key_id not in match.keys:
            return None
        for key, value in match.tags.items():
            if subject.tags.get(key) != value:
                return None
        if self.entities:
            found: dict[str, int] = {}
            for finding in subject.findings:
                if finding.entity in self.entities:
                    found[finding.entity] = found.get(finding.entity, 0) + 1
            if not found:
                return None
            why["entities"] = found
        if self.keywords is not None:
            if (hit := self.keywords.search(subject.text)) is None:
                return None
            why["keyword"] = hit.group(0).lower()
        if self.regex is not None:
            if self.regex.search(subject.text) is None:
                return None
            why["regex"] = True
        for name, given in (("functions", match.functions), ("teams", match.teams),
                            ("keys", match.keys), ("tags", match.tags)):
            if given:
                why[name] = True
        return why


class Rules:
    """The `[[policies]]` of one config, compiled once."""

    def __init__(self, rules: Sequence[PolicyRule]) -> None:
        self._rules = [_Rule(rule) for rule in rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def entities(self) -> frozenset[str]:
        """The entity types any rule matches on or redacts (what must be detected for them)."""
        names: set[str] = set()
        for rule in self._rules:
            names |= rule.entities
            names |= set(rule.settings.entities or ())
        return frozenset(names)

    def redacts_all(self) -> bool:
        """Whether a redact rule without its own entities or match entities exists (it puts
        every detected entity behind placeholders)."""
        return any(r.settings.action == "redact" and not r.settings.entities and not r.entities
                   for r in self._rules)

    async def decide(self, subject: Subject, classify: Classify | None) -> list[Decision]:
        decisions: list[Decision] = []
        routed = False
        for rule in self._rules:
            settings = rule.settings
            if routed and settings.action in ("route", "handoff"):
                continue
            why = rule.cheap(subject)
            if why is None:
                continue
            if rule.classifier is not None:
                if classify is None:
                    continue
                label = _label(await classify(settings, rule.classifier, subject.last_user))
                if label != settings.match.label:
                    continue
                why["classifier"] = label
            decision = _decide(settings, subject, why)
            decisions.append(decision)
            if settings.action == "refuse":
                break
            routed = routed or settings.action in ("route", "handoff")
        return decisions


def _decide(rule: PolicyRule, subject: Subject, why: dict[str, Any]) -> Decision:
    if rule.action == "redact":
        entities = rule.entities or rule.match.entities or sorted(
            {f.entity for f in subject.findings})
        return Decision(rule.name, "redact", entities=tuple(entities), why=why)
    note = rule.note
    if rule.action == "handoff" and note is None:
        note = f"Answered by {rule.to} under the company's rule {rule.name!r}."
    return Decision(rule.name, rule.action, to=rule.to, reason=rule.reason, note=note, why=why)


def _label(answer: str) -> str:
    """A classifier's answer as a label: its text, or the one field of a JSON object."""
    text = answer.strip()
    if text.startswith("{"):
        try:
            fields = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        if isinstance(fields, dict) and len(fields) == 1:
            return str(next(iter(fields.values())))
    return text
