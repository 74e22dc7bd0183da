"""Curation: a function's trajectories turned into training examples, filtered, de-duplicated
and split by episode.

Evaluation calls (tagged with one of the store's `EVAL_TAGS`: eval samples, judges, pairwise
judges, canaries) are left out unless `Filters.include_evals`: their inputs are test inputs, and
a model trained on them is then measured on what it memorised. The store query leaves them out;
`counts["evals_excluded"]` says how many there were.

One pass reads the matching trajectories from the store (oldest first) and keeps, per kind:

- `sft` and `environment`: the prompt and the answer to learn: the latest demonstration (a
  feedback on a metric of type `demonstration`, or one named `demonstration`), else the
  trajectory's own answer when its `metric` rating passes (any, when no metric is asked). A
  corrected trajectory is kept even when its rating failed: a correction usually comes
  because the answer was wrong, and the correction is what is learnt.
  With `Filters.label` (a metric of type `label`, e.g. a reviewer's "confidential" / "public"),
  the answer to learn is the trajectory's latest label instead, as the assistant's whole answer:
  the data a `classifier` learns from. A demonstration does not override it (the label is the
  truth asked for); trajectories without the label are left out (`without_target`), and so are
  those whose `metric` rating does not pass, when a metric is given: there it only chooses
  which labelled trajectories count (say, those a reviewer marked `reviewed`). Refused: a
  `label` that is no label metric, or one asked with `preference` (labels order nothing), with
  `corrected` (a label is learnt corrected or not) or equal to `metric`.
- `preference`: pairs of answers to one prompt: (a) a demonstration over the trajectory's own
  different answer; (b) among trajectories with the same normalised prompt rated on `metric`,
  the best rated over the worst (true over false, higher over lower, or lower over higher for
  a metric declared `optimize = "min"`). Labels and comments do not order answers.

Near-identical inputs are then reduced to one (`dedupe`, see `dedupe.py`): the one with a
demonstration, else the latest. Only then are examples split, so near-copies never straddle
train and test. The split hashes (seed, episode) as `veteran.evals` does (one rule, in
`splits.py`), keeping episodes whole; a preference pair binds its two trajectories' episodes
together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar, get_args

from veteran.config import Config
from veteran.datasets import dedupe as near
from veteran.datasets.errors import CurationError
from veteran.datasets.pairs import best_pairs, preference_examples
from veteran.datasets.rows import (
    DEMONSTRATION,
    Row,
    assistant_message,
    passes,
    read_row,
    reference_of,
)
from veteran.datasets.splits import split_by
from veteran.datasets.types import Example, Kind
from veteran.store import Store, TrajectoryFilter

KINDS: tuple[str, ...] = get_args(Kind)
DEFAULT_SPLIT: dict[str, float] = {"train": 0.9, "test": 0.1}
COUNTS = ("evals_excluded", "read", "not_ok", "not_corrected", "without_target", "duplicates",
          "over_limit", "kept")
T = TypeVar("T")
EVALS_STEP = "evals"  # _nothing_left's step that leaves evaluation calls out
SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # also a file name


@dataclass(frozen=True)
class Filters:
    since: float | None = None  # UNIX seconds, inclusive
    until: float | None = None  # exclusive
    tags: dict[str, str] = field(default_factory=dict)
    variant: str | None = None
    metric: str | None = None  # keep trajectories with feedback on this metric ...
    value: Any = None  # ... whose latest value equals this; None: positive (true / > 0)
    corrected: bool = False  # only trajectories corrected by a demonstration
    limit: int | None = None  # the latest N after filtering
    include_evals: bool = False  # keep evaluation calls (tagged with the store's EVAL_TAGS)
    label: str | None = None  # learn this label metric's latest value (sft, environment)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Filters:
        """Filters from `to_json`'s shape; keys it does not know (a manifest's) are ignored."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Curated:
    function: str
    kind: Kind
    filters: Filters
    splits: dict[str, list[Example]]  # e.g. {"train": [...], "test": [...]}
    counts: dict[str, int]  # read, not_ok, ..., kept, and the size of each split
    seed: int
    fractions: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPLIT))
    dedupe: float | None = 0.9

    def settings(self) -> dict[str, Any]:
        """Everything that decided the rows, for a manifest."""
        return {**self.filters.to_json(), "kind": self.kind, "split": self.fractions,
                "dedupe": self.dedupe}


def curate(
    store: Store, config: Config, function: str, filters: Filters = Filters(), *,
    kind: Kind = "sft", split: Mapping[str, float] | None = None, seed: int = 0,
    dedupe: float | None = 0.9,
) -> Curated:
    """`function`'s trajectories as examples of `kind`, split by episode (see the module)."""
    fn = config.functions.get(function)
    if fn is None:
        known = ", ".join(sorted(config.functions)) or "none"
        raise CurationError(f"unknown function {function!r} (functions: {known})")
    if kind not in KINDS:
        raise CurationError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    fractions = check_split(split if split is not None else DEFAULT_SPLIT)
    _check(filters, dedupe)
    _check_label(config, filters, kind)
    demonstrations = {n for n, m in config.metrics.items() if m.type == "demonstration"}
    demonstrations.add(DEMONSTRATION)
    declared = config.metrics.get(filters.metric) if filters.metric else None
    counts = dict.fromkeys(COUNTS, 0)
    rows: list[Row] = []
    query = TrajectoryFilter(function=function, variant=filters.variant, since=filters.since,
                             until=filters.until, metric=filters.metric, tags=dict(filters.tags),
                             evals=None if filters.include_evals else False)
    if not filters.include_evals:
        counts["evals_excluded"] = store.count(replace(query, evals=True))
    for trajectory in store.export(query):
        counts["read"] += 1
        row = read_row(trajectory, fn.system, demonstrations, filters.metric, filters.label)
        if row is None:
            counts["not_ok"] += 1
        elif filters.corrected and row.demonstration is None:
            counts["not_corrected"] += 1
        else:
            rows.append(row)
    if kind == "preference":
        pairs = best_pairs(rows, rated=filters.metric is not None and not filters.corrected,
                           lower_is_better=declared is not None and declared.optimize == "min")
        counts["without_target"] = len(rows) - len({i for p in pairs for i in p.members})
        labels = near.clusters([p.text for p in pairs], dedupe)
        kept_pairs = _one_per_cluster(pairs, labels, lambda p: (p.corrected, p.created_at))
        counts["duplicates"] = len(pairs) - len(kept_pairs)
        examples = preference_examples(kept_pairs)
    else:
        targets = [(r, t) for r in rows if (t := _target(r, filters)) is not None]
        counts["without_target"] = len(rows) - len(targets)
        labels = near.clusters([r.text for r, _ in targets], dedupe)
        corrected_first = filters.label is None  # a label is learnt whether corrected or not
        kept = _one_per_cluster(targets, labels, lambda rt: (
            corrected_first and rt[0].demonstration is not None, rt[0].created_at))
        counts["duplicates"] = len(targets) - len(kept)
        examples = [_example(r, t) for r, t in kept]
    if filters.limit is not None and len(examples) > filters.limit:
        counts["over_limit"] = len(examples) - filters.limit
        examples = examples[-filters.limit:]
    if not examples:
        raise CurationError(_nothing_left(store, function, filters, kind, counts))
    counts["kept"] = len(examples)
    splits = split_by(examples, _group_keys(examples), fractions, seed=seed)
    counts.update({name: len(part) for name, part in splits.items()})
    return Curated(function=function, kind=kind, filters=filters, splits=splits, counts=counts,
                   seed=seed, fractions=fractions, dedupe=dedupe)


def check_split(split: Mapping[str, float]) -> dict[str, float]:
    """Split fractions: named like files, each in (0, 1], adding up to 1."""
    fractions = dict(split)
    if not fractions:
        raise CurationError("give at least one split, e.g. train=0.9,test=0.1")
    for name, value in fractions.items():
        if not isinstance(name, str) or not SPLIT_NAME.match(name) or name in COUNTS:
            raise CurationError(f"split name {name!r} must be letters, digits, - or _ and not "
                                f"one of {', '.join(COUNTS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise CurationError(f"split {name!r}: the fraction must be in (0, 1], not {value!r}")
    if not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise CurationError(f"split fractions must add up to 1, not {sum(fractions.values()):g}")
    return {name: float(value) for name, value in fractions.items()}


def _check(filters: Filters, dedupe: float | None) -> None:
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise CurationError("`since` must be before `until`")
    if filters.limit is not None and filters.limit < 1:
        raise CurationError(f"limit must be at least 1, not {filters.limit}")
    if filters.value is not None and filters.metric is None:
        raise CurationError("`value` needs `metric`: the metric whose value it is")
    if dedupe is not None and not 0 < dedupe <= 1:
        raise CurationError(f"dedupe is a similarity in (0, 1] (or None), not {dedupe}")


def _check_label(config: Config, filters: Filters, kind: str) -> None:
    """`label` names a label metric and is asked for with what can go with it (see the module)."""
    if filters.label is None:
        return
    declared = config.metrics.get(filters.label)
    if declared is None or declared.type != "label":
        labels = ", ".join(sorted(n for n, m in config.metrics.items() if m.type == "label"))
        what = "not a metric" if declared is None else f"a {declared.type} metric"
        raise CurationError(f"label {filters.label!r} is {what}; give a metric of type label "
                            f"(label metrics: {labels or 'none'})")
    if kind == "preference":
        raise CurationError("`label` makes sft or environment examples (the label is the answer "
                            "to learn); preference pairs come from demonstrations and ratings")
    if filters.corrected:
        raise CurationError("`label` and `corrected` do not go together: a label is learnt "
                            "whether or not a demonstration corrected the answer")
    if filters.metric == filters.label:
        raise CurationError(f"{filters.label!r} is already the label learnt; `metric` chooses "
                            "which labelled trajectories to keep by another metric")


def _target(row: Row, filters: Filters) -> dict[str, Any] | None:
    if filters.label is not None:
        passed = filters.metric is None or passes(row.rating, filters.value)
        return assistant_message(row.label) if passed and isinstance(row.label, str) else None
    if row.demonstration is not None:
        return row.demonstration
    if filters.metric is None or passes(row.rating, filters.value):
        return row.answer
    return None


def _example(row: Row, target: dict[str, Any]) -> Example:
    return Example(id=row.id, episode_id=row.episode_id, prompt=row.prompt, completion=target,
                   reference=reference_of(target), tools=row.tools, metadata=row.metadata)


def _one_per_cluster(items: list[T], labels: list[int], rank: Callable[[T], Any]) -> list[T]:
    """The best-ranked item of each cluster, in the items' (chronological) order."""
    best: dict[int, int] = {}
    for i, label in enumerate(labels):
        if label not in best or rank(items[i]) >= rank(items[best[label]]):
            best[label] = i
    return [items[i] for i in sorted(best.values())]


def _group_keys(examples: list[Example]) -> Any:
    """The split key of each example: its episode, joined (union-find) with any episode a
    preference pair ties it to, so every episode lands in one split only."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in examples:
        other = e.metadata.get("rejected_episode_id")
        a, b = find(e.episode_id), find(other if isinstance(other, str) else e.episode_id)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return lambda e: f"episode:{find(e.episode_id)}"


def _nothing_left(store: Store, function: str, filters: Filters, kind: str,
                  counts: dict[str, int]) -> str:
    """Which filter left nothing, with how many each step kept (counted only on this path)."""
    f = TrajectoryFilter(function=function)
    steps: list[tuple[str, TrajectoryFilter]] = [("", f)]
    if filters.since is not None or filters.until is not None:
        f = replace(f, since=filters.since, until=filters.until)
        steps.append(("since/until", f))
    if filters.tags:
        f = replace(f, tags=dict(filters.tags))
        steps.append(("tags", f))
    if filters.variant is not None:
        f = replace(f, variant=filters.variant)
        steps.append(("variant", f))
    if filters.metric is not None:
        f = replace(f, metric=filters.metric)
        steps.append((f"feedback on {filters.metric!r}", f))
    if counts["evals_excluded"]:  # last: it was counted with every filter above
        f = replace(f, evals=False)
        steps.append((EVALS_STEP, f))
    parts = []
    for name, step in steps:
        n = store.count(step)  # one COUNT query: no bodies are read
        shown = str(n)
        if name == EVALS_STEP:
            parts.append(f"{shown} after leaving out {counts['evals_excluded']} evaluation calls "
                         "(--include-evals keeps them)")
        else:
            parts.append(f"{name} leave {shown}" if name else
                         f"{shown} trajectories of {function!r}")
        if n == 0:
            break
    else:
        untargeted = "without a demonstration or a passing rating"
        if filters.label is not None:
            untargeted = f"without a label on {filters.label!r}" + (
                " or a passing rating" if filters.metric is not None else "")
        reasons = {
            "not_ok": "not ok or without a response",
            "not_corrected": "without a demonstration (corrected only)",
            "without_target": "in no preference pair" if kind == "preference" else untargeted,
            "duplicates": "near-duplicates",
        }
        parts += [f"{counts[k]} {why}" for k, why in reasons.items() if counts[k]]
    return f"no {kind} examples: " + "; ".join(parts)

