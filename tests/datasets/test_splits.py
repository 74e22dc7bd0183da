"""The one split rule that evaluations and curation share."""

from __future__ import annotations

import pytest

from veteran.datasets.splits import split_by


def test_items_with_one_key_land_together_and_the_same_seed_splits_the_same() -> None:
    items = [(f"episode-{i // 4}", i) for i in range(800)]
    parts = split_by(items, lambda item: item[0], {"train": 3, "test": 1}, seed=5)
    assert sorted(parts) == ["test", "train"] and sum(map(len, parts.values())) == 800
    keys = {name: {key for key, _ in part} for name, part in parts.items()}
    assert not keys["train"] & keys["test"]
    assert 0.65 < len(parts["train"]) / 800 < 0.85  # fractions are normalised: 3:1
    assert [i for _, i in parts["train"]] == sorted(i for _, i in parts["train"])  # input order
    assert split_by(items, lambda item: item[0], {"train": 3, "test": 1}, seed=5) == parts
    assert split_by(items, lambda item: item[0], {"train": 3, "test": 1}, seed=6) != parts


@pytest.mark.parametrize("fractions", [{}, {"train": 0.0}, {"train": 1.0, "test": -0.1}])
def test_fractions_must_be_above_zero(fractions: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        split_by([1, 2, 3], str, fractions)
