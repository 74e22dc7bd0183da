"""Secrets stay out: API keys and provider keys never reach the store, the logs, exports or error
messages; a gateway never serves beyond loopback without keys."""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.conftest import BASE_CONFIG, serve, write_workspace
from veteran.access import check_bind, create_key
from veteran.cli import cli
from veteran.errors import VeteranError
from veteran.serving import serve as run_server
from veteran.store import Store
from veteran.store.schema import metadata
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import free_port
from veteran.workspace import Workspace

PROVIDER_ENV = "VETERAN_TEST_UPSTREAM_KEY"


def test_keys_never_reach_the_store_logs_exports_or_errors(
    tmp_path: Path, upstream: FakeUpstream, database_url: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    provider_key = "sk-upstream-" + secrets.token_urlsafe(24)
    monkeypatch.setenv(PROVIDER_ENV, provider_key)
    monkeypatch.setenv("VETERAN_DATABASE_URL", database_url)
    config = BASE_CONFIG.format(upstream=upstream.url).replace(
        "read_timeout = 2", f'read_timeout = 2\napi_key_env = "{PROVIDER_ENV}"'
    )
    ws = write_workspace(tmp_path / "ws", config)
    store = Store.open(database_url)
    app_key = create_key(store, team="a", role="app")[1]
    viewer_key = create_key(store, team="a", role="viewer")[1]
    unknown = "vk_" + secrets.token_urlsafe(32)
    secret_values = [provider_key, app_key, viewer_key, unknown]
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    with serve(ws, database_url) as server, httpx.Client(base_url=server.url) as http:
        def send(method: str, path: str, headers: dict[str, str], **kwargs: object) -> int:
            response = http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
            seen.append(response.text)
            seen.extend(f"{k}: {v}" for k, v in response.headers.items())
            return response.status_code

        def chat(headers: dict[str, str], text: str = "hello", **extra: object) -> int:
            return send("POST", "/v1/chat/completions", headers, json={
                "model": "triage", "messages": [{"role": "user", "content": text}], **extra})

        app = {"authorization": f"Bearer {app_key}"}
        assert chat(app) == 200
        assert chat({"x-api-key": app_key}, stream=True) == 200
        assert chat(app, "fault:status=401") == 502  # the provider refused our credentials
        assert chat(app, "fault:status=500") == 502
        assert chat(app, "fault:status=400") == 400
        assert chat({"authorization": f"Bearer {unknown}"}) == 401
        assert chat({"x-api-key": unknown}) == 401
        assert chat({"authorization": f"Basic {app_key}"}) == 401
        assert chat({"authorization": f"Bearer {app_key}", "x-api-key": unknown}) == 401
        assert chat({"authorization": f"Bearer {viewer_key}"}) == 403
        assert chat(app, "x", model="nope") == 404
        assert send("GET", "/v1/trajectories", {"x-api-key": viewer_key}) == 200
        tid = http.get("/v1/trajectories", headers={"x-api-key": viewer_key}).json()["data"][0]
        assert send("GET", f"/v1/trajectories/{tid['id']}", {"x-api-key": viewer_key}) == 200
        assert send("POST", "/v1/feedback", app, json={
            "trajectory_id": tid["id"], "metric": "resolved", "value": True}) == 200
        assert send("POST", "/v1/feedback", {"x-api-key": unknown}, json={}) == 401
    store.close()

    exported = CliRunner().invoke(cli, ["trajectories", "export", "-w", str(ws.path)])
    assert exported.exit_code == 0 and exported.stdout.count("\n") >= 5
    listed = CliRunner().invoke(cli, ["keys", "list", "-w", str(ws.path), "--json"])
    assert listed.exit_code == 0

    rows: list[str] = []
    reopened = Store.open(database_url)
    try:
        with reopened.engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows.extend(str(tuple(row)) for row in conn.execute(sa.select(table)))
    finally:
        reopened.close()
    # 2 keys, 5 trajectories (3 of them failed calls), 1 feedback, the config served, and on
    # the audit chain the 2 keys made, the config published and the export
    assert len(rows) == 13
    files = b""
    if database_url.startswith("sqlite"):
        db = Path(database_url.removeprefix("sqlite:///"))
        files = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        assert len(files) > 10_000
    output = capfd.readouterr()
    places = {
        "responses": "\n".join(seen), "log records": caplog.text, "stdout/stderr": output.out +
        output.err, "export": exported.stdout, "keys list": listed.stdout,
        "store rows": "\n".join(rows),
    }
    for value in secret_values:
        for place, text in places.items():
            assert value not in text, f"a key reached the {place}"
            assert value[:20] not in text, f"part of a key reached the {place}"
        assert value.encode() not in files, "a key reached the database files"
    assert "unexpected error" not in caplog.text


def test_a_non_loopback_bind_without_keys_is_refused(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VETERAN_DATABASE_URL", raising=False)
    ws = write_workspace(tmp_path / "ws", BASE_CONFIG.format(upstream=upstream.url))
    with pytest.raises(VeteranError, match="refusing to serve on 0.0.0.0 without API keys"):
        run_server(ws, host="0.0.0.0", port=free_port())
    # `veteran serve` says so and exits, binding nothing
    done = subprocess.run(
        [sys.executable, "-m", "veteran.cli", "serve", "-w", str(ws.path), "--host", "0.0.0.0",
         "--port", str(free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in done.stderr
    assert "veteran keys create" in done.stderr
    # config's server.host counts the same as --host
    ws_any = write_workspace(tmp_path / "ws2", BASE_CONFIG.format(upstream=upstream.url)
                             + '\n[server]\nhost = "::"\n')
    with pytest.raises(VeteranError, match="refusing to serve on ::"):
        run_server(ws_any)

    store = Store.open(Workspace(ws.path).database_url(ws.load_config()))
    try:
        check_bind(store, "127.0.0.1")  # loopback: fine without keys
        create_key(store, team="ops", role="admin")
        check_bind(store, "0.0.0.0")  # with a key: allowed
    finally:
        store.close()
