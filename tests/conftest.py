"""Shared fixtures: databases (SQLite always, PostgreSQL when VETERAN_TEST_POSTGRES_URL is set),
workspaces, and a real gateway served on loopback."""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import sqlalchemy as sa

from veteran.gateway import UVICORN_OPTIONS, Gateway, create_app, running
from veteran.models import Lineage, ModelRecord, Registry
from veteran.serving import compose
from veteran.store import Store
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread
from veteran.train.recipes import RECIPES
from veteran.train.types import ModelKind, TrainResult
from veteran.workspace import Workspace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
POSTGRES_URL = os.environ.get("VETERAN_TEST_POSTGRES_URL")
PG_SCHEMA = "veteran_test"


def _fresh_postgres() -> str:
    assert POSTGRES_URL
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{PG_SCHEMA}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/veteran.db"
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set VETERAN_TEST_POSTGRES_URL (.ci/run does)")
    return _fresh_postgres()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


BASE_CONFIG = """
[providers.up]
kind = "openai"
base_url = "{upstream}"
read_timeout = 2
[providers.up.models.gpt-x]
input_per_mtok = 1.0
output_per_mtok = 2.0

[providers.m]
kind = "mock"

[functions.triage]
system = "You route support tickets."
[functions.triage.variants.big]
model = "up/gpt-x"
weight = 1.0
[functions.triage.variants.small]
model = "up/gpt-small"
weight = 0.0
params = {{ temperature = 0.1 }}

[metrics.resolved]
type = "boolean"
[metrics.score]
type = "float"
[metrics.queue]
type = "label"
labels = ["billing", "tech"]
[metrics.note]
type = "comment"
[metrics.fix]
type = "demonstration"
[metrics.session_ok]
type = "boolean"
level = "episode"
"""


def write_workspace(path: Path, text: str) -> Workspace:
    path.mkdir(parents=True, exist_ok=True)
    (path / "veteran.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return Workspace(path)


@asynccontextmanager
async def in_process(workspace: Workspace, *, timeout: float = 30
                     ) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    """The gateway's ASGI app in this process, started as its lifespan would, with a client."""
    config = workspace.load_config()
    store = Store.open(workspace.database_url(config))
    try:
        async with running(config, store, workspace) as gateway:
            app = create_app(gateway)
            await app.access.start()
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://gateway", timeout=timeout) as http:
                    yield http, gateway
            finally:
                await app.access.close()
    finally:
        store.close()


@contextmanager
def serve(workspace: Workspace, database_url: str | None = None) -> Iterator[ServerThread]:
    config = workspace.load_config()
    store = Store.open(database_url or workspace.database_url(config))
    gateway = Gateway(config, store, spool_dir=workspace.path / "spool",
                      memory_dir=workspace.path / "memory", workspace=workspace)
    compose(gateway, workspace)  # as `veteran serve` does
    try:
        with ServerThread(create_app(gateway), **UVICORN_OPTIONS) as server:
            server.gateway = gateway  # type: ignore[attr-defined]
            yield server
    finally:
        store.close()


@pytest.fixture
def client(gateway_server: ServerThread) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK pointed at `gateway_server`."""
    with openai.OpenAI(
        base_url=gateway_server.url + "/v1", api_key="unused", max_retries=0, timeout=20
    ) as c:
        yield c


@pytest.fixture
def http(gateway_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_server.url, timeout=20) as c:
        yield c


@pytest.fixture
def gateway_server(
    tmp_path: Path, upstream: FakeUpstream, database_url: str
) -> Iterator[ServerThread]:
    """The gateway with BASE_CONFIG in front of a fake upstream, on the parametrized database."""
    workspace = write_workspace(tmp_path / "ws", BASE_CONFIG.format(upstream=upstream.url))
    with serve(workspace, database_url) as server:
        yield server




def register_model(ws: Workspace, *, function: str = "triage", kind: ModelKind = "causal-lm",
                   recipe: str = "sft-lora", base_model: str | None = None) -> ModelRecord:
    """A model in the workspace's registry as training leaves it (no weights: for promotion,
    rollback and removal, which only read its record)."""
    registry = Registry(ws.path)
    staged = registry.stage(function, recipe, {"function": function, "recipe": recipe})
    result = TrainResult(kind=kind, base_model=base_model, metrics={"train_loss": 0.1})
    lineage = Lineage.current(dataset={"content_hash": "x"}, recipe=recipe, params={},
                              base_model=base_model, seed=0)
    return registry.register(staged, result, lineage)


@pytest.fixture
def fake_recipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`--recipe fake`: tests.train.test_job's FakeRecipe, with its record of calls emptied."""
    from tests.train.test_job import FakeRecipe

    monkeypatch.setitem(RECIPES, "fake", "tests.train.test_job:FakeRecipe")
    FakeRecipe.jobs, FakeRecipe.ran, FakeRecipe.stop_at = [], [], None
    FakeRecipe.refuse_at, FakeRecipe.checked = None, []
    yield


def in_threads(work: Callable[[int], None], count: int) -> list[BaseException]:
    """Run `work(0)` ... `work(count - 1)` in as many threads at once; what they raised."""
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # noqa: BLE001 (returned to the test)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
