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

Speed. Every finding is the same as before the work on speed (held on the corpus and on 30,000
made-up texts against the first version); what changed, and why:
- One regex pass for every shape that starts with a digit, a capital, `+` or `(`, refusing a
  position inside a word before anything else (structured.py): a 1 KB text with no entity went
  from 50 to 15 us, of which that pass is 10.
- Cheap checks before the libraries, and the libraries' data not their parsers: phone numbers by
  phonenumbers' own metadata compiled once per region (phones.py, 3 to 6 us where parse and
  is_valid_number took 60 to 130; phonenumbers itself only for a national prefix after the
  code), IBANs by their country's length and BBAN shape from python-stdnum's registry and MOD
  97-10 (10 us where stdnum.iban took 50 to 200), cards by prefix and length before Luhn, bare
  ids only after one of their names.
- The dearer library checks are memoised by a keyed BLAKE2b digest of the value, never the
  value (memo.py, 65,536 answers a validator): a chat resends its history every turn.
- Aho-Corasick by ahocorasick-rs (5 ns a character; pyahocorasick's `iter` took 28), one
  automaton for the secrets' literals and one for every dictionary term; detect-secrets' keyword
  rules run only on a line with a keyword assigned a long value; a company pattern that starts
  with `\\b` is searched without it (40 ns a character with it, 6 without).
- The secret rules behind one Hyperscan scan (prefilter.py): only the rules it says may match
  run in `re` (secrets on 1 KB with an AWS key 8.6 -> 3.8 us; the corpus 4.7 -> 5.2 MB/s, the
  medians of six alternating runs (bench/detection_ab.py), on a machine where
  `sum(range(1000))` takes 11 us; 6.2 at its fastest moment). In a serving gateway the same
  1 KB costs 12 to 20 us the first time (the scan's tables and the code are cold between
  requests; 9.5 us for the scan alone), 7 us again.
Measured with `time.process_time`, the best of many short runs, on this project's 2-core machine
(shared and loaded; `python -m timeit "sum(range(1000))"` takes 24 us there, about 2.5 times a
current laptop), before -> after: a 1 KB business e-mail with an e-mail address, a phone number
and an IBAN, every entity, 360 -> 77 us the first time its values are seen, 178 -> 72 us after;
the same 1 KB without any entity 48 -> 15 us (with the company's dictionaries and pattern of
bench/detection.py: 106 -> 23 us); secrets alone on 1 KB 35 -> 8 us; the labelled corpus (3,000
texts, 0.79 MB, two or three entities in every 263 bytes) 1.5 -> 2.5 MB/s with every memo
cleared first (bench/detection.py, wall, over several runs: 1.2-1.7 -> 2.0-2.7 MB/s). So the
issue's targets are not met on this machine: 10 MB/s a core on the corpus (2.5 here), under 60
us a 1 KB message with entities (72 to 77 here; 15 without any, 67 MB/s). What is left is
spread thin: of a corpus text's 100 us, the scanning passes take about 25, the validators 10,
the secret rules 10, and Python's calls and findings the rest. After the prefilter, on the
faster machine: 43 to 55 us a corpus text, of which the structured pass (one `re` scan at about 27
ns a character, then each candidate judged in Python) is 26, the dictionaries and pattern 8 to
10, secrets 5 (ASCII texts) to 14 (others); 10 MB/s needs the structured pass compiled.
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
