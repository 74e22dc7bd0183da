"""What detection reports: a `Finding` (an entity's span in a text), and how overlapping
findings are settled (`settle`).

On overlap the more specific entity wins (`SPECIFICITY`: a card number is not also a phone
number), and between two of the same rank the longer one; what is left never overlaps, so each
finding can be replaced by a placeholder on its own. But containment comes first: a built-in
entity that wholly contains a shorter finding ranks as that finding does, so the longer span wins
(a valid spaced IBAN often has a Luhn-valid card number among its digits: the IBAN is reported).
What is contained is covered by its container's placeholder either way.
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
# The built-in entities whose findings outrank what they wholly contain (a company's pattern or
# dictionary is not one of them).
_CONTAINERS = frozenset(SPECIFICITY) - {"pattern"}


def _rank(finding: Finding, patterns: frozenset[str]) -> int:
    if (rank := _RANKS.get(finding.entity)) is not None:
        return rank
    return _RANKS["pattern"] if finding.detail in patterns else len(SPECIFICITY)


def settle(findings: Iterable[Finding], patterns: frozenset[str] = frozenset()) -> list[Finding]:
    """`findings` without overlaps, sorted by start: on overlap the more specific entity is kept
    (a built-in entity as specific as the most specific finding it wholly contains), then the
    longer, then the earlier. `patterns`: the details of the company's pattern findings, ranked
    as "pattern" whatever entity they report."""
    ordered = sorted(findings, key=lambda f: f.start)
    if all(a.end <= b.start for a, b in zip(ordered, ordered[1:], strict=False)):
        return ordered
    ranks = _ranks(sorted(set(findings), key=lambda f: (f.start, -f.end)), patterns)
    ordered = sorted(ranks, key=lambda f: (ranks[f], f.start - f.end, f.start, f.entity,
                                           f.detail or ""))
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


def _ranks(ordered: list[Finding], patterns: frozenset[str]) -> dict[Finding, int]:
    """Each finding's rank (`ordered`: by start, the longer first), a built-in entity's lowered
    to the best rank of the shorter findings it wholly contains."""
    own = [_rank(f, patterns) for f in ordered]
    ranks = dict(zip(ordered, own, strict=True))
    for at, outer in enumerate(ordered):
        if outer.entity not in _CONTAINERS:
            continue
        for inner in range(at + 1, len(ordered)):  # those that start inside it, a few
            finding = ordered[inner]
            if finding.start >= outer.end:
                break
            if own[inner] < ranks[outer] and finding.end <= outer.end and (
                    finding.start, finding.end) != (outer.start, outer.end):
                ranks[outer] = own[inner]
    return ranks
