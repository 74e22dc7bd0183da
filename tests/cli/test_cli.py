"""The CLI: init, trajectories list/show/export/import, feedback add."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from veteran.cli import cli
from veteran.store import Store, new_id
from veteran.types import TrajectoryRecord
from veteran.workspace import Workspace

CONFIG = """
[providers.m]
kind = "mock"
[functions.triage.variants.a]
model = "m/echo"
[metrics.resolved]
type = "boolean"
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "veteran.toml").write_text(CONFIG, encoding="utf-8")
    ws = Workspace(tmp_path)
    store = Store.open(ws.database_url(ws.load_config()))
    now = time.time()
    store.insert(
        TrajectoryRecord(
            id=f"t{i}",
            episode_id=new_id(),
            created_at=now + i,
            function="triage",
            variant="a",
            provider="m",
            model="echo",
            request={"messages": [{"role": "user", "content": f"q{i}"}]},
            response={"choices": [{"message": {"role": "assistant", "content": f"a{i}"}}]},
            tags={"team": "a" if i % 2 else "b"},
            usage={"total_tokens": 3},
        )
        for i in range(4)
    )
    store.close()
    return ws


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_creates_workspace(tmp_path: Path) -> None:
    out = run("init", str(tmp_path / "new"))
    assert (tmp_path / "new" / "veteran.toml").exists()
    assert "veteran serve" in out


def test_list_table_and_json(workspace: Workspace) -> None:
    assert "t3" in run("trajectories", "list", "--workspace", str(workspace.path))
    data = orjson.loads(
        run("trajectories", "list", "-w", str(workspace.path), "--json", "--tag", "team=a")
    )
    assert [t["id"] for t in data["data"]] == ["t3", "t1"]
    page = orjson.loads(
        run("trajectories", "list", "-w", str(workspace.path), "--json", "--limit", "3")
    )
    assert page["next_cursor"]


def test_a_call_no_provider_saw_lists_no_model(workspace: Workspace) -> None:
    store = Store.open(workspace.database_url(workspace.load_config()))
    store.insert([TrajectoryRecord(
        id="refused", episode_id=new_id(), created_at=time.time() + 10, function="triage",
        request={"messages": [{"role": "user", "content": "q"}]}, status="error",
        error="refused by a rule")])
    store.close()
    out = run("trajectories", "list", "-w", str(workspace.path))
    assert "refused" in out and "None" not in out  # it was "None/None"
    assert "m/echo" in out


def test_show(workspace: Workspace) -> None:
    shown = orjson.loads(run("trajectories", "show", "t2", "-w", str(workspace.path)))
    assert shown["response"]["choices"][0]["message"]["content"] == "a2"


def test_workspace_from_environment(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VETERAN_WORKSPACE", str(workspace.path))
    assert "t0" in run("trajectories", "list")


def test_feedback_add_then_show(workspace: Workspace) -> None:
    run(
        "feedback",
        "add",
        "-w",
        str(workspace.path),
        "--trajectory",
        "t1",
        "--metric",
        "resolved",
        "--value",
        "true",
    )
    shown = orjson.loads(run("trajectories", "show", "t1", "-w", str(workspace.path)))
    assert [(f["metric"], f["value"]) for f in shown["feedback"]] == [("resolved", True)]


def test_export_then_import_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    run("trajectories", "export", "-w", str(workspace.path), "--format", "jsonl", "-o", str(out))
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [t["id"] for t in lines] == ["t0", "t1", "t2", "t3"]
    assert all(t["version"] == 1 and t["request"] and "feedback" in t for t in lines)
    # an OpenAI-format log built from the export imports into a fresh workspace
    log = tmp_path / "log.jsonl"
    log.write_bytes(
        b"".join(
            orjson.dumps(
                {"request": t["request"], "response": t["response"], "created_at": t["created_at"]}
            )
            + b"\n"
            for t in lines
        )
    )
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "veteran.toml").write_text(CONFIG, encoding="utf-8")
    assert "imported 4" in run("trajectories", "import", str(log), "-w", str(fresh))
    imported = orjson.loads(
        run("trajectories", "list", "-w", str(fresh), "--json", "--tag", "source=import")
    )["data"]
    assert len(imported) == 4


def test_import_is_all_or_nothing_and_names_the_line(workspace: Workspace, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    good = {
        "request": {"messages": [{"role": "user", "content": "x"}]},
        "response": {"choices": []},
    }
    log.write_bytes(orjson.dumps(good) + b"\n" + b'{"request": {}}\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "veteran.cli",
            "trajectories",
            "import",
            str(log),
            "-w",
            str(workspace.path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "line 2" in result.stderr and "nothing imported" in result.stderr
    data = orjson.loads(run("trajectories", "list", "-w", str(workspace.path), "--json"))["data"]
    assert len(data) == 4  # only the original ones


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "veteran.cli", "trajectories", "list", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "veteran init" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("created_at", ["1e300", -5, "soon", True])
def test_import_refuses_impossible_times(
    workspace: Workspace, tmp_path: Path, created_at: object
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(orjson.dumps({
        "request": {"messages": [{"role": "user", "content": "x"}]},
        "response": {"choices": []},
        "created_at": float(created_at) if created_at == "1e300" else created_at,
    }) + b"\n")
    result = CliRunner().invoke(cli, ["trajectories", "import", str(log), "-w",
                                      str(workspace.path)])
    assert result.exit_code != 0
    assert "created_at" in str(result.exception)
