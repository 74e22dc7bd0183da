"""Bring existing history in: OpenAI-format logs, one `{"request": ..., "response": ...}` per line.

Optional per line: `created_at` (ISO 8601 or UNIX seconds), `episode_id`, `tags` (string values),
`metadata` (an object: what a log kept beside the call, e.g. OpenAI's stored completions'
metadata). A record's time is its `created_at`, else the response's own `created` (UNIX seconds,
as OpenAI writes it), else the time of the import; a time that cannot be read refuses the file.
A file is imported whole or not at all; an error names the line.

An imported call feeds `veteran data export FUNCTION` and `veteran train` only once it belongs
to a function, so a `Mapping` assigns functions and tags from the record's fields:

- `model`: the response's model, else the request's;
- `metadata.KEY`: the line's `metadata`, else the request's `metadata` (scalars only).

Rules (`Rule.parse`, the CLI's `--map`):

- `FIELD:VALUE=FUNCTION`  records whose FIELD is VALUE belong to FUNCTION
  (`model:gpt-4o=triage`; a model may hold colons: the first one splits);
- `FIELD=function`        FIELD's value names the function (`metadata.app=function`);
- `FIELD=tag:NAME`        FIELD's value becomes tag NAME (`metadata.team=tag:team`).

The first function rule that matches (in the order given) wins, then `Mapping.function` (the
CLI's `--function`: every record no rule maps). `ImportReport` says how many records each
function got, which records no rule mapped to a function (by model), which metadata keys no rule
read, and which rules matched nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from veteran.errors import ImportRefused
from veteran.store.ids import new_id
from veteran.types import TrajectoryRecord, check_timestamp, now, parse_timestamp

ALLOWED = frozenset({"request", "response", "created_at", "episode_id", "tags", "metadata"})
FIELD = re.compile(r"^(model|metadata\.[^\s=:]{1,128})$")
TAG_NAME = re.compile(r"^[^\s=]{1,128}$")
TAG_VALUE_MAX = 512  # the store's tag value column
MILLISECONDS = 1e11  # a UNIX time above this is most likely in milliseconds (year 5138+)


@dataclass(frozen=True)
class Rule:
    """One `--map` rule (see the module docstring)."""

    field: str  # "model" or "metadata.KEY"
    value: str | None  # the value to match; None: any value (its value is used)
    target: Literal["function", "tag"]
    name: str | None  # the function (a value rule) or the tag's name; None: the value names it
    text: str  # as given

    @classmethod
    def parse(cls, text: str) -> Rule:
        """A rule from `FIELD:VALUE=FUNCTION`, `FIELD=function` or `FIELD=tag:NAME`;
        `ValueError` says what is wrong."""
        source, sep, target = text.rpartition("=")
        if not sep or not source or not target:
            raise ValueError(f"{text!r}: give FIELD:VALUE=FUNCTION, FIELD=function or "
                             "FIELD=tag:NAME")
        name, colon, value = source.partition(":")
        if not FIELD.match(name):
            raise ValueError(f"{text!r}: the field must be `model` or `metadata.KEY`, "
                             f"not {name!r}")
        if colon:
            if not value:
                raise ValueError(f"{text!r}: give the value to match after `{name}:`")
            if target == "function" or target.startswith("tag:"):
                raise ValueError(f"{text!r}: a matched value maps to a function's name "
                                 f"(`{name}:{value}=FUNCTION`)")
            return cls(name, value, "function", target, text)
        if target == "function":
            return cls(name, None, "function", None, text)
        tag = target.removeprefix("tag:")
        if not target.startswith("tag:") or not TAG_NAME.match(tag):
            raise ValueError(f"{text!r}: without a value to match, the target is `function` "
                             "or `tag:NAME`")
        return cls(name, None, "tag", tag, text)


@dataclass(frozen=True)
class Mapping:
    """How imported records get their function and tags."""

    rules: tuple[Rule, ...] = ()
    function: str | None = None  # every record no rule maps to a function
    # Whether a name found in a record's field (`FIELD=function`) is a function; a name that is
    # not leaves the record to the next rule (and is reported).
    is_function: Callable[[str], bool] = field(default=lambda name: True)

    def names(self) -> list[str]:
        """The function names the mapping gives outright (to check before importing)."""
        given = [r.name for r in self.rules if r.target == "function" and r.name is not None]
        return [*given, *([self.function] if self.function is not None else [])]


@dataclass
class ImportReport:
    records: int = 0
    functions: Counter[str] = field(default_factory=Counter)  # function -> records
    unmapped: int = 0  # records that belong to no function
    unmapped_models: Counter[str] = field(default_factory=Counter)  # their models
    not_functions: Counter[str] = field(default_factory=Counter)  # "FIELD value" naming none
    unread_metadata: Counter[str] = field(default_factory=Counter)  # metadata keys no rule read
    unused_rules: list[str] = field(default_factory=list)  # rules that matched no record
    undated: int = 0  # records with no time of their own (imported as now)

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "functions": dict(self.functions),
                "unmapped": self.unmapped, "unmapped_models": dict(self.unmapped_models),
                "not_functions": dict(self.not_functions),
                "unread_metadata": dict(self.unread_metadata),
                "unused_rules": list(self.unused_rules), "undated": self.undated}

    def lines(self) -> list[str]:
        """What was mapped and what was not, for people."""
        out = []
        if self.functions:
            out.append("functions: " + _counted(self.functions))
        if self.unmapped:
            models = _counted(self.unmapped_models) if self.unmapped_models else "none"
            out.append(f"{self.unmapped} records belong to no function (`data export` and "
                       f"`train` will not find them; map them with --function or --map); "
                       f"their models: {models}")
        if self.not_functions:
            out.append("values that name no function: " + _counted(self.not_functions))
        if self.unread_metadata:
            out.append("metadata not mapped: " + _counted(self.unread_metadata))
        for rule in self.unused_rules:
            out.append(f"--map {rule} matched no record")
        if self.undated:
            out.append(f"{self.undated} records had no time (created_at or response.created) "
                       "and were dated now")
        return out


def _counted(counter: Counter[str], most: int = 10) -> str:
    shown = ", ".join(f"{k} ({n})" for k, n in counter.most_common(most))
    return shown + (f" and {len(counter) - most} more" if len(counter) > most else "")


def parse_openai_log(lines: Iterable[bytes | str], mapping: Mapping | None = None,
                     report: ImportReport | None = None) -> list[TrajectoryRecord]:
    """The records of an OpenAI-format log, mapped to functions and tags by `mapping`;
    `report`, when given, is filled with what was and was not mapped."""
    mapping = mapping if mapping is not None else Mapping()
    report = report if report is not None else ImportReport()
    used: set[str] = set()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ImportRefused(number, f"not valid JSON: {exc}") from None
        records.append(_record(number, item, mapping, report, used))
    report.records = len(records)
    report.unused_rules = [r.text for r in mapping.rules if r.text not in used]
    return records


def _record(number: int, item: Any, mapping: Mapping, report: ImportReport,
            used: set[str]) -> TrajectoryRecord:
    if not isinstance(item, dict):
        raise ImportRefused(number, "must be an object with `request` and `response`")
    unknown = sorted(set(item) - ALLOWED)
    if unknown:
        raise ImportRefused(number, f"unknown fields: {', '.join(unknown)}")
    request, response = item.get("request"), item.get("response")
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list) or not (
        request["messages"]
    ):
        raise ImportRefused(number, "`request` must be a chat request with non-empty `messages`")
    if not isinstance(response, dict) or not (
        isinstance(response.get("choices"), list) or "error" in response
    ):
        raise ImportRefused(number, "`response` must be a chat completion (with `choices`)")
    tags = item.get("tags") or {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ImportRefused(number, "`tags` must be an object of string values")
    episode_id = item.get("episode_id")
    if episode_id is not None and not isinstance(episode_id, str):
        raise ImportRefused(number, "`episode_id` must be a string")
    failed = "error" in response and not response.get("choices")
    model = response.get("model") or request.get("model")
    model = model if isinstance(model, str) else None
    created_at = _created_at(number, item, response, report)
    fields = _fields(number, item, request, model)
    function, mapped = _map(mapping, fields, report, used)
    if function is None:
        report.unmapped += 1
        report.unmapped_models[model or "(none)"] += 1
    else:
        report.functions[function] += 1
    read = {r.field for r in mapping.rules}
    for key in fields:
        if key.startswith("metadata.") and key not in read:
            report.unread_metadata[key] += 1
    return TrajectoryRecord(
        id=new_id(created_at),
        episode_id=episode_id or new_id(),
        request=request,
        response=None if failed else response,
        error=str(response["error"]) if failed else None,
        status="error" if failed else "ok",
        created_at=created_at,
        function=function,
        provider="import",
        model=model,
        stream=bool(request.get("stream")),
        usage=response.get("usage") if isinstance(response.get("usage"), dict) else None,
        tags={"source": "import", **tags, **mapped},
    )


def _fields(number: int, item: dict[str, Any], request: dict[str, Any], model: str | None
            ) -> dict[str, str]:
    """The fields rules read: `model` and `metadata.KEY` (scalar values, as text)."""
    fields = {"model": model} if model is not None else {}
    line = item.get("metadata")
    if line is not None and not isinstance(line, dict):
        raise ImportRefused(number, "`metadata` must be an object")
    given = request.get("metadata")
    for source in (given if isinstance(given, dict) else {}, line or {}):
        for key, value in source.items():
            if isinstance(value, str):
                fields[f"metadata.{key}"] = value
            elif isinstance(value, bool | int | float):
                fields[f"metadata.{key}"] = orjson.dumps(value).decode()
    return fields


def _map(mapping: Mapping, fields: dict[str, str], report: ImportReport, used: set[str]
         ) -> tuple[str | None, dict[str, str]]:
    """The record's function (None: none) and the tags the rules give it."""
    function: str | None = None
    tags: dict[str, str] = {}
    for rule in mapping.rules:
        value = fields.get(rule.field)
        if value is None or (rule.value is not None and value != rule.value):
            continue
        if rule.target == "tag":
            assert rule.name is not None
            tags[rule.name] = value[:TAG_VALUE_MAX]
            used.add(rule.text)
        elif function is None:
            name = rule.name if rule.name is not None else value
            if rule.name is None and not mapping.is_function(name):
                report.not_functions[f"{rule.field} {value}"] += 1
                continue
            function = name
            used.add(rule.text)
    return function if function is not None else mapping.function, tags


def _created_at(number: int, item: dict[str, Any], response: dict[str, Any],
                report: ImportReport) -> float:
    if item.get("created_at") is not None:
        return _time(number, "created_at", item["created_at"], iso=True)
    if response.get("created") is not None:
        return _time(number, "response.created", response["created"], iso=False)
    report.undated += 1
    return now()


def _time(number: int, name: str, value: Any, *, iso: bool) -> float:
    hint = ""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value > MILLISECONDS:
                hint = f" ({value!r} looks like milliseconds)"
            return check_timestamp(float(value))
        if isinstance(value, str) and iso:
            return parse_timestamp(value)
    except ValueError:
        pass
    wanted = "ISO 8601 with a time zone, or UNIX seconds" if iso else "UNIX seconds"
    raise ImportRefused(number, f"`{name}` must be {wanted}, 1970-9999{hint}")
