"""Options that choose training data, shared by `veteran data export` and `veteran train`.

`@curation_options` adds them to a command; each is parsed as it is read (times, `--value` as
JSON, `--split`, `--dedupe`), so a bad value is a usage error naming the option, and the
command receives them as keyword arguments `since until tags variant metric value corrected
limit include_evals label split seed dedupe`. `curation_from_options(kwargs)` takes them back out as
the library's `Filters`, split fractions, seed and dedupe threshold; `curate` checks what they
mean together.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import orjson

from veteran.datasets import Filters
from veteran.types import parse_timestamp

F = TypeVar("F", bound=Callable[..., Any])
NAMES = ("since", "until", "tags", "variant", "metric", "value", "corrected", "limit",
         "include_evals", "label", "split", "seed", "dedupe")
DEFAULT_SPLIT = "train=0.9,test=0.1"


@dataclass(frozen=True)
class CurationOptions:
    filters: Filters
    split: dict[str, float]
    seed: int
    dedupe: float | None

    def curate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `veteran.datasets.curate` (after store, config, function)."""
        return {"filters": self.filters, "split": self.split, "seed": self.seed,
                "dedupe": self.dedupe}


def _time(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _tags(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} must look like KEY=VALUE")
        tags[key] = value
    return tags


def parse_value(text: str | None) -> Any:
    """JSON when it parses (`true`, `3`, `"a b"`), else the text itself (`billing`)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def parse_split(text: str) -> dict[str, float]:
    """`train=0.9,test=0.1` as {"train": 0.9, "test": 0.1} (checked by `curate`)."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, number = part.strip().partition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not name or math.isnan(value) or name in fractions:
            raise click.BadParameter(f"{part.strip()!r}: give NAME=FRACTION once per split, "
                                     f"e.g. {DEFAULT_SPLIT}", param_hint="--split")
        fractions[name] = value
    return fractions


def parse_dedupe(text: str) -> float | None:
    """A similarity in (0, 1], or `none`/`exact` for exact duplicates only."""
    if text.strip().lower() in {"none", "exact"}:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise click.BadParameter(f"{text!r} is neither a similarity in (0, 1] nor 'none'",
                                 param_hint="--dedupe")
    return value


def curation_options(func: F) -> F:
    """Add the options that choose and shape the data (see docs/datasets.md)."""
    options = [
        click.option("--since", callback=_time, default=None,
                     help="Only trajectories from this time: ISO 8601 or UNIX seconds."),
        click.option("--until", callback=_time, default=None,
                     help="Only trajectories before this time: ISO 8601 or UNIX seconds."),
        click.option("--tag", "tags", multiple=True, callback=_tags, metavar="KEY=VALUE",
                     help="Only trajectories with this tag (repeat to require several)."),
        click.option("--variant", default=None, help="Only trajectories of this variant."),
        click.option("--metric", default=None,
                     help="Only trajectories with feedback on METRIC (for preference data: "
                          "the rating that orders answers)."),
        click.option("--value", default=None, callback=_value,
                     help="The METRIC value to keep, as JSON (true, 3) or text; default: "
                          "positive (true or above 0)."),
        click.option("--corrected", is_flag=True,
                     help="Only trajectories corrected by a demonstration."),
        click.option("--label", "label", default=None, metavar="METRIC",
                     help="Learn the latest value of this label metric as the answer (a "
                          "classifier's training data); trajectories without it are left out."),
        click.option("--limit", type=click.IntRange(min=1), default=None,
                     help="Keep the latest N examples after filtering."),
        click.option("--include-evals", is_flag=True,
                     help="Keep evaluation calls (eval samples, judges, canaries), which are "
                          "left out by default: test inputs must not become training rows."),
        click.option("--split", default=DEFAULT_SPLIT, show_default=True, callback=_split,
                     help="Split names and fractions, adding up to 1."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the split by episode."),
        click.option("--dedupe", default="0.9", show_default=True, callback=_dedupe,
                     help="Drop inputs at least this similar (5-gram Jaccard), or 'none' "
                          "for exact duplicates only."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _value(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return parse_value(value)


def _split(ctx: click.Context, param: click.Parameter, value: str) -> dict[str, float]:
    return parse_split(value)


def _dedupe(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    return parse_dedupe(value)


def filters_from_options(
    *, since: float | None = None, until: float | None = None, tags: dict[str, str] | None = None,
    variant: str | None = None, metric: str | None = None, value: Any = None,
    corrected: bool = False, limit: int | None = None, include_evals: bool = False,
    label: str | None = None,
) -> Filters:
    """`Filters` from the parsed option values (`value` already decoded by its option)."""
    return Filters(since=since, until=until, tags=dict(tags or {}), variant=variant,
                   metric=metric, value=value, corrected=corrected, limit=limit,
                   include_evals=include_evals, label=label)


def evals_note(counts: dict[str, int]) -> str | None:
    """The line that says how many evaluation calls curation left out, when it left any."""
    excluded = counts.get("evals_excluded", 0)
    if not excluded:
        return None
    return f"excluded {excluded} evaluation calls (--include-evals to keep them)"


def curation_from_options(kwargs: dict[str, Any]) -> CurationOptions:
    """Take the curation options out of a command's `kwargs` (they are removed from it)."""
    taken = {name: kwargs.pop(name) for name in NAMES if name in kwargs}
    split = taken.pop("split", None) or parse_split(DEFAULT_SPLIT)
    seed, dedupe = taken.pop("seed", 0), taken.pop("dedupe", 0.9)
    return CurationOptions(filters=filters_from_options(**taken), split=split, seed=seed,
                           dedupe=dedupe)
