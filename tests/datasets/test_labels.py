"""A label metric as the answer to learn (`Filters.label`, `--label`): a reviewer's labels
alone make a classifier's training data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from tests.datasets.seed import BASE, CONFIG, SYSTEM, Call, insert, workspace_config
from veteran.cli.data import data
from veteran.cli.train import train
from veteran.config import Config
from veteran.datasets import Curated, CurationError, Filters, curate, export, read_manifest
from veteran.store import Store

# `queue` is the seed config's label metric; `correction` its demonstration metric.
LABELLED = [
    # 0: labelled, the model's own answer is something else
    Call("My card was charged twice for March.", "Try restarting the app.", "e1", BASE,
         feedback={"queue": "billing", "resolved": True}),
    # 1: labelled and corrected: the label is learnt, not the demonstration
    Call("The app crashes when I open settings.", "Please pay your invoice.", "e2", BASE + 10,
         feedback={"queue": "tech", "resolved": False,
                   "correction": {"role": "assistant", "content": "Reinstall the app."}}),
    # 2: relabelled: the latest label wins
    Call("How do I get a refund for my annual plan?", "billing", "e3", BASE + 20,
         feedback={"queue": "tech"}),
    # 3: rated but never labelled
    Call("Do you ship to Canada?", "Yes, we do.", "e4", BASE + 30, feedback={"resolved": True}),
    # 4: nothing at all
    Call("Can I change my plan mid-cycle?", "Yes.", "e5", BASE + 40),
    # 5: labelled, its rating failed
    Call("Why is my invoice in euros and not dollars?", "No idea.", "e6", BASE + 50,
         feedback={"queue": "billing", "resolved": False}),
    # 6: a failed call is no example, labelled or not
    Call("Is the service down?", None, "e7", BASE + 60, status="error",
         feedback={"queue": "tech"}),
]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return workspace_config(tmp_path / "ws")


@pytest.fixture
def labelled(tmp_path: Path) -> Iterator[tuple[Store, list[str]]]:
    store = Store.open(f"sqlite:///{tmp_path}/labels.db")
    ids = insert(store, LABELLED)
    # the relabelling of 2 comes after its first label
    store.add_feedback(trajectory_id=ids[2], metric="queue", value="billing")
    yield store, ids
    store.close()


def by_id(curated: Curated) -> dict[str, dict[str, object]]:
    return {e.id: e.completion for part in curated.splits.values() for e in part}


def test_the_label_is_the_answer(labelled: tuple[Store, list[str]], config: Config) -> None:
    store, ids = labelled
    curated = curate(store, config, "support", Filters(label="queue"), split={"train": 1.0})
    assert by_id(curated) == {
        ids[0]: {"role": "assistant", "content": "billing"},
        ids[1]: {"role": "assistant", "content": "tech"},  # not the demonstration
        ids[2]: {"role": "assistant", "content": "billing"},  # the latest label
        ids[5]: {"role": "assistant", "content": "billing"},  # its failed rating is no filter
    }
    assert curated.counts == {
        "evals_excluded": 0, "read": 7, "not_ok": 1, "not_corrected": 0, "without_target": 2,
        "duplicates": 0, "over_limit": 0, "kept": 4, "train": 4,
    }
    example = next(e for e in curated.splits["train"] if e.id == ids[0])
    assert example.prompt == [{"role": "system", "content": SYSTEM},
                              {"role": "user", "content": "My card was charged twice for March."}]
    assert example.reference == "billing"
    assert example.metadata["feedback"] == {"queue": "billing", "resolved": True}
    # without `label` the same rows learn the answers and the demonstration, as before
    plain = by_id(curate(store, config, "support", split={"train": 1.0}))
    assert plain[ids[0]] == {"role": "assistant", "content": "Try restarting the app."}
    assert plain[ids[1]] == {"role": "assistant", "content": "Reinstall the app."}


def test_environment_tasks_have_the_label_as_reference(
        labelled: tuple[Store, list[str]], config: Config) -> None:
    store, ids = labelled
    curated = curate(store, config, "support", Filters(label="queue"), kind="environment",
                     split={"train": 1.0})
    assert {e.id: e.reference for e in curated.splits["train"]} == {
        ids[0]: "billing", ids[1]: "tech", ids[2]: "billing", ids[5]: "billing"}


def test_a_metric_chooses_which_labelled_trajectories_count(
        labelled: tuple[Store, list[str]], config: Config) -> None:
    store, ids = labelled
    passed = curate(store, config, "support", Filters(label="queue", metric="resolved"),
                    split={"train": 1.0})
    # 0, 1, 3 and 5 are rated; 3 has no label, 1 and 5 failed (a correction does not count)
    assert by_id(passed) == {ids[0]: {"role": "assistant", "content": "billing"}}
    assert passed.counts["read"] == 4 and passed.counts["without_target"] == 3
    failed = curate(store, config, "support",
                    Filters(label="queue", metric="resolved", value=False), split={"train": 1.0})
    assert by_id(failed) == {ids[1]: {"role": "assistant", "content": "tech"},
                             ids[5]: {"role": "assistant", "content": "billing"}}


def test_near_copies_keep_the_latest_label_corrected_or_not(tmp_path: Path,
                                                             config: Config) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/copies.db")
    try:
        ids = insert(store, [
            Call("Where is my parcel, it is late?", "No.", "e1", BASE,
                 feedback={"queue": "tech", "correction": "Tracking is on the order page."}),
            Call("Where is my parcel, it is late??", "No.", "e2", BASE + 10,
                 feedback={"queue": "shipping"}),
        ])
        labels = curate(store, config, "support", Filters(label="queue"), split={"train": 1.0})
        assert by_id(labels) == {ids[1]: {"role": "assistant", "content": "shipping"}}
        assert labels.counts["duplicates"] == 1
        answers = curate(store, config, "support", split={"train": 1.0})
        assert list(by_id(answers)) == [ids[0]]  # without a label, the corrected one wins
    finally:
        store.close()


@pytest.mark.parametrize(("filters", "kind", "message"), [
    (Filters(label="nope"), "sft",
     r"label 'nope' is not a metric; give a metric of type label \(label metrics: queue\)"),
    (Filters(label="resolved"), "sft", "label 'resolved' is a boolean metric"),
    (Filters(label="correction"), "sft", "label 'correction' is a demonstration metric"),
    (Filters(label="queue"), "preference", "`label` makes sft or environment examples"),
    (Filters(label="queue", corrected=True), "sft", "`label` and `corrected` do not go"),
    (Filters(label="queue", metric="queue"), "sft", "'queue' is already the label learnt"),
])
def test_refusals(labelled: tuple[Store, list[str]], config: Config, filters: Filters,
                  kind: str, message: str) -> None:
    store, _ = labelled
    with pytest.raises(CurationError, match=message):
        curate(store, config, "support", filters, kind=kind)  # type: ignore[arg-type]


def test_nothing_labelled_says_so(labelled: tuple[Store, list[str]], config: Config) -> None:
    store, _ = labelled
    with pytest.raises(CurationError) as info:
        curate(store, config, "support", Filters(label="queue", tags={"lang": "fr"}))
    assert str(info.value) == "no sft examples: 7 trajectories of 'support'; tags leave 0"
    with pytest.raises(CurationError) as info:
        curate(store, config, "support", Filters(label="queue", until=BASE + 1,
                                                 metric="resolved", value=False))
    assert str(info.value) == ("no sft examples: 7 trajectories of 'support'; since/until "
                               "leave 1; feedback on 'resolved' leave 1; 1 without a label on "
                               "'queue' or a passing rating")
    with pytest.raises(CurationError, match="; 1 without a label on 'queue'$"):
        curate(store, config, "support", Filters(label="queue", since=BASE + 30, until=BASE + 31))


def test_manifests_keep_the_label_and_old_ones_still_load(
        labelled: tuple[Store, list[str]], config: Config, tmp_path: Path) -> None:
    store, _ = labelled
    curated = curate(store, config, "support", Filters(label="queue"), split={"train": 1.0})
    export(curated, "openai-sft", tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert manifest.filters["label"] == "queue" and manifest.filters["kind"] == "sft"
    assert Filters.from_json(manifest.filters) == curated.filters
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text()
            .splitlines()]
    assert sorted(r["messages"][-1]["content"] for r in rows) == [
        "billing", "billing", "billing", "tech"]
    old = {k: v for k, v in manifest.filters.items() if k != "label"}  # before `label`
    assert Filters.from_json(old) == Filters()
    assert Filters.from_json({**old, "metric": "resolved"}).label is None


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = write_workspace(tmp_path / "cli-ws", CONFIG)
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        ids = insert(store, LABELLED)
        store.add_feedback(trajectory_id=ids[2], metric="queue", value="billing")
    finally:
        store.close()
    return ws.path


def test_data_export_label(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels"
    result = CliRunner().invoke(data, [
        "export", "support", "-w", str(workspace), "--format", "openai-sft", "--out", str(out),
        "--label", "queue", "--split", "train=1", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["filters"]["label"] == "queue"
    assert shown["counts"]["kept"] == 4 and shown["counts"]["without_target"] == 2
    answers = sorted(json.loads(line)["messages"][-1]["content"]
                     for line in (out / "train.jsonl").read_text().splitlines())
    assert answers == ["billing", "billing", "billing", "tech"]


def test_train_label_reaches_curation(workspace: Path) -> None:
    result = CliRunner().invoke(train, ["support", "-w", str(workspace), "--recipe",
                                        "classifier", "--label", "resolved", "--quiet"])
    assert isinstance(result.exception, CurationError), result.output
    assert "label 'resolved' is a boolean metric" in str(result.exception)
