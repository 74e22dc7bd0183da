"""`POST /v1/policy/test`: what the rules do to a request, for the caller's own key (its team
and key id, never ones the body names); strict input checks. In-process through the ASGI app,
and through a real gateway on loopback with keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_policy import CONFIG, REFUSED, SECRET
from tests.conftest import in_process, serve, write_workspace
from veteran.access import create_key
from veteran.store import Store, TrajectoryFilter
from veteran.workspace import Workspace

PATH = "/v1/policy/test"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "customers.txt").write_text("Hooli\n", encoding="utf-8")
    return write_workspace(tmp_path / "ws", CONFIG.format())


def with_gateway(ws: Workspace, test: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def run() -> None:
        async with in_process(ws) as (http, _):
            await test(http)

    asyncio.run(run())


def test_the_answer_names_findings_rules_route_and_what_the_provider_sees(
        ws: Workspace) -> None:
    async def test(http: httpx.AsyncClient) -> None:
        response = await http.post(PATH, json={
            "text": "Ask jane.doe@example.com whether Hooli paid ORD-123456.",
            "model": "support"})
        assert response.status_code == 200, response.text
        found = response.json()
        assert {(f["entity"], f["text"]) for f in found["findings"]} >= {
            ("email", "jane.doe@example.com"), ("customer", "Hooli"),
            ("order_id", "ORD-123456")}
        assert [d["rule"] for d in found["decisions"]] == ["orders-hidden", "redact"]
        assert found["header"] == "orders-hidden=redact, redact=redact:provider"
        assert found["route"] == {"provider": "vendor", "model": "gpt-x", "variant": "vendor"}
        assert found["provider_sees"]["messages"][-1]["content"] == (
            "Ask <EMAIL_1> whether <CUSTOMER_1> paid <ORDER_ID_1>.")
        assert "jane.doe@example.com" not in str(found["stored"])

        messages = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Where is my parcel?"}]
        vip = (await http.post(PATH, json={"messages": messages, "model": "support",
                                           "tags": {"tier": "vip"}})).json()
        assert vip["header"] == "vip-onprem=route:onprem"
        assert vip["provider_sees"]["messages"][0] == {"role": "system", "content": "Be brief."}
        refused = (await http.post(PATH, json={"text": f"key {SECRET}"})).json()
        assert refused["header"] == "no-secrets=refuse"
        assert refused["refused"] == REFUSED

    with_gateway(ws, test)
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        assert store.count(TrajectoryFilter()) == 0  # a test stores nothing
    finally:
        store.close()


@pytest.mark.parametrize(("body", "param", "message"), [
    ({}, "text", "give exactly one of `text` and `messages`"),
    ({"text": "a", "messages": [{"role": "user", "content": "a"}]}, "text", "exactly one"),
    ({"text": ""}, "text", "`text` must be a non-empty string"),
    ({"text": 5}, "text", "`text` must be a non-empty string"),
    ({"messages": []}, "messages", "`messages` must be a non-empty list"),
    ({"messages": [{"role": "robot", "content": "a"}]}, "messages[0].role", "must be one of"),
    ({"text": "a", "model": 3}, "model", "`model` must be a function name"),
    ({"text": "a", "tags": {"tier": 1}}, "tags", "`tags` must be an object of string values"),
    ({"text": "a", "tags": {"a b": "c"}}, "tags", "tag key 'a b' must match"),
    ({"text": "a", "team": "legal"}, "team", "unknown fields: team"),
    ({"text": "a", "key_id": "k"}, "key_id", "unknown fields: key_id"),
])
def test_bad_input_is_a_400_saying_why(ws: Workspace, body: dict[str, Any], param: str,
                                       message: str) -> None:
    async def test(http: httpx.AsyncClient) -> None:
        response = await http.post(PATH, json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == param and message in error["message"]

    with_gateway(ws, test)


def test_an_unknown_model_is_a_404(ws: Workspace) -> None:
    async def test(http: httpx.AsyncClient) -> None:
        response = await http.post(PATH, json={"text": "a", "model": "nowhere/x"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"
        assert (await http.post(PATH, content=b"[1]")).status_code == 400

    with_gateway(ws, test)


def test_on_a_real_gateway_the_rules_see_the_keys_own_team(ws: Workspace) -> None:
    """With keys: an app key of team `legal` gets the legal rule, another team's does not, a
    viewer is refused (403) and a request without a key is 401."""
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        legal = create_key(store, team="legal", role="app")[1]
        sales = create_key(store, team="sales", role="app")[1]
        viewer = create_key(store, team="legal", role="viewer")[1]
    finally:
        store.close()
    body = {"text": "Review this contract clause.", "model": "notes"}
    with serve(ws) as server, httpx.Client(base_url=server.url, timeout=20) as http:
        def post(key: str | None) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return http.post(PATH, json=body, headers=headers)

        answer = post(legal)
        assert answer.status_code == 200, answer.text
        assert answer.json()["header"] == "legal-handoff=handoff:onprem/assistant"
        assert post(sales).json()["header"] is None
        assert post(viewer).status_code == 403
        assert post(None).status_code == 401
