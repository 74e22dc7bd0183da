"""What detection reports: a `Finding` (an entity's span in a text), and how overlapping
findings are settled (`settle`).

On overlap the more specific entity wins (`SPECIFICITY`: a card number is not also a phone
number), and between two of the same rank the longer one; what is left never overlaps, so each
finding can be replaced by a placeholder on its own.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

# Most specific first. The company's patterns come before the loosely shaped built-ins (an
# order-number pattern beats a phone number); dictionaries and any other entity come last.
SPECIFICITY = ("secret", "card", "iban", "national_id", "pattern", "email", "phone", "ip")


@dataclass(frozen=True, slots=True)
class Finding:
    """An entity found in a text: `text[start:end]` is `text`. `detail` says which kind when
    there are several (`aws_access_key`, `jwt`, `us_ssn`, `gb_nino`, the dictionary's or the
    pattern's name)."""

    entity: str
    start: int
    end: int
    text: str
    detail: str | None = None


_RANKS = {entity: rank for rank, entity in enumerate(SPECIFICITY)}


def _rank(finding: Finding, patterns: frozenset[str]) -> int:
    if (rank := _RANKS.get(finding.entity)) is not None:
        return rank
    return _RANKS["pattern"] if finding.detail in patterns else len(SPECIFICITY)


def settle(findings: Iterable[Finding], patterns: frozenset[str] = frozenset()) -> list[Finding]:
    """`findings` without overlaps, sorted by start: on overlap the more specific entity is kept,
    then the longer, then the earlier. `patterns`: the details of the company's pattern findings,
    ranked as "pattern" whatever entity they report."""
    ordered = sorted(findings, key=lambda f: f.start)
    if all(a.end <= b.start for a, b in zip(ordered, ordered[1:], strict=False)):
        return ordered
    ordered = sorted(set(findings), key=lambda f: (_rank(f, patterns), f.start - f.end, f.start,
                                                    f.entity, f.detail or ""))
    starts: list[int] = []  # of the findings kept, which never overlap: sorted by start
    kept: list[Finding] = []
    for finding in ordered:
        at = bisect_right(starts, finding.start)
        if at and kept[at - 1].end > finding.start:
            continue
        if at < len(kept) and kept[at].start < finding.end:
            continue
        starts.insert(at, finding.start)
        kept.insert(at, finding)
    return kept
