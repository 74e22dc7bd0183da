"""The verifiers export: a package verifiers loads by id, whose reward is veteran's grader."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serve
from tests.envs.helpers import graders, workspace
from veteran.envs import EnvError, Environment, export_verifiers, read_bundle
from veteran.evals.types import Sample

vf = pytest.importorskip("verifiers.v1", reason="verifiers is in the `train` extra")


def trace_of(task: Any, answer: Any) -> Any:
    """A finished single-turn trace: the task's prompt, then the model's answer."""
    trace = vf.Trace(task=vf.TraceTask(type=type(task).__name__, data=task.data, key=task.key,
                                       hash=task.hash),
                     agent=vf.AgentInfo(config=vf.AgentConfig()))
    prompt = [vf.SystemMessage(content=task.data.system_prompt)] if task.data.system_prompt else []
    for i, message in enumerate([*prompt, *task.data.prompt, answer]):
        trace.nodes.append(vf.MessageNode(parent=i - 1 if i else None, message=message,
                                          sampled=message is answer))
    return trace


def load(package: str, out: Path, monkeypatch: pytest.MonkeyPatch, **config: Any) -> Any:
    """The environment as verifiers loads one: by its id, the package name."""
    monkeypatch.syspath_prepend(str(out))
    raw = {"taskset": {"id": package, **config},
           "agent": {"runtime": {"type": "subprocess"}}}
    return vf.load_environment(vf.SingleAgentEnvConfig.model_validate(raw))


def test_verifiers_loads_the_export_and_rewards_with_the_suites_graders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace(tmp_path / "ws")
    env = Environment.from_suite(ws.path, ws.load_config(), "tickets", function="triage")
    folder = export_verifiers(env, tmp_path / "out", package="triage_tickets_env")
    assert folder == tmp_path / "out" / "triage_tickets_env"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "README.md", "pyproject.toml", "triage_tickets_env"]

    loaded = load("triage_tickets_env", tmp_path / "out", monkeypatch)
    assert isinstance(loaded, vf.SingleAgentEnv)
    assert type(loaded._harnesses["agent"]).__name__ == "VeteranHarness"  # one chat turn
    vf_tasks = list(loaded.taskset)
    assert [t.data.id for t in vf_tasks] == [t.id for t in env.tasks]
    first = vf_tasks[0]
    assert first.data.system_prompt == "\n\n".join(env.system)
    assert [m.content for m in first.data.prompt] == [m["content"] for m in env.tasks[0].messages]

    for task, answer in zip(vf_tasks, ["account", "Technical.", "billing", "wrong"], strict=False):
        trace = trace_of(task, vf.AssistantMessage(content=answer))
        asyncio.run(task.score(trace))
        want = asyncio.run(env.score(task.data.id, answer))
        assert trace.reward == want.value
        assert trace.metrics == {n: s.value for n, s in want.scores.items()}

    import triage_tickets_env

    assert isinstance(triage_tickets_env.load_environment(), vf.SingleAgentEnv)
    assert triage_tickets_env.__all__ == ["Harness", "Taskset", "load_environment"]


def test_tool_calls_and_unanswered_rollouts(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    task = Sample("t1", [{"role": "user", "content": "refund order 7"}],
                  reference=[{"name": "refund", "arguments": {"order": 7}}])
    specs = {"call": {"type": "tool_call"}}
    env = Environment("tools", [task], graders(specs), specs=specs)
    export_verifiers(env, tmp_path / "out", package="tools_env")
    [vf_task] = list(load("tools_env", tmp_path / "out", monkeypatch).taskset)
    call = vf.ToolCall(id="c1", name="refund", arguments='{"order": 7}')
    trace = trace_of(vf_task, vf.AssistantMessage(content=None, tool_calls=[call]))
    asyncio.run(vf_task.score(trace))
    assert trace.reward == 1.0
    assert vf_task.answered_with_tools(vf.Response(
        id="r", created=0, model="m", message=vf.AssistantMessage(tool_calls=[call]),
        finish_reason="tool_calls"))


def test_judges_call_the_endpoint_they_are_given(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace(tmp_path / "ws")
    env = Environment.from_suite(ws.path, ws.load_config(), "judged", complete=_unused)
    export_verifiers(env, tmp_path / "out", package="judged_env")
    with pytest.raises(EnvError, match="judge_base_url"):
        load("judged_env", tmp_path / "out", monkeypatch)
    with serve(ws) as server:
        import judged_env

        loaded = judged_env.load_environment(judge_base_url=server.url + "/v1")
        task = next(iter(loaded.taskset))
        trace = trace_of(task, vf.AssistantMessage(content=str(env.tasks[0].reference)))
        asyncio.run(task.score(trace))
    assert trace.metrics == {"label": 1.0, "polite": 1.0} and trace.reward == 1.0


def test_nothing_is_written_half(tmp_path: Path) -> None:
    specs = {"exact": {"type": "exact"}}
    env = Environment("x", [Sample("a", [{"role": "user", "content": "q"}], "r")],
                      graders(specs), specs=specs)
    with pytest.raises(EnvError, match="lower-case Python identifier"):
        export_verifiers(env, tmp_path / "out", package="Bad-Name")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(EnvError, match="not an empty folder"):
        export_verifiers(env, tmp_path / "full", package="ok")
    with pytest.raises(EnvError, match="no grader specs"):
        export_verifiers(Environment("x", env.tasks, env.graders), tmp_path / "o2", package="ok")
    unserialisable = Environment("x", [Sample("a", [{"role": "user", "content": "q"}],
                                              reference={1, 2})], env.graders, specs=specs)
    with pytest.raises(TypeError):
        export_verifiers(unserialisable, tmp_path / "o3", package="ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_the_bundle_round_trips_and_the_package_builds(tmp_path: Path) -> None:
    specs = {"exact": {"type": "exact"}, "n": {"type": "normalized"}}
    env = Environment("x", [Sample("a", [{"role": "user", "content": "q"}], ["r", "s"],
                                   metadata={"k": 1}, tools=[{"type": "function"}])],
                      graders(specs), specs=specs, weights={"n": 2}, system="S")
    folder = export_verifiers(env, tmp_path / "out", package="roundtrip_env")
    again = read_bundle(folder)
    assert again.tasks == env.tasks and again.weights == env.weights
    assert again.system == ["S"] and again.specs == specs
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp_path / "wheels"), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    [wheel] = (tmp_path / "wheels").glob("roundtrip_env-0.1.0-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"roundtrip_env/__init__.py", "roundtrip_env/environment.json",
            "roundtrip_env/tasks.jsonl"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read("roundtrip_env-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: veteran" in metadata and "Requires-Dist: verifiers" in metadata


async def _unused(body: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("not called")
