from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.datasets.seed import BASE, CALLS, SYSTEM, Call, insert, workspace_config
from veteran.config import Config
from veteran.datasets import Curated, CurationError, Filters, curate
from veteran.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return workspace_config(tmp_path / "ws")


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Store, list[str]]]:
    """The shared calls in a SQLite store (the PostgreSQL case is `test_curate_sft`)."""
    store = Store.open(f"sqlite:///{tmp_path}/curate.db")
    ids = insert(store, CALLS)
    yield store, ids
    store.close()


def all_examples(curated: Curated) -> list[str]:
    return sorted(e.id for part in curated.splits.values() for e in part)


def test_curate_sft(store: Store, config: Config) -> None:
    """SQLite and PostgreSQL: prompts, targets, counts, dedupe keeping latest or corrected."""
    ids = insert(store, CALLS)
    curated = curate(store, config, "support", split={"train": 1.0})
    assert curated.counts == {
        "evals_excluded": 0, "read": 9, "not_ok": 1, "not_corrected": 0, "without_target": 0,
        "duplicates": 3, "over_limit": 0, "kept": 5, "train": 5,
    }
    examples = {e.id: e for e in curated.splits["train"]}
    # 1 repeats 0 (kept: the latest), 3 is near 2 (kept: corrected), 8 repeats 7
    assert sorted(examples) == sorted([ids[1], ids[2], ids[4], ids[6], ids[8]])
    corrected = examples[ids[2]]
    assert corrected.prompt == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Where can I find my invoice for March, please?"},
    ]
    assert corrected.completion == {"role": "assistant", "content": "Billing > Invoices."}
    assert corrected.reference == "Billing > Invoices."
    assert corrected.episode_id == "e3"
    assert corrected.metadata["variant"] == "v1"
    assert corrected.metadata["feedback"]["resolved"] is False
    own = examples[ids[1]]
    assert own.completion == {"role": "assistant", "content": "Use the reset link."}  # no refusal
    assert own.metadata["lang"] == "en" and own.rejected is None


def test_metric_value_and_corrected(seeded: tuple[Store, list[str]], config: Config) -> None:
    store, ids = seeded
    resolved = curate(store, config, "support", Filters(metric="resolved"), split={"train": 1.0})
    # 0-4 have `resolved`; 4 failed and has no correction; 2 failed but was corrected
    assert all_examples(resolved) == sorted([ids[1], ids[2]])
    assert resolved.counts["read"] == 5 and resolved.counts["without_target"] == 1
    failed = curate(store, config, "support", Filters(metric="resolved", value=False),
                    split={"train": 1.0})
    assert all_examples(failed) == sorted([ids[2], ids[4]])
    only = curate(store, config, "support", Filters(corrected=True), split={"train": 1.0})
    assert all_examples(only) == [ids[2]] and only.counts["not_corrected"] == 7
    label = curate(store, config, "support", Filters(metric="queue", value="tech"), dedupe=None,
                   split={"train": 1.0})
    assert all_examples(label) == [ids[7]]


def test_time_tag_variant_and_limit(seeded: tuple[Store, list[str]], config: Config) -> None:
    store, ids = seeded
    window = curate(store, config, "support", Filters(since=BASE + 10, until=BASE + 40),
                    split={"train": 1.0})
    assert all_examples(window) == sorted([ids[1], ids[2]])  # 3 is a near-copy of 2
    french = curate(store, config, "support", Filters(tags={"lang": "fr"}), split={"train": 1.0})
    assert all_examples(french) == [ids[4]]
    v2 = curate(store, config, "support", Filters(variant="v2"), split={"train": 1.0})
    assert all_examples(v2) == [ids[4]]
    latest = curate(store, config, "support", Filters(limit=2), split={"train": 1.0})
    assert all_examples(latest) == sorted([ids[6], ids[8]])
    assert latest.counts["over_limit"] == 3 and latest.counts["kept"] == 2


def test_client_system_message_is_not_doubled(tmp_path: Path, config: Config) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/s.db")
    try:
        insert(store, [Call("Hi", "Hello!", "e1", BASE, system=SYSTEM),
                       Call("Other question", "Sure.", "e2", BASE + 1, system="Be brief.")])
        examples = curate(store, config, "support", split={"train": 1.0}).splits["train"]
    finally:
        store.close()
    assert [m["role"] for m in examples[0].prompt] == ["system", "user"]
    assert [m["content"] for m in examples[1].prompt] == [SYSTEM, "Be brief.", "Other question"]


def test_preference_pairs(seeded: tuple[Store, list[str]], config: Config) -> None:
    store, ids = seeded
    rated = curate(store, config, "support", Filters(metric="rating"), kind="preference",
                   split={"train": 1.0})
    (pair,) = rated.splits["train"]
    assert pair.id == ids[7] and pair.metadata["rejected_id"] == ids[8]
    assert pair.completion["content"] == "9 to 5, Monday to Friday."
    assert pair.rejected == {"role": "assistant", "content": "I don't know."}
    assert pair.metadata["pair"] == "rating"
    # `effort` is declared optimize = "min": the lower value is preferred
    (low,) = curate(store, config, "support", Filters(metric="effort"), kind="preference",
                    split={"train": 1.0}).splits["train"]
    assert low.id == ids[8] and low.rejected is not None
    assert low.rejected["content"] == "9 to 5, Monday to Friday."
    # corrections are pairs without a metric; labels order nothing
    every = curate(store, config, "support", kind="preference", split={"train": 1.0})
    (fix,) = every.splits["train"]
    assert fix.id == ids[2] and fix.metadata["pair"] == "demonstration"
    assert fix.completion["content"] == "Billing > Invoices." and fix.rejected is not None
    assert fix.rejected["content"] == "No idea."
    assert every.counts["without_target"] == 7
    with pytest.raises(CurationError, match="in no preference pair"):
        curate(store, config, "support", Filters(metric="queue"), kind="preference")


def test_environment_rows_have_references(seeded: tuple[Store, list[str]],
                                          config: Config) -> None:
    store, _ = seeded
    env = curate(store, config, "support", Filters(metric="resolved"), kind="environment",
                 split={"train": 1.0})
    assert env.kind == "environment"
    assert {e.reference for e in env.splits["train"]} == {"Use the reset link.",
                                                          "Billing > Invoices."}


def test_dedupe_threshold(tmp_path: Path, config: Config) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/d.db")
    text = ("My order 1234 arrived damaged and the box was open; the blender jug is cracked "
            "and the lid is missing. Can you send a replacement?")
    try:
        insert(store, [
            Call(text, "a", "e1", BASE),
            Call(text.replace("1234", "1235"), "b", "e2", BASE + 1),  # near-identical
            Call(text.replace("blender jug", "kettle"), "c", "e3", BASE + 2),  # less so
            Call("Completely different: what is your refund policy?", "d", "e4", BASE + 3),
        ])
        counts = {t: curate(store, config, "support", dedupe=t, split={"train": 1.0}).counts
                  for t in (None, 0.9, 0.7)}
    finally:
        store.close()
    assert [counts[t]["kept"] for t in (None, 0.9, 0.7)] == [4, 3, 2]
    assert counts[0.9]["duplicates"] == 1


def test_split_keeps_episodes_whole(tmp_path: Path, config: Config) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/split.db")
    calls = [Call(f"Question number {i}: how does feature {i * 7919} work in plan {i % 13}?",
                  f"Answer {i}.", f"ep{i // 3}", BASE + i) for i in range(300)]
    try:
        insert(store, calls)
        one = curate(store, config, "support", split={"train": 0.8, "test": 0.2}, seed=1)
        again = curate(store, config, "support", split={"train": 0.8, "test": 0.2}, seed=1)
        other = curate(store, config, "support", split={"train": 0.8, "test": 0.2}, seed=2)
    finally:
        store.close()
    assert one.counts["kept"] == 300 and one.counts["duplicates"] == 0
    train = {e.episode_id for e in one.splits["train"]}
    test = {e.episode_id for e in one.splits["test"]}
    assert not train & test and len(train | test) == 100
    assert 0.65 < one.counts["train"] / 300 < 0.95
    assert one.splits == again.splits and one.splits != other.splits


def test_preference_pair_binds_both_episodes(tmp_path: Path, config: Config) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/pairs.db")
    calls = []
    for i in range(60):  # each episode holds the better answer of one pair, the worse of another
        q = f"Question {i} about invoice {i * 104729}?"
        calls += [Call(q, f"good {i}", f"ep{i}", BASE + 2 * i, feedback={"resolved": True}),
                  Call(q, f"bad {i}", f"ep{(i + 1) % 60}", BASE + 2 * i + 1,
                       feedback={"resolved": False})]
    try:
        insert(store, calls)
        curated = curate(store, config, "support", Filters(metric="resolved"),
                         kind="preference", split={"train": 0.5, "test": 0.5})
    finally:
        store.close()
    assert curated.counts["kept"] == 60
    # the pairs chain every episode together: one split holds them all
    assert sorted(len(part) for part in curated.splits.values()) == [0, 60]


def test_errors(seeded: tuple[Store, list[str]], config: Config) -> None:
    store, _ = seeded
    with pytest.raises(CurationError, match=r"unknown function 'nope' \(functions: other, "):
        curate(store, config, "nope")
    with pytest.raises(CurationError, match="unknown kind"):
        curate(store, config, "support", kind="rl")  # type: ignore[arg-type]
    for bad, message in [({"train": 0.9, "test": 0.2}, "add up to 1"),
                         ({"train": 1.0, "test": 0.0}, r"in \(0, 1\]"), ({}, "at least one"),
                         ({"../x": 1.0}, "letters, digits"), ({"kept": 1.0}, "not one of")]:
        with pytest.raises(CurationError, match=message):
            curate(store, config, "support", split=bad)
    with pytest.raises(CurationError, match="`value` needs `metric`"):
        curate(store, config, "support", Filters(value=True))
    with pytest.raises(CurationError, match="before `until`"):
        curate(store, config, "support", Filters(since=BASE + 5, until=BASE))
    with pytest.raises(CurationError, match=r"dedupe is a similarity"):
        curate(store, config, "support", dedupe=1.5)


def test_nothing_left_names_the_filter(seeded: tuple[Store, list[str]], config: Config,
                                      tmp_path: Path) -> None:
    store, _ = seeded
    with pytest.raises(CurationError) as info:
        curate(store, config, "support", Filters(tags={"lang": "en"}, variant="v2"))
    assert str(info.value) == ("no sft examples: 9 trajectories of 'support'; tags leave 2; "
                               "variant leave 0")
    with pytest.raises(CurationError) as info:
        curate(store, config, "support", Filters(since=BASE + 40, metric="resolved",
                                                 value=True))
    assert str(info.value) == (
        "no sft examples: 9 trajectories of 'support'; since/until leave 5; feedback on "
        "'resolved' leave 1; 1 without a demonstration or a passing rating")
    empty = Store.open(f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(CurationError, match="^no sft examples: 0 trajectories of 'other'$"):
            curate(empty, config, "other")
    finally:
        empty.close()
