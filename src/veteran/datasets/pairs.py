"""Preference pairs: two answers to one prompt, the better one preferred (see `curate`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from veteran.datasets.dedupe import normalize
from veteran.datasets.rows import Row, reference_of, same_answer, score
from veteran.datasets.types import Example


@dataclass(frozen=True, slots=True)
class Pair:
    preferred: Row
    chosen: dict[str, Any]
    other: Row  # the trajectory whose answer is rejected (the same one for a correction)
    rejected: dict[str, Any]
    source: Literal["demonstration", "rating"]

    @property
    def text(self) -> str:
        return self.preferred.text

    @property
    def created_at(self) -> float:
        return self.preferred.created_at

    @property
    def corrected(self) -> bool:
        return self.source == "demonstration"

    @property
    def members(self) -> tuple[str, str]:
        return self.preferred.id, self.other.id


def best_pairs(rows: list[Row], *, rated: bool, lower_is_better: bool) -> list[Pair]:
    """Every correction's pair, and (`rated`) per normalised prompt the best-rated answer over
    the worst-rated one; in the preferred trajectory's time order."""
    pairs = [
        Pair(row, row.demonstration, row, row.answer, "demonstration")
        for row in rows
        if row.demonstration is not None and row.answer is not None
        and not same_answer(row.demonstration, row.answer)
    ]
    if rated:
        groups: dict[str, list[tuple[float, Row]]] = defaultdict(list)
        for row in rows:
            value = score(row.rating, lower_is_better)
            if value is not None and row.answer is not None:
                key = normalize(row.text) + "\x00" + orjson.dumps(row.tools).decode()
                groups[key].append((value, row))
        for group in groups.values():
            # ties: the latest of the best, the latest of the worst
            best = max(group, key=lambda vr: (vr[0], vr[1].created_at))
            worst = min(group, key=lambda vr: (vr[0], -vr[1].created_at))
            if best[0] > worst[0] and best[1].answer and worst[1].answer and not same_answer(
                best[1].answer, worst[1].answer
            ):
                pairs.append(Pair(best[1], best[1].answer, worst[1], worst[1].answer, "rating"))
    return sorted(pairs, key=lambda p: (p.created_at, p.preferred.id))


def preference_examples(pairs: list[Pair]) -> list[Example]:
    return [
        Example(
            id=p.preferred.id, episode_id=p.preferred.episode_id, prompt=p.preferred.prompt,
            completion=p.chosen, rejected=p.rejected, reference=reference_of(p.chosen),
            tools=p.preferred.tools,
            metadata={**p.preferred.metadata, "pair": p.source, "rejected_id": p.other.id,
                      "rejected_episode_id": p.other.episode_id},
        )
        for p in pairs
    ]
