"""Statistics against answers known by construction or from textbooks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from veteran.evals.stats import by_slice, mcnemar, mean_ci, paired_difference, pass_at_k
from veteran.evals.types import Sample


def test_mean_ci_brackets_the_mean_and_drops_nan() -> None:
    e = mean_ci([0.0, 1.0, 1.0, 0.0, 1.0, math.nan])
    assert e.n == 5 and e.mean == pytest.approx(0.6)
    assert 0.0 <= e.low < 0.6 < e.high <= 1.0
    assert mean_ci([0.5, 0.5]).low == mean_ci([0.5, 0.5]).high == 0.5
    assert math.isnan(mean_ci([]).mean) and mean_ci([]).n == 0
    assert mean_ci([1.0, 0.0, 1.0], seed=3) == mean_ci([1.0, 0.0, 1.0], seed=3)


def test_bernoulli_interval_covers_about_95_percent() -> None:
    rng = np.random.default_rng(42)
    p, covered, trials = 0.3, 0, 200
    for i in range(trials):
        e = mean_ci(rng.random(200) < p, resamples=2000, seed=i)
        covered += e.low <= p <= e.high
    assert 0.89 <= covered / trials <= 0.99
    width = mean_ci(rng.random(200) < p).high - mean_ci(rng.random(200) < p).low
    assert width == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / 200), rel=0.25)


def test_known_shift_gives_the_shift_with_a_tight_interval() -> None:
    a = np.random.default_rng(0).random(100)
    c = paired_difference(a, a + 0.1)
    assert c.diff == pytest.approx(0.1)
    assert c.low == pytest.approx(0.1) and c.high == pytest.approx(0.1)
    assert c.p_value < 0.001 and c.n == 100


def test_identical_variants_have_p_one_and_zero_difference() -> None:
    a = [0.0, 1.0, 0.5, 0.25]
    c = paired_difference(a, a)
    assert (c.diff, c.low, c.high, c.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_noise_only_difference_is_not_significant_and_pairs_drop_nan() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(300)
    b = a + rng.normal(0, 0.1, 300)
    c = paired_difference(a, b)
    assert c.low < 0 < c.high and c.p_value > 0.05
    with_nan = paired_difference([1.0, math.nan, 0.0], [1.0, 0.0, 1.0])
    assert with_nan.n == 2 and with_nan.diff == pytest.approx(0.5)


def test_small_samples_get_the_exact_sign_flip_p_value() -> None:
    # 5 positive differences of 1: only the all-plus and all-minus patterns are as extreme
    c = paired_difference([0.0] * 5, [1.0] * 5)
    assert c.p_value == pytest.approx(2 / 32)


def test_mcnemar_exact_on_a_small_table() -> None:
    # 1 vs 9 discordant pairs: p = 2 * (C(10,0) + C(10,1)) / 2**10
    a = [True] * 1 + [False] * 9 + [True] * 5
    b = [False] * 1 + [True] * 9 + [True] * 5
    m = mcnemar(a, b)
    assert (m.b01, m.b10, m.exact) == (9, 1, True)
    assert m.p_value == pytest.approx(22 / 1024)


def test_mcnemar_chi_square_on_agrestis_table() -> None:
    # Agresti's presidential approval table: 794, 150 / 86, 570 -> chi2 (corrected) 16.82
    a = [True] * 794 + [True] * 150 + [False] * 86 + [False] * 570
    b = [True] * 794 + [False] * 150 + [True] * 86 + [False] * 570
    m = mcnemar(a, b)
    assert (m.b01, m.b10, m.exact) == (86, 150, False)
    assert m.statistic == pytest.approx(63**2 / 236)
    assert m.p_value == pytest.approx(4.115e-5, rel=1e-3)
    assert mcnemar([True, False], [True, False]).p_value == 1.0


def test_pass_at_k_closed_forms() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))
    assert pass_at_k(4, 3, 2) == 1.0
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_by_slice_groups_by_metadata_and_nested_keys() -> None:
    samples = [
        Sample(id=str(i), messages=[], metadata={"team": t, "tags": {"lang": lang}})
        for i, (t, lang) in enumerate([("a", "en"), ("a", "fr"), ("b", "en"), (None, "en")])
    ]
    values = [1.0, 0.0, 1.0, 0.5]
    teams = by_slice(samples, values, "team")
    assert list(teams) == ["(none)", "a", "b"]
    assert teams["a"].mean == pytest.approx(0.5) and teams["a"].n == 2
    langs = by_slice(samples, values, "tags.lang")
    assert langs["en"].n == 3 and langs["fr"].mean == 0.0
    assert by_slice(samples, values, lambda s: s.id)["3"].mean == 0.5
