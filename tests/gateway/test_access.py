"""API keys, roles and teams against a real gateway on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import BASE_CONFIG, serve, write_workspace
from veteran.access import create_key, revoke_key
from veteran.access.auth import RELOAD_INTERVAL
from veteran.gateway import Gateway, create_app
from veteran.gateway.server import UVICORN_OPTIONS
from veteran.store import Store
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread
from veteran.workspace import Workspace

BODY = {"model": "triage", "messages": [{"role": "user", "content": "hello"}]}


class Keys:
    """Keys made in the gateway's store, as `veteran keys create` would."""

    def __init__(self, database_url: str) -> None:
        self.store = Store.open(database_url)

    def make(self, team: str, role: str) -> str:
        return create_key(self.store, team=team, role=role)[1]


@pytest.fixture
def workspace(tmp_path: Path, upstream: FakeUpstream) -> Workspace:
    return write_workspace(tmp_path / "ws", BASE_CONFIG.format(upstream=upstream.url))


@pytest.fixture
def keys(database_url: str) -> Iterator[Keys]:
    made = Keys(database_url)
    yield made
    made.store.close()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def chat(http: httpx.Client, headers: dict[str, str], **extra: Any) -> httpx.Response:
    return http.post("/v1/chat/completions", headers=headers, json={**BODY, **extra})


def test_a_gateway_with_keys_wants_one_on_every_endpoint_but_healthz(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    keys.make("a", "admin")
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        for method, path in [("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                             ("POST", "/v1/feedback"), ("GET", "/v1/trajectories"),
                             ("GET", "/v1/trajectories/x")]:
            for headers in ({}, bearer("vk_" + "x" * 43), {"x-api-key": "wrong"},
                            {"authorization": "Basic dXNlcjpwdw=="}):
                response = http.request(method, path, headers=headers, json=BODY)
                assert response.status_code == 401, (method, path, headers)
                error = response.json()["error"]
                assert error["type"] == "authentication_error"
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/healthz").status_code == 200
        assert http.get("/v1/trajectories").json()["error"]["code"] == "missing_api_key"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("app", {"chat", "models", "feedback"}),
        ("viewer", {"models", "list", "get"}),
        ("admin", {"chat", "models", "feedback", "list", "get", "audit"}),
    ],
)
def test_each_role_may_do_what_it_may_do(
    workspace: Workspace, database_url: str, keys: Keys, role: str, allowed: set[str]
) -> None:
    admin = bearer(keys.make("a", "admin"))
    key = keys.make("a", role)
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        tid = chat(http, admin).headers["x-veteran-trajectory-id"]
        # the same key in either header, with the same outcome
        for headers in (bearer(key), {"x-api-key": key}):
            requests = {
                "chat": lambda h=headers: chat(http, h),
                "models": lambda h=headers: http.get("/v1/models", headers=h),
                "feedback": lambda h=headers: http.post("/v1/feedback", headers=h, json={
                    "trajectory_id": tid, "metric": "resolved", "value": True}),
                "list": lambda h=headers: http.get("/v1/trajectories", headers=h),
                "get": lambda h=headers: http.get(f"/v1/trajectories/{tid}", headers=h),
                "audit": lambda h=headers: http.get("/v1/audit", headers=h),
            }
            for name, send in requests.items():
                response = send()
                if name in allowed:
                    assert response.status_code == 200, (name, response.text)
                else:
                    assert response.status_code == 403, (name, response.text)
                    assert response.json()["error"]["type"] == "permission_error"
                    assert key not in response.text


def test_conflicting_headers_are_refused(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    key, other = keys.make("a", "app"), keys.make("a", "app")
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        assert chat(http, {**bearer(key), "x-api-key": key}).status_code == 200
        refused = chat(http, {**bearer(key), "x-api-key": other})
        assert refused.status_code == 401
        assert key not in refused.text and other not in refused.text


def test_the_openai_sdk_sends_its_key(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    app, viewer = keys.make("a", "app"), keys.make("a", "viewer")
    with serve(workspace, database_url) as server:
        def client(key: str) -> openai.OpenAI:
            return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)

        with client(app) as c:
            answer = c.chat.completions.create(
                model="triage", messages=[{"role": "user", "content": "hi"}]
            )
            assert answer.choices[0].message.content == "echo: hi"
        with client("vk_not-a-key") as c, pytest.raises(openai.AuthenticationError):
            c.models.list()
        with client(viewer) as c:
            assert c.models.list().data
            with pytest.raises(openai.PermissionDeniedError):
                c.chat.completions.create(
                    model="triage", messages=[{"role": "user", "content": "hi"}]
                )


def test_teams_see_only_their_own_trajectories_and_feedback(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    app_a, view_a = bearer(keys.make("a", "app")), bearer(keys.make("a", "viewer"))
    app_b, view_b = bearer(keys.make("b", "app")), bearer(keys.make("b", "viewer"))
    admin_b = bearer(keys.make("b", "admin"))
    episode = {"x-veteran-episode-id": "run-1"}  # both teams happen to pick the same id
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        a_id = chat(http, {**app_a, **episode}).headers["x-veteran-trajectory-id"]
        b_id = chat(http, {**app_b, **episode}).headers["x-veteran-trajectory-id"]

        mine = http.get(f"/v1/trajectories/{a_id}", headers=view_a)
        assert mine.status_code == 200 and mine.json()["team"] == "a"
        assert mine.json()["key_id"] is not None
        for headers in (view_b, admin_b):
            hidden = http.get(f"/v1/trajectories/{a_id}", headers=headers)
            assert hidden.status_code == 404
            unknown = http.get("/v1/trajectories/no-such-id", headers=headers)
            assert hidden.json()["error"]["message"].replace(a_id, "?") == (
                unknown.json()["error"]["message"].replace("no-such-id", "?")
            )
        listed = http.get("/v1/trajectories", headers=view_b).json()["data"]
        assert [t["id"] for t in listed] == [b_id]
        assert [t["id"] for t in http.get("/v1/trajectories", headers=view_a).json()["data"]] == [
            a_id
        ]

        # feedback: another team's trajectory or episode is a 404, and nothing is stored
        foreign = http.post("/v1/feedback", headers=app_b, json={
            "trajectory_id": a_id, "metric": "resolved", "value": False})
        assert foreign.status_code == 404
        ok = http.post("/v1/feedback", headers=app_a, json={
            "trajectory_id": a_id, "metric": "resolved", "value": True})
        assert ok.status_code == 200
        assert http.post("/v1/feedback", headers=app_b, json={
            "episode_id": "run-1", "metric": "session_ok", "value": False}).status_code == 200
        assert http.post("/v1/feedback", headers=app_b, json={
            "episode_id": "run-x", "metric": "session_ok", "value": False}).status_code == 404

        seen_a = http.get(f"/v1/trajectories/{a_id}", headers=view_a).json()["feedback"]
        assert [(f["metric"], f["value"]) for f in seen_a] == [("resolved", True)]
        seen_b = http.get(f"/v1/trajectories/{b_id}", headers=view_b).json()["feedback"]
        assert [(f["metric"], f["value"]) for f in seen_b] == [("session_ok", False)]
        by_metric = http.get("/v1/trajectories?metric=session_ok", headers=view_a).json()
        assert by_metric["data"] == []

    # the local CLI and library reads are unscoped
    store = Store.open(database_url)
    try:
        assert store.trajectory(a_id).team == "a"
        assert store.trajectory(b_id).team == "b"
        assert len(store.trajectory(a_id).feedback or []) == 2  # its own, and b's on "run-1"
    finally:
        store.close()


def test_open_mode_then_keys_made_while_serving(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        # open: no key needed; a client's placeholder key is ignored; no team
        first = chat(http, {})
        assert first.status_code == 200
        assert chat(http, bearer("unused")).status_code == 200
        tid = first.headers["x-veteran-trajectory-id"]
        assert http.get(f"/v1/trajectories/{tid}").json()["team"] is None

        key = keys.make("a", "app")  # `veteran keys create` while the gateway runs
        made = chat(http, bearer(key))
        assert made.status_code == 200  # works at once, no restart
        got = http.get(f"/v1/trajectories/{made.headers['x-veteran-trajectory-id']}",
                       headers=bearer(keys.make("a", "viewer")))
        assert got.json()["team"] == "a"
        # the first key ended open mode
        assert chat(http, {}).status_code == 401
        assert chat(http, bearer("unused")).status_code == 401

        second = keys.make("b", "app")
        assert chat(http, {"x-api-key": second}).status_code == 200

        record = next(k for k in keys_list(keys) if k.team == "a" and k.role == "app")
        revoke_key(keys.store, record.id)
        deadline = time.monotonic() + RELOAD_INTERVAL * 3
        while chat(http, bearer(key)).status_code == 200:
            assert time.monotonic() < deadline, "a revoked key still works"
            time.sleep(0.1)
        assert chat(http, bearer(key)).status_code == 401
        assert chat(http, {"x-api-key": second}).status_code == 200


def keys_list(keys: Keys) -> list[Any]:
    from veteran.access import list_keys

    return list_keys(keys.store)


def test_a_non_loopback_address_needs_keys(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    """The app is told it serves on 0.0.0.0 (the socket stays on loopback for the test)."""
    config = workspace.load_config()
    store = Store.open(database_url)

    def served_as(host: str) -> ServerThread:
        app = create_app(Gateway(config, store), host=host)
        return ServerThread(app, startup_timeout=20, **UVICORN_OPTIONS)

    async def startup(app: Any) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "lifespan.startup"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)  # returns when startup fails
        return sent

    try:
        refused = asyncio.run(startup(create_app(Gateway(config, store), host="0.0.0.0")))
        assert refused[0]["type"] == "lifespan.startup.failed"
        assert "refusing to serve on 0.0.0.0 without API keys" in refused[0]["message"]

        key = keys.make("a", "app")
        with served_as("0.0.0.0") as server, httpx.Client(base_url=server.url) as http:
            assert chat(http, {}).status_code == 401  # never open beyond loopback
            assert chat(http, bearer(key)).status_code == 200
    finally:
        store.close()


def test_the_anthropic_surface_takes_keys_and_answers_refusals_in_its_own_shape(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    import anthropic

    key = keys.make("red", "app")
    viewer = keys.make("red", "viewer")
    with serve(workspace, database_url) as server:
        def ask(api_key: str) -> Any:
            with anthropic.Anthropic(base_url=server.url, api_key=api_key, max_retries=0) as c:
                return c.messages.create(
                    model="triage", max_tokens=50, messages=[{"role": "user", "content": "hi"}])

        assert ask(key).content[0].type == "text"
        with pytest.raises(anthropic.AuthenticationError) as unknown:
            ask("vk_" + "y" * 43)
        assert unknown.value.body["type"] == "error"  # type: ignore[index]
        assert unknown.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            ask(viewer)
        assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]


def test_admin_keys_read_the_audit_chain(
    workspace: Workspace, database_url: str, keys: Keys
) -> None:
    admin = bearer(keys.make("a", "admin"))
    keys.make("b", "app")
    keys.store.switch_provider("up", disabled=True, reason="drill", actor="ops@host")
    keys.store.switch_provider("up", disabled=False, actor="ops@host")
    with serve(workspace, database_url) as server, httpx.Client(base_url=server.url) as http:
        page = http.get("/v1/audit", headers=admin, params={"limit": 3}).json()
        assert [(e["seq"], e["action"]) for e in page["data"]] == [
            (5, "config.publish"), (4, "provider.enable"), (3, "provider.disable")]
        assert page["data"][0]["details"]["source"] == "serve"  # the gateway published its file
        assert page["has_more"] is True and page["data"][2]["details"] == {"reason": "drill"}
        rest = http.get("/v1/audit", headers=admin, params={"before": 3}).json()
        assert [e["action"] for e in rest["data"]] == ["key.create", "key.create"]
        assert rest["has_more"] is False and rest["data"][-1]["prev"] == "0" * 64
        only = http.get("/v1/audit", headers=admin, params={"action": "key.create"}).json()
        assert [e["target"] for e in only["data"]] == [e["target"] for e in rest["data"]]
        for params in ({"before": "0"}, {"limit": "x"}, {"who": "me"}):
            response = http.get("/v1/audit", headers=admin, params=params)
            assert response.status_code == 400, params
            assert response.json()["error"]["param"] in params
