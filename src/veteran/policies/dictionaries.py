"""The company's own terms (`[dictionaries.NAME]`: customers, code names, people, addresses) and
patterns (`[patterns.NAME]`).

Terms are found as whole words (a term's edge that is a letter, digit or `_` must not touch
another), ignoring case unless the dictionary says `case_sensitive`. All the terms are one
Aho-Corasick automaton (pyahocorasick) per case mode, run once over the text: 15 to 40 ms a
megabyte from 10 to 20,000 terms on a busy 2-core machine, where one case-insensitive regex
alternation of 1,000 terms took 5 s (a trie-shaped one 0.2 s). Ignoring case lowers the text
first: 1 ms a megabyte of ASCII, about 25 ms of other text.
Person names and street addresses are found only this way (no statistical recognizer installs
offline from PyPI with its weights: docs/policies.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import ahocorasick

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
        self._automata: list[tuple[bool, ahocorasick.Automaton]] = []
        for case_sensitive in (False, True):
            automaton = ahocorasick.Automaton()
            for name, dictionary in dictionaries.items():
                if dictionary.case_sensitive != case_sensitive:
                    continue
                for term in read_terms(name, dictionary, folder):
                    key = term if case_sensitive else term.lower()
                    if key not in automaton:  # the first dictionary to name a term has it
                        automaton.add_word(key, (len(key), dictionary.entity, name))
            if len(automaton):
                automaton.make_automaton()
                self._automata.append((case_sensitive, automaton))

    def find(self, text: str, entities: frozenset[str]) -> Iterator[Finding]:
        if not self.entities & entities:
            return
        for case_sensitive, automaton in self._automata:
            haystack = text if case_sensitive else _lower(text)
            for last, (size, entity, name) in automaton.iter(haystack):
                start, end = last + 1 - size, last + 1
                if entity not in entities:
                    continue
                if _word(text[start]) and start > 0 and _word(text[start - 1]):
                    continue
                if _word(text[end - 1]) and end < len(text) and _word(text[end]):
                    continue
                yield Finding(entity, start, end, text[start:end], name)


class Patterns:
    """The company's patterns, compiled once."""

    def __init__(self, patterns: Mapping[str, PatternConfig]) -> None:
        self.names = frozenset(patterns)
        self._compiled = [(name, p.entity, re.compile(p.regex)) for name, p in patterns.items()]

    def find(self, text: str, entities: frozenset[str]) -> Iterator[Finding]:
        for name, entity, pattern in self._compiled:
            if entity in entities:
                for m in pattern.finditer(text):
                    if m.end() > m.start():
                        yield Finding(entity, m.start(), m.end(), m.group(), name)
