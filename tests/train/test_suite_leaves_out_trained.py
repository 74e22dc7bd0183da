"""A suite built from a function's trajectories leaves out the rows a model of that function was
trained on (its dataset's manifest records them), and says how many and which model: otherwise
a gate measures memorisation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from tests.train.test_job import CONFIG, FakeRecipe, _trajectories
from veteran.cli import cli
from veteran.datasets import Filters, read_manifest
from veteran.evals.errors import EvalError
from veteran.evals.runner import load_dataset
from veteran.evals.suite import load_suite
from veteran.models import ModelRecord
from veteran.store import Store
from veteran.train.job import train_model
from veteran.workspace import Workspace

GATE = """
variants = ["triage:a"]
[dataset]
function = "triage"
metric = "resolved"
[graders.label]
type = "normalized"
"""


pytestmark = pytest.mark.usefixtures("fake_recipe")  # tests/conftest.py


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    (ws.path / "evals").mkdir()
    (ws.path / "evals" / "gate.toml").write_text(GATE, encoding="utf-8")
    return ws


@pytest.fixture
def store(ws: Workspace) -> Iterator[Store]:
    opened = Store.open(ws.database_url(ws.load_config()))
    _trajectories(opened, 30, at=time.time() - 1000)
    yield opened
    opened.close()


def _trained(ws: Workspace, store: Store) -> tuple[ModelRecord, set[str]]:
    record = train_model(ws, ws.load_config(), store, "triage", "fake",
                         filters=Filters(metric="resolved"), params={},
                         split={"train": 0.5, "test": 0.5})
    manifest = read_manifest(ws.path / "models" / record.id / "dataset")
    assert manifest.trajectories is not None
    trained = set(manifest.trajectories["train"])
    assert trained == {e.id for e in FakeRecipe.jobs[-1].train} and 0 < len(trained) < 30
    assert set(manifest.trajectories["test"]) == {e.id for e in FakeRecipe.jobs[-1].eval}
    # the record's lineage keeps the manifest without the ids (they stay in dataset/)
    assert "trajectories" not in record.lineage.dataset
    return record, trained


def test_the_gate_suite_leaves_out_what_the_model_learnt(ws: Workspace, store: Store) -> None:
    config = ws.load_config()
    suite = load_suite(ws.path, "gate", config)
    before, nothing = load_dataset(suite, ws.path, store)
    assert len(before) == 30 and not nothing.lines()
    record, trained = _trained(ws, store)

    samples, left_out = load_dataset(suite, ws.path, store)
    assert {s.id for s in samples}.isdisjoint(trained)
    assert len(samples) == 30 - len(trained)
    assert left_out.trained == len(trained) and left_out.models == {record.id: len(trained)}
    assert left_out.lines() == [f"left out {len(trained)} trajectories models were trained on: "
                                f"{record.id} ({len(trained)})"]

    # `veteran eval run` shows it, in text and in --json
    result = CliRunner().invoke(cli, ["eval", "run", "gate", "-w", str(ws.path), "-q"])
    assert result.exit_code == 0, result.output
    assert left_out.lines()[0] in result.output
    result = CliRunner().invoke(cli, ["eval", "run", "gate", "-w", str(ws.path), "--json"])
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)["left_out"]
    assert shown["trained"] == len(trained) and shown["models"] == {record.id: len(trained)}


def test_a_model_whose_manifest_names_no_rows_is_reported(ws: Workspace, store: Store) -> None:
    record, _ = _trained(ws, store)
    path = ws.path / "models" / record.id / "dataset" / "manifest.json"
    old = orjson.loads(path.read_bytes())
    del old["trajectories"]
    path.write_bytes(orjson.dumps({**old, "version": 1}))  # as veteran wrote it before
    samples, left_out = load_dataset(load_suite(ws.path, "gate", ws.load_config()), ws.path,
                                     store)
    assert len(samples) == 30 and left_out.unrecorded == (record.id,)
    assert f"could not leave out the training data of {record.id}" in left_out.lines()[0]


def test_a_suite_with_nothing_left_says_why(ws: Workspace, store: Store) -> None:
    _trained(ws, store)
    # the suite's "train" split is curation's (one split rule, same seed): all of it was learnt
    (ws.path / "evals" / "gate.toml").write_text(GATE.replace(
        'metric = "resolved"\n',
        'metric = "resolved"\nsplit = "train"\nfractions = { train = 0.5, test = 0.5 }\n'))
    suite = load_suite(ws.path, "gate", ws.load_config())
    with pytest.raises(EvalError, match=r"no samples \(left out \d+ trajectories models were "
                                        "trained on"):
        load_dataset(suite, ws.path, store)
