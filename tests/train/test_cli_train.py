"""`veteran train`: parameters, the progress, Ctrl-C and `--resume`, JSON output."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from tests.train.test_job import CONFIG, FakeRecipe, _trajectories
from veteran.cli import main
from veteran.cli.train import parse_params, train
from veteran.models import Registry
from veteran.store import Store
from veteran.workspace import Workspace

pytestmark = pytest.mark.usefixtures("fake_recipe")  # tests/conftest.py


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = write_workspace(tmp_path / "ws", CONFIG)
    store = Store.open(workspace.database_url(workspace.load_config()))
    try:
        _trajectories(store, 20, at=time.time() - 1000)
    finally:
        store.close()
    return workspace


def _train(ws: Workspace, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(train, ["triage", "-w", str(ws.path), "--recipe", "fake", *args])
    return result.exit_code, result.output + repr(result.exception)


def test_params_are_json_when_they_parse() -> None:
    assert parse_params(("lr=1e-4", "targets=[\"q\",\"v\"]", "name=tiny", "flag=true",
                         "empty=")) == {"lr": 1e-4, "targets": ["q", "v"], "name": "tiny",
                                         "flag": True, "empty": ""}
    with pytest.raises(click.BadParameter, match="KEY=VALUE"):
        parse_params(("novalue",))


def test_train_registers_a_model_and_prints_it(ws: Workspace) -> None:
    code, out = _train(ws, "--param", "lr=0.5", "--seed", "4", "--metric", "resolved",
                       "--split", "train=0.8,test=0.2", "-q")
    assert code == 0, out
    [record] = Registry(ws.path).list()
    assert f"model {record.id} (causal-lm)" in out and "train_loss 0.25" in out
    assert f"veteran models promote triage {record.id} --weight 0.1" in out
    job = FakeRecipe.jobs[0]
    assert job.params == {"lr": 0.5} and job.seed == 4
    assert record.lineage.dataset["filters"]["split"] == {"train": 0.8, "test": 0.2}
    code, out = _train(ws)  # with the progress bar
    assert code == 0, out
    code, out = _train(ws, "--json")
    assert code == 0, out
    assert orjson.loads(out[: out.rindex("}") + 1])["recipe"] == "fake"


def test_ctrl_c_stops_and_resume_continues(ws: Workspace) -> None:
    FakeRecipe.stop_at = 1
    code, out = _train(ws, "-q")
    assert code == 130, out
    [staged] = Registry(ws.path).list_staged()
    assert f"stopped; resume with: veteran train triage --recipe fake --resume {staged.id}" in out
    FakeRecipe.stop_at = None
    code, out = _train(ws, "--resume", staged.id, "-q")
    assert code == 0, out
    assert Registry(ws.path).get(staged.id).status == "ready"
    assert FakeRecipe.ran == [0, 1, 2, 3]


def test_train_refuses_an_unknown_recipe(ws: Workspace) -> None:
    result = CliRunner().invoke(train, ["triage", "-w", str(ws.path), "--recipe", "nope"])
    assert result.exit_code != 0
    assert "unknown recipe 'nope'" in str(result.exception)


def test_a_refused_train_leaves_no_unfinished_job(ws: Workspace, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The real `fewshot` recipe, given a parameter it does not have: refused (exit 2) before
    its job folder is made, so no unfinished job is left whose --resume fails the same way."""
    monkeypatch.setattr(sys, "argv", ["veteran", "train", "triage", "-w", str(ws.path),
                                      "--recipe", "fewshot", "--param", "nope=1", "-q"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert "recipe 'fewshot' has no parameter 'nope'" in capsys.readouterr().err
    assert Registry(ws.path).list_staged() == []
    assert not (ws.path / "models" / ".staging").exists()
