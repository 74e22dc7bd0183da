r"""The company's own terms (`[dictionaries.NAME]`: customers, code names, people, addresses) and
patterns (`[patterns.NAME]`).

Terms are found as whole words (a term's edge that is a letter, digit or `_` must not touch
another), ignoring case unless the dictionary says `case_sensitive`. All the terms are one
Aho-Corasick automaton (ahocorasick-rs) run once over the lowered text; a case-sensitive term
is found lowered and then compared with the text. With 840 or 20,000 terms that is 6 to 10 ns
a character (pyahocorasick's `iter`, one automaton per case mode: 28 ns each), where one
case-insensitive regex alternation of 1,000 terms took 5 s a megabyte (a trie-shaped one
0.2 s). Lowering the text costs 1 ns a character of ASCII, about 25 of other text.
Person names and street addresses are found only this way (no statistical recognizer installs
offline from PyPI with its weights: docs/policies.md).

A pattern that starts with `\b` is searched without it and the boundary checked after: `re`
skips ahead quickly only to a literal or a class that starts a pattern, so `\bPRJ-\d{4}\b`
took 40 ns a character and `PRJ-\d{4}\b` 6.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from ahocorasick_rs import AhoCorasick

from veteran.errors import ConfigError
from veteran.policies.entities import Finding
from veteran.policy_settings import DictionaryConfig, PatternConfig


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def read_terms(name: str, dictionary: DictionaryConfig, folder: Path | None) -> list[str]:
    """A dictionary's inline terms, then its file's (one a line, '#' starts a comment)."""
    terms = [t.strip() for t in dictionary.terms]
    if dictionary.file is not None:
        path = Path(dictionary.file) if folder is None else folder / dictionary.file
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("veteran.toml", f"dictionaries.{name}.file",
                              f"cannot read {path}: {exc}") from None
        terms += [t for line in lines if (t := line.split("#", 1)[0].strip())]
    return terms


def _lower(text: str) -> str:
    """`text` in lower case, each character kept in its place (a few, like 'İ', would grow)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


class Dictionaries:
    """The company's dictionaries, compiled once."""

    def __init__(self, dictionaries: Mapping[str, DictionaryConfig], folder: Path | None) -> None:
        self.entities = frozenset(d.entity for d in dictionaries.values())
        # Each lowered key's owners: (the exact term for a case-sensitive one, entity, name);
        # the first dictionary to name a term has it.
        owners: dict[str, dict[tuple[bool, str], tuple[str | None, str, str]]] = {}
        for name, dictionary in dictionaries.items():
            exact = dictionary.case_sensitive
            for term in read_terms(name, dictionary, folder):
                if term:
                    owners.setdefault(_lower(term), {}).setdefault(
                        (exact, term if exact else ""),
                        (term if exact else None, dictionary.entity, name))
        self._owners = [tuple(by_term.values()) for by_term in owners.values()]
        self._automaton = AhoCorasick(list(owners)) if owners else None

    def find(self, text: str, entities: frozenset[str]) -> Iterator[Finding]:
        if self._automaton is None or not self.entities & entities:
            return
        for index, start, end in self._automaton.find_matches_as_indexes(_lower(text),
                                                                         overlapping=True):
            if _word(text[start]) and start > 0 and _word(text[start - 1]):
                continue
            if _word(text[end - 1]) and end < len(text) and _word(text[end]):
                continue
            for exact, entity, name in self._owners[index]:
                if entity in entities and (exact is None or text[start:end] == exact):
                    yield Finding(entity, start, end, text[start:end], name)


class Patterns:
    """The company's patterns, compiled once."""

    def __init__(self, patterns: Mapping[str, PatternConfig]) -> None:
        self.names = frozenset(patterns)
        self._compiled = [(name, p.entity, re.compile(p.regex), _after_boundary(p.regex))
                          for name, p in patterns.items()]

    def find(self, text: str, entities: frozenset[str]) -> Iterator[Finding]:
        for name, entity, pattern, unbounded in self._compiled:
            if entity in entities:
                matches = (pattern.finditer(text) if unbounded is None
                           else _at_boundaries(unbounded, text))
                for m in matches:
                    if m.end() > m.start():
                        yield Finding(entity, m.start(), m.end(), m.group(), name)


def _after_boundary(regex: str) -> re.Pattern[str] | None:
    """`regex` without the `\\b` it starts with, when what follows is one branch (a `|` outside
    every group would make the `\\b` one of two alternatives); else None."""
    if not regex.startswith("\\b") or _branches(regex[2:]):
        return None
    return re.compile(regex[2:])


def _branches(regex: str) -> bool:
    """`regex` has a `|` outside every group and character class."""
    depth, at, in_class = 0, 0, False
    while at < len(regex):
        c = regex[at]
        if c == "\\":
            at += 1  # the escaped character
        elif in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            at += regex.startswith("^", at + 1)
            at += regex.startswith("]", at + 1)  # a ']' first in a class is itself
        elif c in "()":
            depth += 1 if c == "(" else -1
        elif c == "|" and depth == 0:
            return True
        at += 1
    return False


def _at_boundaries(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """The matches of `\\b` + `pattern`: those of `pattern` that start at a word's edge, found as
    `finditer` would (a match found at a position without an edge is dropped and the search
    goes on from the next position)."""
    at = 0
    while (m := pattern.search(text, at)) is not None:
        start = m.start()
        before = start > 0 and _word(text[start - 1])
        if before != (start < len(text) and _word(text[start])):
            yield m
            at = max(m.end(), start + 1)
        else:
            at = start + 1
