"""`veteran env export`, and the package's public face."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

import veteran.envs
from tests.envs.helpers import workspace
from veteran.cli.envs import envs
from veteran.errors import VeteranError


def test_export_command(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    out = tmp_path / "out"
    result = CliRunner().invoke(envs, ["export", "triage", "--suite", "tickets", "--out",
                                       str(out), "-w", str(ws.path), "--json"])
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown == {"environment": "triage-tickets", "package": "triage_tickets",
                     "path": str(out), "tasks": 6, "graders": ["label", "exact"],
                     "weights": {"label": 1.0, "exact": 1.0}}
    assert (out / "triage_tickets" / "tasks.jsonl").read_text().count("\n") == 6

    one = tmp_path / "one"
    result = CliRunner().invoke(envs, ["export", "triage", "--suite", "judged", "--out",
                                       str(one), "-w", str(ws.path), "--grader", "polite",
                                       "--package", "polite_env"])
    assert result.exit_code == 0, result.output
    assert "exported triage-judged: 4 tasks, graders label, polite" in result.output
    assert orjson.loads((one / "polite_env" / "environment.json").read_bytes())["weights"] == {
        "label": 0.0, "polite": 1.0}


def test_export_command_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    runner = CliRunner()
    for args, message in [
        (["nope", "--suite", "tickets"], "unknown function 'nope'"),
        (["triage", "--suite", "missing"], "no such suite"),
        (["triage", "--suite", "tickets", "--source", "store"], "no trajectories"),
        (["triage", "--suite", "tickets", "--grader", "zz"], "unknown graders"),
    ]:
        result = runner.invoke(envs, ["export", *args, "--out", str(tmp_path / "out"),
                                      "-w", str(ws.path)])
        assert isinstance(result.exception, VeteranError), args
        assert message in result.exception.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_public_names() -> None:
    assert veteran.envs.__all__ == sorted(veteran.envs.__all__)
    for name in veteran.envs.__all__:
        assert hasattr(veteran.envs, name), name
