from __future__ import annotations

import random
import string
import time

import pytest

from veteran.datasets.dedupe import _band_width, _shingles, clusters, normalize


def jaccard(a: str, b: str) -> float:
    x, y = set(_shingles(normalize(a)).tolist()), set(_shingles(normalize(b)).tolist())
    return len(x & y) / len(x | y)


def test_exact_mode_normalises_case_and_spaces() -> None:
    texts = ["Hello  World", "hello world", "hello world!", "", "  ", "Hi"]
    assert clusters(texts, None) == [0, 0, 2, 3, 3, 5]


def test_threshold_merges_only_what_reaches_it() -> None:
    base = ("Please cancel my subscription number 88123 before the next billing date, and "
            "send the confirmation to the address on file.")
    texts = [base, base.replace("88123", "88124"), base.replace("cancel", "pause"),
             "Something else entirely.", "ab", "ab "]
    labels = clusters(texts, 0.9)
    assert jaccard(texts[0], texts[1]) >= 0.9 > jaccard(texts[0], texts[2])
    assert labels == [0, 0, 2, 3, 4, 4]
    assert clusters(texts, 0.5)[2] == 0  # looser: the paraphrase joins
    with pytest.raises(ValueError, match="threshold"):
        clusters(texts, 0)


def test_band_width_finds_pairs_at_the_threshold() -> None:
    for threshold in (0.5, 0.8, 0.9, 0.95, 1.0):
        rows = _band_width(threshold)
        assert 1 - (1 - threshold**rows) ** (64 // rows) >= 0.98


def test_recall_and_precision_on_random_edits() -> None:
    rng = random.Random(7)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 8)))
             for _ in range(3000)]
    texts, similar = [], []
    for _ in range(400):
        original = [rng.choice(words) for _ in range(40)]
        edited = list(original)
        edited[rng.randrange(40)] = rng.choice(words)
        texts += [" ".join(original), " ".join(edited)]
        similar.append(jaccard(texts[-2], texts[-1]) >= 0.9)
    labels = clusters(texts, 0.9)
    found = [labels[2 * i] == labels[2 * i + 1] for i in range(400)]
    hits = sum(f for f, s in zip(found, similar, strict=True) if s)
    assert hits >= 0.97 * sum(similar)  # LSH may miss a few
    assert not any(f and not s for f, s in zip(found, similar, strict=True))  # never a false merge
    assert len(set(labels)) >= 400


def test_scales_to_many_rows() -> None:
    rng = random.Random(3)
    words = ["".join(rng.choices(string.ascii_lowercase, k=6)) for _ in range(2000)]
    texts = [" ".join(rng.choices(words, k=30)) for _ in range(20_000)]
    texts += [t.upper() + "?" for t in texts[:1000]]
    started = time.perf_counter()
    labels = clusters(texts, 0.9)
    assert time.perf_counter() - started < 30  # ~1 s on an idle 2-core machine
    assert len(set(labels)) == 20_000
