"""Canaries: a stable series stays quiet, a degraded provider alerts (log, webhook, /metrics),
and `[canaries]` runs on its schedule inside a served gateway."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import serve
from tests.evals.workspaces import eval_workspace
from tests.gateway.call_spy import spy_on_calls
from veteran.cli import cli
from veteran.evals.canary import CanaryPoints, CanaryRun, judge, post_webhook, run_canary
from veteran.gateway import UVICORN_OPTIONS, Gateway, create_app, running
from veteran.providers.base import Provider
from veteran.serving import compose
from veteran.store import CaptureWriter, Store, TrajectoryFilter
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread
from veteran.workspace import Workspace

CANARY = """
variants = ["triage:strong"]
[dataset]
file = "evals/tickets.jsonl"
limit = 60
[graders.label]
type = "normalized"
"""
SERIES = 'suite="canary",variant="triage:strong",grader="label"'


def _workspace(path: Path, canaries: str) -> Workspace:
    ws = eval_workspace(path, suites={"canary": CANARY})
    with (path / "veteran.toml").open("a", encoding="utf-8") as f:
        f.write(f"\n[canaries]\n{canaries}\n")
    return ws


def _degrade(ws: Workspace) -> None:
    """The strong model's provider starts answering wrong far more often."""
    toml = ws.path / "veteran.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace("error_rate = 0.05", "error_rate = 0.7", 1), encoding="utf-8")


def _canary(ws: Workspace) -> CanaryRun:
    config = ws.load_config()
    store = Store.open(ws.database_url(config))
    try:
        async def once() -> CanaryRun:
            async with running(config, store, ws) as gateway:
                return await run_canary(gateway, ws, "canary")

        return asyncio.run(once())
    finally:
        store.close()


def test_judge_rule() -> None:
    # too little history: no verdict
    assert judge([0.9] * 4, 0.1, 0.0, 0.2, min_history=5, min_drop=0.05) == (None, None, False)
    # a flat history: min_drop (or the point's own half-width) is the tolerance
    baseline, allowed, alert = judge([0.9] * 5, 0.86, 0.84, 0.88, min_history=5, min_drop=0.05)
    assert baseline == pytest.approx(0.9) and allowed == pytest.approx(0.05) and not alert
    assert judge([0.9] * 5, 0.84, 0.83, 0.85, min_history=5, min_drop=0.05)[2]
    # a wide interval on the new point widens the tolerance
    assert not judge([0.9] * 5, 0.8, 0.6, 1.0, min_history=5, min_drop=0.05)[2]
    # a noisy history: 3 standard deviations
    noisy = [0.7, 0.9, 0.8, 1.0, 0.6]
    _, allowed, alert = judge(noisy, 0.55, 0.54, 0.56, min_history=5, min_drop=0.05)
    assert allowed == pytest.approx(3 * 0.158113883, rel=1e-6) and not alert


def test_stable_series_then_degraded_provider_alerts(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    ws = _workspace(tmp_path, f'webhook = "{upstream.url}/chat/completions?token=s3cret"\n'
                              "min_history = 3")
    caplog.set_level(logging.INFO, logger="veteran.canary")
    stable = [_canary(ws) for _ in range(4)]
    assert all(not run.alerts for run in stable)
    assert [len(run.points) for run in stable] == [1, 1, 1, 1]
    last = stable[-1].points[0]
    assert last.baseline is not None and last.allowed_drop is not None and last.n == 60
    assert stable[0].points[0].baseline is None  # no history yet
    assert not upstream.requests and "canary alert" not in caplog.text

    _degrade(ws)
    degraded = _canary(ws)
    assert len(degraded.alerts) == 1
    point = degraded.alerts[0]
    assert point.mean < last.mean - 0.1 and point.drop is not None and point.drop > 0.1
    alerts = [r for r in caplog.records if r.name == "veteran.canary" and r.levelname == "WARNING"
              and "canary alert" in r.getMessage()]
    assert len(alerts) == 1 and "triage:strong" in alerts[0].getMessage()
    assert "s3cret" not in caplog.text  # the webhook URL is never logged
    hook = upstream.requests[-1]
    assert hook["type"] == "veteran.canary.alert" and hook["suite"] == "canary"
    assert hook["variant"] == "triage:strong" and hook["alert"] is True
    assert hook["run_id"] == degraded.run_id and hook["mean"] == pytest.approx(point.mean)

    # still degraded: alerting points are not history, so it keeps alerting
    assert _canary(ws).alerts

    store = Store.open(ws.database_url(ws.load_config()))
    try:
        series = CanaryPoints(store.engine).series("canary")
        assert [p.alert for p in series] == [False] * 4 + [True, True]
    finally:
        store.close()

    with serve(ws) as server:
        text = httpx.get(server.url + "/metrics", timeout=10).text
    assert f"veteran_canary_alert{{{SERIES}}} 1" in text
    assert f"veteran_canary_score{{{SERIES}}} " in text
    assert 'veteran_provider_up{provider="m"} 1' in text
    assert "veteran_captured_total " in text and "veteran_capture_spooled 0" in text

    history = CliRunner().invoke(cli, ["eval", "canary-history", "canary", "--json",
                                       "-w", str(ws.path)])
    assert history.exit_code == 0, history.output
    assert [p["alert"] for p in orjson.loads(history.output)["points"]][-2:] == [True, True]


def test_cli_once_exits_1_on_alert(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, "min_history = 2")
    runner = CliRunner()
    for _ in range(2):
        ok = runner.invoke(cli, ["eval", "canary", "canary", "--once", "-w", str(ws.path)])
        assert ok.exit_code == 0, ok.output
        assert "triage:strong label" in ok.output
    _degrade(ws)
    bad = runner.invoke(cli, ["eval", "canary", "canary", "-w", str(ws.path)])
    assert bad.exit_code == 1 and "ALERT" in bad.output
    wrong = runner.invoke(cli, ["eval", "canary", "canary", "--every", "soon",
                                "-w", str(ws.path)])
    assert wrong.exit_code == 2


def test_webhook_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="veteran.canary")
    sent = asyncio.run(post_webhook("http://127.0.0.1:9/hook?key=s3cret", {"a": 1}, timeout=2))
    assert sent is False
    assert "canary webhook to 127.0.0.1 failed" in caplog.text and "s3cret" not in caplog.text


def _counted(start: Callable[[Provider], Awaitable[None]], names: list[str]
             ) -> Callable[[Provider], Awaitable[None]]:
    async def counted(self: Provider) -> None:
        names.append(self.name)
        await start(self)

    return counted


def test_served_gateway_runs_the_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """The canaries run through the live gateway: its providers are started once and its one
    capture writer stores the canary's calls, one trajectory per call."""
    ws = _workspace(tmp_path, 'suites = ["canary"]\nevery = "1s"')
    config = ws.load_config()
    store = Store.open(ws.database_url(config))
    gateway = Gateway(config, store, spool_dir=ws.path / "spool",
                      memory_dir=ws.path / "memory", workspace=ws)
    compose(gateway, ws)
    provider_starts: list[str] = []
    writer_starts: list[int] = []
    for cls in {type(p) for p in gateway.providers.values()}:  # any instance, any gateway
        monkeypatch.setattr(cls, "start", _counted(cls.start, provider_starts))
    writer_start = CaptureWriter.start

    def counted_writer_start(self: CaptureWriter) -> None:
        writer_starts.append(id(self))
        writer_start(self)

    monkeypatch.setattr(CaptureWriter, "start", counted_writer_start)
    try:
        with spy_on_calls(monkeypatch) as spy, \
                ServerThread(create_app(gateway), **UVICORN_OPTIONS) as server:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if len(CanaryPoints(store.engine).series("canary")) >= 2:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the [canaries] schedule did not run twice")
            text = httpx.get(server.url + "/metrics", timeout=10).text
        assert f"veteran_canary_score{{{SERIES}}} " in text
        assert f"veteran_canary_alert{{{SERIES}}} 0" in text
        assert not gateway._tasks  # stopped on shutdown
        assert sorted(provider_starts) == sorted(config.providers)  # each started once
        assert writer_starts == [id(gateway.writer)]
        points = CanaryPoints(store.engine).series("canary")
        for run_id in {p.run_id for p in points}:
            calls = list(store.export(TrajectoryFilter(tags={"eval_run": run_id})))
            assert len(calls) == 60  # one trajectory per sample: the suite's limit
            assert {c.id for c in calls} <= set(spy.trajectory_ids)  # each through the path
        assert spy.outside == 0
    finally:
        store.close()
