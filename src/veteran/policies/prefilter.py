"""`Prefilter`: which of many regexes may match a text, in one compiled scan (Hyperscan).

Python's `re` runs one pattern at a time; the secret rules are some sixty (detect-secrets'
plugins and veteran's own), each woken until now by an Aho-Corasick pass over literals and
then run on the lines around them (secrets.py). Hyperscan compiles all the patterns into one
automaton and scans a text once, in native code, saying which patterns matched: only those run
again in `re`, which finds the exact spans. Measured on this project's 2-core machine: a 1 KB
message with an AWS key 8.6 -> 3.8 us, without any secret 1.9 us; the labelled corpus's
secrets pass 14.4 -> 8.6 us a text (bench/detection.py has the whole detector).

A prefilter must never say "no" where `re` would say "yes", so it answers only where the two
engines read a pattern alike, and says so by returning None elsewhere (the caller then runs
its patterns the old way):
- ASCII texts only: there `\\w`, `\\d`, `\\b` and case folding mean the same in both; Python's
  `\\s` also matches the separators U+001C to U+001F, Hyperscan's does not, so a text holding
  one of those is not taken either.
- A pattern Hyperscan cannot compile as written (lookarounds, back-references) is compiled in
  its prefilter mode, which matches a superset of what the pattern matches; one it cannot
  compile at all, or one written in syntax the two read differently (`{,3}`, `[[:`), wakes on
  every text. tests/policies/test_prefilter.py holds the detector's own rules to the same
  findings both ways, on the labelled corpus and on made-up texts.
- Without the `hyperscan` package (it ships wheels for x86-64 and ARM Linux and for macOS),
  or on a CPU it does not support, `build` returns None and nothing changes but the speed.

Thread-safety: a scan needs its own scratch space; each thread gets one, cloned on first use.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any, cast

log = logging.getLogger(__name__)

# Whitespace to Python (`\s`, `str.isspace`) and not to Hyperscan: a text with one is not
# taken. The scan itself finds them, as one more expression.
_PYTHON_ONLY_SPACE = rb"[\x1c-\x1f]"
# Syntax that both engines accept and read differently: `a{,3}` is `a{0,3}` to Python and the
# literal text to Hyperscan; `[[:alpha:]]` a POSIX class to Hyperscan, a set of `[:alph` and
# `]` to Python. A pattern holding one wakes on every text.
_READ_OTHERWISE = ("{,", "[[:")


class Prefilter:
    """Which of `patterns` may match an ASCII text (their indexes, in order); see the module."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        import hyperscan as hs  # noqa: PLC0415 (optional at run time: `build` catches its absence)

        expressions: list[bytes] = []
        flags: list[int] = []
        ids: list[int] = []
        self._always: list[int] = []  # patterns Hyperscan cannot read: woken on every text
        for index, pattern in enumerate(patterns):
            compiled = _compiled(hs, pattern)
            if compiled is None:
                self._always.append(index)
                continue
            expressions.append(compiled[0])
            flags.append(compiled[1])
            ids.append(index)
        self._unreadable = len(patterns)  # the id of `_PYTHON_ONLY_SPACE`
        expressions.append(_PYTHON_ONLY_SPACE)
        flags.append(hs.HS_FLAG_SINGLEMATCH)
        ids.append(self._unreadable)
        self._database = hs.Database()
        self._database.compile(expressions=expressions, ids=ids, elements=len(ids), flags=flags)
        self._scratch = hs.Scratch(self._database)
        self._local = threading.local()

    def matched(self, text: str) -> list[int] | None:
        """The indexes of the patterns that may match `text`, ascending; None when `text` is
        not one this prefilter can judge (not ASCII, or holding a separator only Python calls
        whitespace): the caller must run every pattern its own way."""
        if not text.isascii():
            return None
        hit: list[int] = []
        self._database.scan(text.encode("ascii"), match_event_handler=_collect, context=hit,
                            scratch=self._thread_scratch())
        if self._unreadable in hit:
            return None
        if self._always:
            return sorted({*hit, *self._always})
        return sorted(hit)

    def _thread_scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch.clone()
        return scratch


def _collect(index: int, start: int, end: int, flags: int, hit: object) -> None:
    cast(list[int], hit).append(index)  # once a pattern (HS_FLAG_SINGLEMATCH)


def _compiled(hs: Any, pattern: re.Pattern[str]) -> tuple[bytes, int] | None:
    """`pattern` as Hyperscan reads it, with its flags: exact if it can, else as a superset
    (prefilter mode); None when it cannot be read at all."""
    if not pattern.pattern.isascii() or any(s in pattern.pattern for s in _READ_OTHERWISE):
        return None
    source = ("(?x)" if pattern.flags & re.VERBOSE else "") + pattern.pattern
    flags = hs.HS_FLAG_SINGLEMATCH  # which patterns matched, not where: `re` finds the spans
    flags |= hs.HS_FLAG_CASELESS if pattern.flags & re.IGNORECASE else 0
    flags |= hs.HS_FLAG_MULTILINE if pattern.flags & re.MULTILINE else 0
    flags |= hs.HS_FLAG_DOTALL if pattern.flags & re.DOTALL else 0
    for mode in (0, hs.HS_FLAG_PREFILTER):
        try:
            hs.Database().compile(expressions=[source.encode()], ids=[0], elements=1,
                                  flags=[flags | mode])
        except hs.error:
            continue
        return source.encode(), flags | mode
    return None


def build(patterns: Sequence[re.Pattern[str]]) -> Prefilter | None:
    """A `Prefilter` of `patterns`, or None where Hyperscan is not installed or cannot run."""
    try:
        return Prefilter(patterns)
    except ImportError:
        return None
    except Exception as exc:  # hyperscan.error (a CPU without SSSE3, a database too large)
        log.warning("the Hyperscan prefilter is off (%s); patterns run one at a time", exc)
        return None
