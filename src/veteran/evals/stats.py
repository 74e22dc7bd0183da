"""Statistics for evaluation runs: intervals, paired comparisons, gates, pass@k, slices.

Every mean comes with a 95% percentile-bootstrap interval. Two variants are compared on the
same samples: `paired_difference` bootstraps the per-sample differences (interval) and runs a
sign-flip permutation test (p-value; exact when 2**n is within `resamples`); `mcnemar` tests
pass/fail pairs. NaN values (skipped gradings) are left out, pairwise for comparisons.
`non_inferiority` turns a paired difference's interval into a gate's verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from veteran.evals.types import Sample

Floats = npt.NDArray[np.float64]
CHUNK_CELLS = 1 << 22  # bootstrap draws per numpy batch (resamples x n), bounds memory
EXACT_MCNEMAR_BELOW = 25  # discordant pairs: exact binomial under, chi-square from here
NO_VALUE = "(none)"  # the slice of samples without the key
Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """B minus A on paired samples: `diff` with its interval, and a two-sided p-value."""

    diff: float
    low: float
    high: float
    p_value: float
    n: int


@dataclass(frozen=True, slots=True)
class McNemar:
    """Pass/fail pairs: `b01` A failed and B passed, `b10` A passed and B failed.

    `statistic` is the chi-square value (with continuity correction) when the discordant pairs
    are 25 or more, else min(b01, b10), the count the exact binomial test is taken on."""

    b01: int
    b10: int
    statistic: float
    p_value: float
    exact: bool
    n: int


def _finite(values: Sequence[float] | npt.NDArray[Any]) -> Floats:
    array = np.asarray(values, dtype=np.float64)
    return array[~np.isnan(array)]


def _bootstrap_means(values: Floats, resamples: int, seed: int) -> Floats:
    """Means of `resamples` bootstrap resamples of `values`, drawn in bounded batches."""
    rng = np.random.default_rng(seed)
    n = len(values)
    out = np.empty(resamples, dtype=np.float64)
    batch = max(1, CHUNK_CELLS // n)
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        out[start:start + size] = values[rng.integers(0, n, size=(size, n))].mean(axis=1)
    return out


def _interval(draws: Floats, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def _check(confidence: float, resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")


def mean_ci(
    values: Sequence[float] | npt.NDArray[Any],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Estimate:
    """The mean with a percentile-bootstrap interval (NaN everywhere when nothing is left)."""
    _check(confidence, resamples)
    data = _finite(values)
    n = len(data)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(data.mean())
    if n == 1 or bool(np.all(data == data[0])):
        return Estimate(mean, mean, mean, n)
    low, high = _interval(_bootstrap_means(data, resamples, seed), confidence)
    return Estimate(mean, low, high, n)


def _sign_flip_p(diffs: Floats, resamples: int, seed: int) -> float:
    """Two-sided p-value of a mean of zero, under symmetric differences (sign-flip test)."""
    n = len(diffs)
    observed = abs(float(diffs.mean()))
    tolerance = 1e-12 * max(1.0, observed)
    if n <= 20 and 2**n <= resamples:  # every sign pattern: the exact permutation p-value
        codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n, dtype=np.int64)
        signs = (codes & 1) * 2 - 1
        flipped = np.abs((signs * diffs).mean(axis=1))
        return float(np.mean(flipped >= observed - tolerance))
    rng = np.random.default_rng(seed + 1)
    extreme = 0
    batch = max(1, CHUNK_CELLS // n)
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        signs = rng.integers(0, 2, size=(size, n)) * 2 - 1
        extreme += int(np.sum(np.abs((signs * diffs).mean(axis=1)) >= observed - tolerance))
    return (extreme + 1) / (resamples + 1)


def paired_difference(
    a: Sequence[float] | npt.NDArray[Any],
    b: Sequence[float] | npt.NDArray[Any],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Mean of `b - a` over paired samples: a bootstrap interval on the per-sample differences
    and a sign-flip permutation p-value (pairs with a NaN on either side are left out)."""
    _check(confidence, resamples)
    left, right = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if left.shape != right.shape:
        raise ValueError(f"paired values differ in length: {len(left)} and {len(right)}")
    keep = ~(np.isnan(left) | np.isnan(right))
    diffs = right[keep] - left[keep]
    n = len(diffs)
    if n == 0:
        return Comparison(math.nan, math.nan, math.nan, math.nan, 0)
    diff = float(diffs.mean())
    if bool(np.all(diffs == diffs[0])):
        low = high = diff
    else:
        low, high = _interval(_bootstrap_means(diffs, resamples, seed), confidence)
    return Comparison(diff, low, high, _sign_flip_p(diffs, resamples, seed), n)


@dataclass(frozen=True, slots=True)
class NonInferiority:
    """A non-inferiority test's verdict on B - A with margin `margin`, and (inconclusive only)
    roughly how many paired samples would decide it, None when no number would."""

    verdict: Verdict
    margin: float
    samples_to_decide: int | None = None


def non_inferiority(cmp: Comparison, margin: float) -> NonInferiority:
    """Whether B is no worse than A by more than `margin`, from the interval of B - A:

    - "pass" when the whole interval is above -margin (shown within the margin);
    - "fail" when the whole interval is below -margin (shown worse beyond it);
    - "inconclusive" when the interval holds -margin: the samples cannot tell.

    An inconclusive result estimates the samples that would decide it: the interval's
    half-width on the side facing -margin shrinks as 1/sqrt(n), so it clears -margin at about
    n * (half-width / distance of the mean from -margin)**2 samples, if the mean difference
    and its spread stay as measured. A mean at exactly -margin is never decided (None)."""
    if margin < 0 or math.isnan(margin):
        raise ValueError(f"the margin must be 0 or more, not {margin}")
    if math.isnan(cmp.low) or math.isnan(cmp.high):
        raise ValueError("no paired sample to judge")
    bound = -margin
    if cmp.low > bound:
        return NonInferiority("pass", margin)
    if cmp.high < bound:
        return NonInferiority("fail", margin)
    gap = cmp.diff - bound  # above 0: the mean says pass; below 0: fail
    width = cmp.diff - cmp.low if gap > 0 else cmp.high - cmp.diff
    if gap == 0 or width <= 0:
        return NonInferiority("inconclusive", margin)
    needed = math.ceil(cmp.n * (width / abs(gap)) ** 2)
    return NonInferiority("inconclusive", margin, max(needed, cmp.n + 1))


def mcnemar(a_passed: Sequence[bool], b_passed: Sequence[bool]) -> McNemar:
    """McNemar's test on paired pass/fail: exact binomial under 25 discordant pairs, else
    chi-square with continuity correction (1 degree of freedom)."""
    if len(a_passed) != len(b_passed):
        raise ValueError(f"paired values differ in length: {len(a_passed)} and {len(b_passed)}")
    b01 = sum(1 for x, y in zip(a_passed, b_passed, strict=True) if not x and y)
    b10 = sum(1 for x, y in zip(a_passed, b_passed, strict=True) if x and not y)
    discordant = b01 + b10
    if discordant == 0:
        return McNemar(b01, b10, 0.0, 1.0, True, len(a_passed))
    if discordant < EXACT_MCNEMAR_BELOW:
        k = min(b01, b10)
        tail = sum(math.comb(discordant, i) for i in range(k + 1)) / 2**discordant
        return McNemar(b01, b10, float(k), min(1.0, 2 * tail), True, len(a_passed))
    statistic = (abs(b01 - b10) - 1) ** 2 / discordant
    # survival function of chi-square with 1 degree of freedom
    p_value = math.erfc(math.sqrt(statistic / 2))
    return McNemar(b01, b10, statistic, p_value, False, len(a_passed))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from `n` attempts of which `c` passed: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # the product form of the ratio: no huge binomials
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def _slice_values(sample: Sample, key: str) -> list[str]:
    """The slice names a sample belongs to: the value at `key` (dots descend into nested
    metadata, e.g. `tags.team`); every element of a list value; `(none)` when absent."""
    value: Any = sample.metadata
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return [NO_VALUE]
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value] or [NO_VALUE]
    return [str(value).lower() if isinstance(value, bool) else str(value)]


def by_slice(
    samples: Sequence[Sample],
    values: Sequence[float],
    key: str | Callable[[Sample], str | None],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """An estimate per slice, slices sorted by name. `key` names a metadata field (samples from
    the store carry their tags there) or is a function of the sample."""
    if len(samples) != len(values):
        raise ValueError(f"{len(samples)} samples but {len(values)} values")
    groups: dict[str, list[float]] = {}
    for sample, value in zip(samples, values, strict=True):
        if callable(key):
            found = key(sample)
            names = [NO_VALUE if found is None else found]
        else:
            names = _slice_values(sample, key)
        for name in names:
            groups.setdefault(name, []).append(value)
    return {
        name: mean_ci(group, confidence=confidence, resamples=resamples, seed=seed)
        for name, group in sorted(groups.items())
    }
