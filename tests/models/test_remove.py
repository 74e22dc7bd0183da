"""`veteran models remove`: a model nothing routes to is deleted (after a confirmation); one
that veteran.toml still routes to, or that another model was trained on, is refused with exit
status 2 and what uses it named; an unfinished training can be removed too."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import register_model
from veteran.cli import main
from veteran.cli.models import models
from veteran.models import Registry
from veteran.store import Store
from veteran.train.promote import promote, rollback
from veteran.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    yield init_workspace(tmp_path / "ws")


def _veteran(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             *args: str) -> tuple[int, str]:
    """`veteran ARGS` as the console script runs it (its exit status for a refusal)."""
    monkeypatch.setattr(sys, "argv", ["veteran", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_promoted_model_is_kept_until_it_is_rolled_back(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    record = register_model(ws, function="chat")
    store = Store.open(f"sqlite:///{ws.path}/veteran.db")
    try:
        promote(ws, ws.load_config(), store, "chat", record.id, weight=0.1, skip_gate=True)
    finally:
        store.close()
    code, out = _veteran(monkeypatch, capsys, "models", "remove", record.id, "-w",
                         str(ws.path), "--yes")
    assert code == 2
    assert f"functions.chat.variants.{record.id}" in out
    assert f"providers.local.paths.{record.id}" in out
    assert "roll it back first: veteran models rollback chat" in out
    assert Registry(ws.path).has(record.id)

    rollback(ws, "chat")
    result = CliRunner().invoke(models, ["remove", record.id, "-w", str(ws.path)], input="n\n")
    assert result.exit_code == 1 and "delete model" in result.output  # declined: kept
    assert Registry(ws.path).has(record.id)
    result = CliRunner().invoke(models, ["remove", record.id, "-w", str(ws.path)], input="y\n")
    assert result.exit_code == 0 and f"removed model {record.id} (sft-lora)" in result.output
    assert not Registry(ws.path).has(record.id)
    assert not [p for p in (ws.path / "models").iterdir() if record.id in p.name]
    code, out = _veteran(monkeypatch, capsys, "models", "remove", record.id, "-w",
                         str(ws.path), "--yes")
    assert code == 2 and f"no model or unfinished training {record.id!r}" in out


def test_a_model_others_were_trained_on_is_kept(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    base = register_model(ws, function="chat")
    built = register_model(ws, function="chat", base_model=base.id)
    code, out = _veteran(monkeypatch, capsys, "models", "remove", base.id, "-w", str(ws.path),
                         "--yes")
    assert code == 2 and f"model {built.id} (trained on top of it)" in out
    assert "remove the models trained on it first" in out
    code, out = _veteran(monkeypatch, capsys, "models", "remove", built.id, "-w",
                         str(ws.path), "--yes")
    assert code == 0 and f"removed model {built.id}" in out
    code, out = _veteran(monkeypatch, capsys, "models", "remove", base.id, "-w", str(ws.path),
                         "--yes")
    assert code == 0 and Registry(ws.path).list() == []


def test_an_unfinished_training_can_be_removed(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    staged = Registry(ws.path).stage("chat", "sft-lora", {"function": "chat",
                                                          "recipe": "sft-lora"})
    code, out = _veteran(monkeypatch, capsys, "models", "remove", staged.id, "-w",
                         str(ws.path), "--yes")
    assert code == 0 and f"removed unfinished training {staged.id}" in out
    assert not staged.path.exists() and Registry(ws.path).list_staged() == []
    # A name that walks out of the staging folder is no model.
    code, out = _veteran(monkeypatch, capsys, "models", "remove", "../models", "-w",
                         str(ws.path), "--yes")
    assert code == 2 and "no model or unfinished training '../models'" in out
