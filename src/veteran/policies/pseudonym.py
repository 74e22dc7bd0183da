"""Pseudonymisation: the provider sees stable placeholders, the application gets its values back.

- A `Vault` is one episode's placeholders: the same value always gets the same placeholder
  (`<EMAIL_1>`, `<PHONE_1>`, `<CUSTOMER_2>`: the entity upper-cased and a counter per entity), so
  a conversation stays coherent for the model across its turns. A vault only ever maps values to
  placeholders; it never turns a placeholder back into a value.
- `Vaults` keeps them by (scope, episode id), in memory, bounded and expiring. The scope is the
  caller's identity, so an episode id guessed by another key reaches another vault. Vaults are per
  process: behind several replicas the same value may get different placeholders in two turns of
  an episode, which costs the model some coherence and the caller nothing (each request reveals
  from its own map).
- A `Masking` is one request's: it replaces findings by their placeholders and remembers only the
  placeholders this request produced. Its `Reveal` restores only those. A placeholder a user typed,
  or one made for another request of the same episode, stays as it is in the answer, whatever the
  model says: LiteLLM's `output_parse_pii` kept one token table for every request (issue 14516,
  PR 19950: stale and wrong unmasking across requests; issue 31959: per-message counters collide
  in one request), and LLM Guard's `Vault` is one unsynchronised list that every scanner and
  request shares (issue 131, PR 82).
- `StreamReveal` restores placeholders in a stream, holding back only a tail that could still
  become one of this request's placeholders ("... contact <EMA"), so time to first token does not
  move.

A model that garbles a placeholder (`<EMAIL_ 1>`, `<Email_1>`) gets it back as it wrote it.

Inside JSON (tool-call arguments, a JSON tool result: `walk.JsonText`) a value is the string the
JSON holds: masking takes `CORP\\\\jsmith` there as `CORP\\jsmith`, the value the same account has
in plain text, and revealing writes a value back escaped, as a JSON string's content, so the
arguments stay JSON (`"Ann" <ann@x.com>`, a Windows account, a private key's newlines).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson

from veteran.policies.entities import Finding
from veteran.policies.walk import JsonText, copy_on_write, map_response

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
NOT_IN_TAG = re.compile(r"[^A-Z0-9_]")
# The top-level fields a chunk made by `StreamReveal.flush` copies from the stream's last chunk.
ENVELOPE = ("id", "object", "created", "model", "system_fingerprint")

Slot = tuple[int, int | str]  # (choice index, "content" | "refusal" | "function_call" | call index)


@lru_cache(maxsize=1024)
def entity_tag(entity: str) -> str:
    """The placeholder name of an entity: upper-cased, anything outside [A-Z0-9_] made `_`, and
    `ENTITY_` in front when it would not start with a letter (so `PLACEHOLDER` always matches)."""
    tag = NOT_IN_TAG.sub("_", entity.upper())
    return tag if tag[:1].isalpha() else f"ENTITY_{tag}"


class Vault:
    """One episode's placeholders: the same value always gets the same placeholder
    (`<EMAIL_1>`, `<EMAIL_2>`, `<PHONE_1>`), thread-safe."""

    __slots__ = ("_lock", "_placeholders", "_counters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._placeholders: dict[tuple[str, str], str] = {}
        self._counters: dict[str, int] = {}

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity_tag(entity), value)
        found = self._placeholders.get(key)  # a value seen before costs no lock
        if found is not None:
            return found
        with self._lock:
            found = self._placeholders.get(key)
            if found is None:
                number = self._counters.get(key[0], 0) + 1
                self._counters[key[0]] = number
                found = self._placeholders[key] = f"<{key[0]}_{number}>"
            return found


class Vaults:
    """Vaults by (scope, episode id), in memory, bounded (least recently used go first) and
    expiring `ttl` seconds after their last use. `scope` is the caller's identity (an API key id,
    or "" without keys), so an episode id guessed by another key never reaches this one's vault."""

    def __init__(self, *, max_episodes: int = 10_000, ttl: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_episodes < 1 or ttl <= 0:
            raise ValueError("max_episodes and ttl must be positive")
        self._max = max_episodes
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._vaults: OrderedDict[tuple[str, str], tuple[Vault, float]] = OrderedDict()

    def get(self, scope: str, episode_id: str) -> Vault:
        key = (scope, episode_id)
        now = self._clock()
        with self._lock:
            # Ordered by last use, so the expired ones are all at the front.
            while self._vaults:
                _, (_, used) = next(iter(self._vaults.items()))
                if now - used < self._ttl:
                    break
                self._vaults.popitem(last=False)
            entry = self._vaults.get(key)
            vault = Vault() if entry is None else entry[0]
            self._vaults[key] = (vault, now)
            self._vaults.move_to_end(key)
            if len(self._vaults) > self._max:
                self._vaults.popitem(last=False)
            return vault

    def __len__(self) -> int:
        return len(self._vaults)


class Masking:
    """One request's masking: replaces findings by their vault's placeholders and remembers only
    the placeholders this request produced, which are all its `Reveal` restores."""

    __slots__ = ("_vault", "_values", "_counts")

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._values: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def mask(self, text: str, findings: Sequence[Finding]) -> str:
        """`text` with each finding's span replaced by its placeholder, in one pass. Findings are
        expected sorted and disjoint; any that are not are merged first, never skipped. In a
        `JsonText` a value is the string the JSON holds (its escapes undone)."""
        if not findings:
            return text
        if not _ordered(findings):
            findings = _disjoint(text, findings)
        in_json = isinstance(text, JsonText)
        pieces: list[str] = []
        at = 0
        for finding in findings:
            pieces.append(text[at:finding.start])
            value = text[finding.start:finding.end]
            if in_json and "\\" in value:
                value = _json_value(value)
            pieces.append(self._placeholder(finding.entity, value))
            at = finding.end
        pieces.append(text[at:])
        return "".join(pieces)

    def _placeholder(self, entity: str, value: str) -> str:
        placeholder = self._vault.placeholder(entity, value)
        self._values[placeholder] = value
        self._counts[entity] = self._counts.get(entity, 0) + 1
        return placeholder

    @property
    def counts(self) -> dict[str, int]:
        """Entity -> how many spans were masked (occurrences, not distinct values)."""
        return dict(self._counts)

    @property
    def masked(self) -> bool:
        """Whether any placeholder was produced."""
        return bool(self._values)

    def reveal(self) -> Reveal:
        """What restores this request's placeholders (those produced so far)."""
        return Reveal(self._values)  # Reveal copies it


def _json_value(span: str) -> str:
    """The string a span of a JSON string's content holds; the span as written when it is not
    whole content of one (it crosses a quote, or cuts an escape)."""
    try:
        value = orjson.loads(f'"{span}"')
    except orjson.JSONDecodeError:
        return span
    return value if isinstance(value, str) else span


def _ordered(findings: Sequence[Finding]) -> bool:
    at = 0
    for finding in findings:
        if finding.start < at or finding.end <= finding.start:
            return False
        at = finding.end
    return True


def _disjoint(text: str, findings: Sequence[Finding]) -> list[Finding]:
    """Findings as sorted, disjoint, non-empty spans: overlapping ones become one span (with the
    entity of the one that starts first), so a detector's overlap never leaves a value half
    unmasked."""
    spans: list[tuple[int, int, str]] = []
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        if finding.end <= finding.start:
            continue
        if spans and finding.start < spans[-1][1]:
            start, end, entity = spans[-1]
            spans[-1] = (start, max(end, finding.end), entity)
        else:
            spans.append((finding.start, finding.end, finding.entity))
    return [Finding(entity, start, end, text[start:end]) for start, end, entity in spans]


class Reveal:
    """Restores one request's placeholders; any other placeholder-shaped text stays as it is."""

    __slots__ = ("_values", "_escaped")

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._escaped: dict[str, str] | None = None  # the values as JSON string contents

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(self._values)

    def text(self, text: str) -> str:
        """`text` with this request's placeholders restored (escaped in a `JsonText`)."""
        if not self._values or "<" not in text:
            return text
        values = self._json_values() if isinstance(text, JsonText) else self._values
        return PLACEHOLDER.sub(lambda m: values.get(m[0], m[0]), text)

    def json(self, text: str) -> str:
        """`text`, JSON or a piece of it, with this request's placeholders restored as the
        contents of a JSON string: `"CORP\\\\jsmith"`, never `"CORP\\jsmith"`."""
        if not self._values or "<" not in text:
            return text
        values = self._json_values()
        return PLACEHOLDER.sub(lambda m: values.get(m[0], m[0]), text)

    def _json_values(self) -> dict[str, str]:
        if self._escaped is None:  # made once, when an answer first has JSON to reveal into
            self._escaped = {p: orjson.dumps(v).decode()[1:-1] for p, v in self._values.items()}
        return self._escaped

    def response(self, completion: dict[str, Any]) -> dict[str, Any]:
        """The completion with its content, refusals and tool-call arguments revealed (the
        completion itself when this request masked nothing)."""
        return map_response(completion, self.text) if self._values else completion

    def stream(self) -> StreamReveal:
        return StreamReveal(self)


class StreamReveal:
    """Restores placeholders in a stream of chunks, per choice and per (choice, tool call).

    A placeholder split across chunks anywhere is restored. Only a tail that could still become
    one of this request's placeholders is held back ("... contact <EMA": at most the longest
    placeholder less one character); the rest goes out at once. Held text goes out with the next
    chunk carrying the same field of the same choice or tool call, with the choice's finishing
    chunk, or from `flush()` at the end of the stream."""

    __slots__ = ("_reveal", "_longest", "_prefixes", "_held", "_last")

    def __init__(self, reveal: Reveal) -> None:
        self._reveal = reveal
        placeholders = reveal.placeholders
        self._longest = max(map(len, placeholders), default=0)
        self._prefixes = frozenset(p[:i] for p in placeholders for i in range(1, len(p)))
        self._held: dict[Slot, str] = {}
        self._last: Mapping[str, Any] = {}

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """The chunk with its deltas revealed (the chunk itself when nothing changed)."""
        choices = chunk.get("choices")
        if not self._prefixes or not isinstance(choices, list) or not choices:
            return chunk
        self._last = chunk
        new: list[Any] | None = None
        for i, choice in enumerate(choices):
            revealed = self._choice(choice) if isinstance(choice, dict) else choice
            if revealed is not choice:
                if new is None:
                    new = list(choices)
                new[i] = revealed
        return chunk if new is None else {**chunk, "choices": new}

    def flush(self) -> dict[str, Any] | None:
        """One last chunk with the text still held (tails that never became a placeholder), or
        None. Only a stream that ended without finishing its choices leaves any."""
        if not self._held:
            return None
        deltas: dict[int, dict[str, Any]] = {}
        for (index, slot), text in self._held.items():
            _put(deltas.setdefault(index, {}), slot, text)
        self._held.clear()
        envelope = {k: self._last[k] for k in ENVELOPE if k in self._last}
        return {**envelope, "choices": [{"index": i, "delta": d, "finish_reason": None}
                                        for i, d in sorted(deltas.items())]}

    def _choice(self, choice: dict[str, Any]) -> dict[str, Any]:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        index = choice.get("index", 0)
        final = choice.get("finish_reason") is not None
        out = delta
        for field in ("content", "refusal"):
            text = delta.get(field)
            if isinstance(text, str):
                revealed = self._feed((index, field), text, final)
                if revealed is not text:
                    out = copy_on_write(out, delta, field, revealed)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            new_calls: list[Any] | None = None
            for j, call in enumerate(calls):
                revealed_call = self._call(index, j, call, final)
                if revealed_call is not call:
                    if new_calls is None:
                        new_calls = list(calls)
                    new_calls[j] = revealed_call
            if new_calls is not None:
                out = copy_on_write(out, delta, "tool_calls", new_calls)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
            arguments = legacy["arguments"]
            revealed = self._feed((index, "function_call"), arguments, final, in_json=True)
            if revealed is not arguments:
                out = copy_on_write(out, delta, "function_call", {**legacy, "arguments": revealed})
        if final and self._held:
            for slot in [s for s in self._held if s[0] == index]:
                if out is delta:
                    out = dict(delta)
                _put(out, slot[1], self._held.pop(slot))
        return choice if out is delta else {**choice, "delta": out}

    def _call(self, index: int, position: int, call: Any, final: bool) -> Any:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
            return call
        arguments = function["arguments"]
        revealed = self._feed((index, call.get("index", position)), arguments, final,
                              in_json=True)
        if revealed is arguments:
            return call
        return {**call, "function": {**function, "arguments": revealed}}

    def _feed(self, slot: Slot, text: str, final: bool, *, in_json: bool = False) -> str:
        """What of the slot's held text and `text` can go out now, revealed (escaped in
        arguments, which are JSON)."""
        held = self._held.pop(slot, None)
        if held is None:
            if "<" not in text:
                return text
        else:
            text = held + text
        if not final:
            # A tail worth holding starts at the last "<" and is a proper prefix of one of this
            # request's placeholders; none is as long as the longest placeholder.
            cut = text.rfind("<", max(0, len(text) - self._longest + 1))
            if cut >= 0 and text[cut:] in self._prefixes:
                self._held[slot] = text[cut:]
                text = text[:cut]
        return self._reveal.json(text) if in_json else self._reveal.text(text)


def _put(delta: dict[str, Any], slot: int | str, text: str) -> None:
    """Adds held text to a delta at its slot (a field, or a tool call by its index)."""
    if isinstance(slot, int):
        calls = list(delta.get("tool_calls") or ())
        calls.insert(0, {"index": slot, "function": {"arguments": text}})
        delta["tool_calls"] = calls
    elif slot == "function_call":
        legacy = delta.get("function_call")
        delta["function_call"] = {**(legacy if isinstance(legacy, dict) else {}),
                                  "arguments": text}
    else:
        delta[slot] = text

