"""Live config, end to end: `veteran serve` as a process follows `models promote` and
`models rollback` run from other processes within 2 s, with no failed request; a bad file is
refused and the old config keeps serving; SIGHUP reloads; cheap mistakes are reported before
anything slow starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import register_model, write_workspace
from veteran.testing.server import free_port, wait_http
from veteran.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
FOLLOW_WITHIN = 2.0  # seconds: the promise for every running gateway

CONFIG = """
[providers.m]
kind = "mock"
[providers.loc]
kind = "local"  # owned models (the test stand-in: tests/live_cli.py)

[functions.triage.variants.strong]
model = "m/strong"
weight = 3
[functions.triage.variants.spare]
model = "m/spare"
weight = 1
"""


def veteran(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.live_cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


@contextmanager
def serving(ws: Workspace, port: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.live_cli", "serve", "-w", str(ws.path), "--port",
         str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, "veteran serve", 60)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class Traffic:
    """Requests to `triage`, one after another in a thread: (time answered, variant, status)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.seen: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                r = client.post(self.url, json={
                    "model": "triage", "messages": [{"role": "user", "content": "hi"}]})
                self.seen.append((time.monotonic(), r.headers.get("x-veteran-variant", ""),
                                  r.status_code))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def variants_after(self, t: float) -> set[str]:
        return {variant for at, variant, _ in self.seen if at > t}

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.01)


def test_promote_and_rollback_reach_a_running_gateway_within_two_seconds(
        tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    model = register_model(ws).id
    port = free_port()
    with serving(ws, port), Traffic(port) as traffic:
        traffic.wait_for(20)
        assert traffic.variants_after(0) <= {"strong", "spare"}

        promoted = veteran("models", "promote", "-w", str(ws.path), "triage", model,
                           "--weight", "1", "--skip-gate")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        assert "gateways on this store follow within 2 s" in promoted.stdout
        done = time.monotonic()
        time.sleep(FOLLOW_WITHIN + 0.5)
        assert traffic.variants_after(done + FOLLOW_WITHIN) == {model}

        rolled = veteran("models", "rollback", "-w", str(ws.path), "triage")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        done = time.monotonic()
        time.sleep(FOLLOW_WITHIN + 0.5)
        after = traffic.variants_after(done + FOLLOW_WITHIN)
        assert after and model not in after and after <= {"strong", "spare"}
    statuses = {status for _, _, status in traffic.seen}
    assert statuses == {200}, "a request failed while the config changed"
    assert len(traffic.seen) > 50


def test_a_bad_file_is_refused_and_sighup_reloads_a_good_one(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    def variant() -> str:
        r = httpx.post(url, json={"model": "triage",
                                  "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        return r.headers["x-veteran-variant"]

    with serving(ws, port) as proc:
        good = ws.config_path.read_text()
        # A typo: the file watcher sees it, refuses it, and the running config keeps serving.
        ws.config_path.write_text(good.replace('weight = 3', 'wieght = 3'))
        refused = veteran("reload", "-w", str(ws.path))
        assert refused.returncode == 2 and "wieght" in refused.stderr
        time.sleep(FOLLOW_WITHIN)
        assert {variant() for _ in range(20)} == {"strong", "spare"}

        # A good edit, then SIGHUP: only "spare" is served from then on.
        ws.config_path.write_text(good.replace("weight = 3", "weight = 0"))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + FOLLOW_WITHIN
        while time.monotonic() < deadline and variant() != "spare":
            time.sleep(0.05)
        assert {variant() for _ in range(20)} == {"spare"}
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert f"veteran serving on http://127.0.0.1:{port}" in out  # where, once it listens
    assert "config not reloaded" in out and "wieght" in out
    assert "now serving config version" in out


def test_a_busy_port_and_a_missing_key_are_reported_before_anything_loads(
        tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = veteran("serve", "-w", str(ws.path), "--port", str(port))
    assert busy.returncode != 0
    assert f"cannot serve on 127.0.0.1:{port}" in busy.stdout + busy.stderr

    keyed = write_workspace(tmp_path / "keyed", CONFIG + """
[providers.vendor]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "VETERAN_TEST_NO_SUCH_KEY"
""")
    os.environ.pop("VETERAN_TEST_NO_SUCH_KEY", None)
    missing = veteran("serve", "-w", str(keyed.path), "--port", str(free_port()))
    assert missing.returncode != 0
    out = missing.stdout + missing.stderr
    assert "environment variable VETERAN_TEST_NO_SUCH_KEY is not set" in out
    assert "Started server process" not in out  # refused before uvicorn started anything


@pytest.mark.parametrize("edit", ["by hand"])
def test_an_edit_by_hand_is_followed_without_a_signal(tmp_path: Path, edit: str) -> None:
    ws = write_workspace(tmp_path / "ws", CONFIG)
    port = free_port()
    with serving(ws, port), Traffic(port) as traffic:
        traffic.wait_for(10)
        ws.config_path.write_text(ws.config_path.read_text().replace("weight = 1", "weight = 0"))
        done = time.monotonic()
        time.sleep(FOLLOW_WITHIN + 0.5)
        assert traffic.variants_after(done + FOLLOW_WITHIN) == {"strong"}
    assert {status for _, _, status in traffic.seen} == {200}
