"""The detector: every entity of issue 14 in one text, as non-overlapping `Finding`s.

`Detector.find` runs only the passes the asked entities need: secrets (secrets.py), the
structured entities (structured.py), the company's dictionaries and patterns (dictionaries.py),
then settles overlaps (entities.py). Overlaps are settled among the entities asked only: asked
for phones alone, it reports a phone number inside a card number, since no card will cover it.

Person names and street addresses come from the company's `[dictionaries]` (entity "person",
"address") and from nothing else. No statistical recognizer installs offline from PyPI with its
weights (spaCy's pipelines are not on PyPI: `pip download en-core-web-sm` finds no such
distribution; the look-alikes there are re-uploads by third parties). Faker's bundled name lists
were not taken either: a common-names list marks "Grant", "May", "Will" and "Bill" in prose,
and the benchmark corpus is generated from the same lists, so its recall would flatter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType

from veteran.config import Config
from veteran.policies.dictionaries import Dictionaries, Patterns
from veteran.policies.entities import Finding, settle
from veteran.policies.secrets import secrets
from veteran.policies.structured import find_structured
from veteran.policies.walk import JsonText, find_in_json
from veteran.policy_settings import BUILTIN_ENTITIES, DictionaryConfig, PatternConfig

_NO_DICTIONARIES: Mapping[str, DictionaryConfig] = MappingProxyType({})
_NO_PATTERNS: Mapping[str, PatternConfig] = MappingProxyType({})


class Detector:
    """Finds the entities of `veteran.policy_settings.BUILTIN_ENTITIES` and those of the
    company's dictionaries and patterns. Built once per config (it reads the dictionaries'
    files and compiles everything); `find` is safe to call from many threads at once."""

    def __init__(self, *, dictionaries: Mapping[str, DictionaryConfig] = _NO_DICTIONARIES,
                 patterns: Mapping[str, PatternConfig] = _NO_PATTERNS,
                 folder: Path | None = None) -> None:
        self._dictionaries = Dictionaries(dictionaries, folder)
        self._patterns = Patterns(patterns)
        self._secrets = secrets()
        extra = [d.entity for d in dictionaries.values()] + [p.entity for p in patterns.values()]
        self._entities = list(dict.fromkeys((*BUILTIN_ENTITIES, *extra)))
        self._all = frozenset(self._entities)

    @classmethod
    def for_config(cls, config: Config) -> Detector:
        """The detector of a config: its dictionaries' files are read from `config.folder`."""
        return cls(dictionaries=config.dictionaries, patterns=config.patterns,
                   folder=config.folder)

    def entities(self) -> list[str]:
        """Every entity type this detector can report."""
        return list(self._entities)

    def find(self, text: str, entities: Collection[str] | None = None) -> list[Finding]:
        """The entities in `text` (only those of `entities`; None: all), sorted by start and
        never overlapping."""
        wanted = self._all if entities is None else self._all & frozenset(entities)
        if not text or not wanted:
            return []
        if isinstance(text, JsonText) and "\\" in text:  # read its escapes as what they stand for
            return find_in_json(text, lambda view: self.find(view, wanted))
        found = self._secrets.find(text) if "secret" in wanted else []
        found += find_structured(text, wanted)
        found += self._dictionaries.find(text, wanted)
        found += self._patterns.find(text, wanted)
        if len(found) < 2:
            return found
        return settle(found, self._patterns.names)
