from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from tests.evals.workspaces import echo_dataset, eval_workspace
from veteran.evals.runner import RunOutcome, run_suite
from veteran.evals.runs import Runs
from veteran.evals.suite import load_suite
from veteran.gateway import running
from veteran.store import Store
from veteran.testing.fake_upstream import FakeUpstream
from veteran.workspace import Workspace

ECHO = """
variants = ["{variant}"]
concurrency = {concurrency}
epochs = {epochs}
[dataset]
file = "evals/echo.jsonl"
[graders.exact]
type = "exact"
"""


def _run(ws: Workspace, suite: str, **kwargs: object) -> RunOutcome:
    config = ws.load_config()
    store = Store.open(ws.database_url(config))
    try:
        async def run() -> RunOutcome:
            async with running(config, store, ws) as gateway:
                return await run_suite(gateway, ws, load_suite(ws.path, suite, config),
                                       **kwargs)  # type: ignore[arg-type]

        return asyncio.run(run())
    finally:
        store.close()


def _samples_per_run(ws: Workspace, run_id: str) -> Counter[str]:
    """How many trajectories each sample has in the run (one per model call)."""
    engine = sa.create_engine(ws.database_url(ws.load_config()))
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT s.value FROM trajectory_tags r JOIN trajectory_tags s "
            "ON s.trajectory_id = r.trajectory_id AND s.key = 'eval_sample' "
            "WHERE r.key = 'eval_run' AND r.value = :run"), {"run": run_id}).all()
    engine.dispose()
    return Counter(v for (v,) in rows)


def test_a_run_calls_the_upstream_through_the_gateway_and_caches(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    ws = eval_workspace(tmp_path, upstream=upstream.url,
                        suites={"echo": ECHO.format(variant="echo:up", concurrency=4, epochs=2)})
    echo_dataset(tmp_path / "evals" / "echo.jsonl", 30)
    first = _run(ws, "echo")
    assert (first.total, first.ran, first.cached, first.errors) == (60, 60, 0, 0)
    assert len(upstream.requests) == 60  # 30 samples x 2 epochs: each epoch is its own call
    assert upstream.requests[0]["model"] == "fake-model"
    per_sample = _samples_per_run(ws, first.run_id)
    assert len(per_sample) == 30 and set(per_sample.values()) == {2}
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        results = Runs(store.engine).results(first.run_id)
        assert {r.scores["exact"]["passed"] for r in results} == {True}
        assert all(r.cost is not None and r.cost > 0 for r in results)
        traj = store.trajectory(results[0].trajectory_id or "")
        assert traj.function == "echo" and traj.variant == "up"
        assert traj.tags["eval_suite"] == "echo" and traj.tags["eval_run"] == first.run_id
        assert Runs(store.engine).get(first.run_id).status == "finished"
    finally:
        store.close()
    again = _run(ws, "echo")
    assert (again.ran, again.cached) == (60, 60)
    assert len(upstream.requests) == 60  # the re-run called no model
    fresh = _run(ws, "echo", use_cache=False, epochs=1)
    assert (fresh.ran, fresh.cached) == (30, 0)
    assert len(upstream.requests) == 90


def test_a_failing_upstream_is_graded_as_a_failure(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path, upstream="http://127.0.0.1:9",  # nothing listens
                        suites={"echo": ECHO.format(variant="echo:up", concurrency=2, epochs=1)})
    echo_dataset(tmp_path / "evals" / "echo.jsonl", 3)
    outcome = _run(ws, "echo")
    assert (outcome.ran, outcome.errors) == (3, 3)
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        results = Runs(store.engine).results(outcome.run_id)
    finally:
        store.close()
    assert all(r.output["error"] and r.scores["exact"]["passed"] is False for r in results)


def test_an_interrupted_run_resumes_without_repeating_finished_samples(tmp_path: Path) -> None:
    ws = eval_workspace(tmp_path, delay=15, suites={
        "slow": ECHO.format(variant="echo:slow", concurrency=8, epochs=1)})
    echo_dataset(tmp_path / "evals" / "echo.jsonl", 1000)
    env = {**os.environ, "VETERAN_WORKSPACE": str(ws.path)}
    log = (tmp_path / "stderr.txt").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "veteran.cli", "eval", "run", "slow", "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    engine = sa.create_engine(ws.database_url(ws.load_config()))
    done_before: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and len(done_before) < 250:
            time.sleep(0.05)
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            try:
                with engine.connect() as conn:
                    done_before = {s for (s,) in conn.execute(
                        sa.text("SELECT sample_id FROM eval_results"))}
            except sa.exc.OperationalError:  # tables not created yet
                continue
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
    with engine.connect() as conn:
        done_before = {s for (s,) in conn.execute(sa.text("SELECT sample_id FROM eval_results"))}
        run_id = conn.execute(sa.text("SELECT id FROM eval_runs")).scalar_one()
    engine.dispose()
    assert 250 <= len(done_before) < 1000, "the run was not interrupted mid-way"
    calls_before = _samples_per_run(ws, run_id)

    resumed = _run(ws, "slow", resume=run_id)
    assert resumed.run_id == run_id
    assert resumed.skipped == len(done_before) and resumed.ran == 1000 - len(done_before)
    calls_after = _samples_per_run(ws, run_id)
    assert all(calls_after[s] == calls_before[s] == 1 for s in done_before)  # none ran again
    assert set(calls_after) == {f"s{i}" for i in range(1000)}
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        runs = Runs(store.engine)
        assert len(runs.done(run_id)) == 1000
        assert runs.get(run_id).status == "finished"
    finally:
        store.close()
