"""Deterministic splits by group: the one rule evaluations (`veteran.evals.datasets.split`)
and curation (`veteran.datasets.curate`) both split by, so an episode lands in the same split
whichever of them made it. It lives here, below evals, so curation need not reach into evals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


def _unit(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by(
    items: Sequence[T], key: Callable[[T], str], fractions: Mapping[str, float], *, seed: int = 0
) -> dict[str, list[T]]:
    """Items split by group: a hash of (seed, `key(item)`) picks each group's split, so items
    with one key always land together. `ValueError` when a fraction is not above 0 (callers
    check their users' input first and raise their own error)."""
    fractions = dict(fractions)
    if not fractions or any(not v > 0 for v in fractions.values()):
        raise ValueError(f"split fractions must be positive: {fractions}")
    total = sum(fractions.values())
    bounds: list[tuple[float, str]] = []
    running = 0.0
    for name, fraction in fractions.items():
        running += fraction / total
        bounds.append((running, name))
    out: dict[str, list[T]] = {name: [] for name in fractions}
    for item in items:
        u = _unit(key(item), seed)
        name = next((n for bound, n in bounds if u < bound), bounds[-1][1])
        out[name].append(item)
    return out
