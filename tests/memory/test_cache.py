"""The semantic cache's decision: guard, similarity, reordering, expiry, retirement."""

from __future__ import annotations

import numpy as np

from veteran.memory.cache import SemanticCache, guard, polarity, request_text
from veteran.store import Store


def body(text: str, **params: object) -> dict[str, object]:
    return {"model": "f", "messages": [{"role": "user", "content": text}], **params}


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_the_guard_keeps_what_must_match_exactly() -> None:
    same = guard("fp", body("Refund order 4471?"))
    assert same == guard("fp", body("refund ORDER 4471."))  # case and edge punctuation
    assert same != guard("fp", body("Refund order 4417?"))  # another number
    assert same != guard("fp", body("Refund order 4471?", temperature=0.5))  # parameters
    assert same != guard("other", body("Refund order 4471?"))  # other variants
    assert guard("fp", body("hi", stream=True)) == guard("fp", body("hi"))  # not guarded
    system = {"model": "f", "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "hi"}]}
    assert guard("fp", system) != guard("fp", body("hi"))
    assert request_text(system["messages"]) == "user: hi"  # type: ignore[arg-type]


def test_polarity_names_negations_and_extremes() -> None:
    assert polarity("Which add-ons don't work with it?") == ["negated"]
    assert polarity("Which add-ons work without it?") == ["negated"]
    assert polarity("What is the highest temperature?") == ["max"]
    assert polarity("What is the lowest temperature?") == ["min"]
    assert polarity("What works with it?") == []


def test_lookup_by_similarity_expiry_and_reordering(store: Store) -> None:
    now = [1000.0]
    cache = SemanticCache(store.engine, clock=lambda: now[0])
    stored = cache.store("f", "g", unit(1, 0, 0), {"answer": 1}, ttl_seconds=60,
                         text="user: convert 30 euros to dollars", trajectory_id="t1")
    hit = cache.lookup("f", "g", unit(1, 0.1, 0), 0.9, "user: how many dollars is 30 euros")
    assert hit is not None and hit.entry_id == stored and hit.trajectory_id == "t1"
    assert hit.response == {"answer": 1} and 0.99 < hit.similarity <= 1
    assert cache.lookup("f", "g", unit(1, 1, 0), 0.9) is None  # not similar enough
    assert cache.lookup("f", "other", unit(1, 0, 0), 0.9) is None  # another guard
    assert cache.lookup("f", "g", unit(1, 0, 0), 0.9,
                        "user: convert 30 dollars to euros") is None  # roles swapped
    fresh = SemanticCache(store.engine, clock=lambda: now[0])  # read back from the store
    assert fresh.lookup("f", "g", unit(1, 0, 0), 0.9) is not None
    now[0] += 61
    assert cache.lookup("f", "g", unit(1, 0, 0), 0.9) is None  # expired


def test_retire_drops_other_variants_and_expired_entries(store: Store) -> None:
    now = [1000.0]
    cache = SemanticCache(store.engine, clock=lambda: now[0])
    cache.store("f", "g", unit(0, 1, 0), {"a": 1}, ttl_seconds=60, fingerprint="old")
    cache.store("f", "g", unit(0, 0, 1), {"a": 2}, ttl_seconds=60, fingerprint="new")
    cache.store("f", "g", unit(1, 0, 0), {"a": 3}, ttl_seconds=1, fingerprint="new")
    now[0] += 2
    assert cache.retire("f", "new") == 2
    assert cache.lookup("f", "g", unit(0, 1, 0), 0.9) is None
    hit = cache.lookup("f", "g", unit(0, 0, 1), 0.9)
    assert hit is not None and hit.response == {"a": 2}
    assert cache.invalidate("f") == 1
