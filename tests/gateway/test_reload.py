"""`Gateway.reload` and the live config follower, in process: what a reload keeps, what it
replaces, that calls in flight finish on what they started with, that every gateway on a store
follows a published version, and that a config that cannot be served is refused whole."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import serve, write_workspace
from veteran.access.keys import Limits
from veteran.access.limits import Limiter
from veteran.config import load_config, parse_config_text
from veteran.gateway import Gateway, publish, running
from veteran.providers.base import ProviderSettings
from veteran.providers.local import LocalProvider, LocalSettings
from veteran.providers.mock import MockProvider
from veteran.store import Store
from veteran.workspace import Workspace

BASE = """
[providers.a]
kind = "mock"
reply = "from a"
[providers.b]
kind = "mock"
reply = "from b"

[functions.f.variants.one]
model = "a/m"
weight = 1
[functions.f.variants.two]
model = "b/m"
weight = 0
"""


def body(text: str = "hi") -> dict[str, Any]:
    return {"model": "f", "messages": [{"role": "user", "content": text}]}


@contextlib.asynccontextmanager
async def started(ws: Workspace, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A started gateway of `ws` over a SQLite store in `tmp_path`, closed on exit."""
    store = Store.open(f"sqlite:///{tmp_path}/veteran.db")
    gateway = Gateway.for_workspace(ws.load_config(), store, ws)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.close()
        store.close()


def swapped(text: str) -> str:
    """`text` with variant two taking the traffic from variant one."""
    one, two = 'model = "a/m"\nweight = 1', 'model = "b/m"\nweight = 0'
    assert one in text and two in text
    return text.replace(one, 'model = "a/m"\nweight = 0').replace(two, 'model = "b/m"\nweight = 1')


def reply(answer: dict[str, Any]) -> str:
    return str(answer["choices"][0]["message"]["content"])


def test_a_reload_keeps_unchanged_providers_and_swaps_the_rest(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, BASE)

    async def main() -> None:
        async with started(ws, tmp_path) as gateway:
            a, b = gateway.providers["a"], gateway.providers["b"]
            breaker = gateway.caller.breakers["a"]
            assert reply(await gateway.complete(body())) == "from a"

            text = swapped(BASE).replace('reply = "from b"', 'reply = "b, changed"')
            text += '[providers.c]\nkind = "mock"\n'
            await gateway.reload(parse_config_text(text, "veteran.toml", tmp_path))

            assert gateway.providers["a"] is a  # unchanged: not restarted
            assert gateway.caller.breakers["a"] is breaker  # its count goes on
            assert gateway.providers["b"] is not b  # changed: a new one
            assert set(gateway.providers) == {"a", "b", "c"}
            assert not gateway.unstarted  # an eager gateway started the new ones at once
            assert reply(await gateway.complete(body())) == "b, changed"

    asyncio.run(main())


def test_a_call_in_flight_finishes_on_the_provider_it_started_with(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, BASE.replace('reply = "from a"',
                                                'reply = "from a"\ndelay_ms = 300'))

    async def main() -> None:
        async with started(ws, tmp_path) as gateway:
            old = gateway.providers["a"]
            slow = asyncio.create_task(gateway.complete(body()))
            await asyncio.sleep(0.1)  # the call is at provider a now
            # a goes away entirely; b takes all the traffic
            text = BASE.split("[providers.b]")[0].replace("[providers.a]", "[providers.z]")
            text = text.replace('reply = "from a"', 'reply = "from z"')
            text += '[functions.f.variants.one]\nmodel = "z/m"\n'
            await gateway.reload(parse_config_text(text, "veteran.toml", tmp_path))
            assert "a" not in gateway.providers
            assert reply(await slow) == "from a"  # finished where it started
            assert reply(await gateway.complete(body())) == "from z"
            assert old not in gateway.providers.values()

    asyncio.run(main())


def test_a_config_whose_fewshot_model_is_missing_is_refused_whole(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, BASE)

    async def main() -> None:
        async with started(ws, tmp_path) as gateway:
            before = (gateway.config, gateway.router, gateway.providers)
            text = BASE + '[functions.f.variants.one.fewshot]\nmodel = "nosuch"\n'
            try:
                await gateway.reload(parse_config_text(text, "veteran.toml", tmp_path))
            except Exception as exc:
                assert "nosuch" in str(exc)
            else:
                raise AssertionError("a config naming a missing model was applied")
            assert (gateway.config, gateway.router, gateway.providers) == before
            assert reply(await gateway.complete(body())) == "from a"

    asyncio.run(main())


def test_settings_that_need_a_restart_are_kept_and_named(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, BASE)

    async def main() -> None:
        async with started(ws, tmp_path) as gateway:
            port = gateway.config.server.port
            text = BASE + f"[server]\nport = {port + 1}\n"
            notes = await gateway.reload(parse_config_text(text, "veteran.toml", tmp_path))
            assert gateway.config.server.port == port
            assert any("[server]" in n and "restart" in n for n in notes)

    asyncio.run(main())


def test_every_gateway_on_the_store_follows_a_published_version(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", BASE)
    url = f"sqlite:///{tmp_path}/shared.db"
    with serve(ws, url) as first, serve(ws, url) as second:
        def variants(port: int) -> set[str]:
            return {httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body())
                    .headers["x-veteran-variant"] for _ in range(5)}

        assert variants(first.port) == variants(second.port) == {"one"}
        # Another process (here: this one) publishes an edit; neither gateway is told.
        ws.config_path.write_text(swapped(ws.config_path.read_text()))
        assert load_config(ws.config_path).functions["f"].variants["two"].weight == 1
        store = Store.open(url)
        try:
            version, new = publish(ws, store, "test")
        finally:
            store.close()
        assert new
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and (
                variants(first.port) != {"two"} or variants(second.port) != {"two"}):
            time.sleep(0.05)
        assert variants(first.port) == variants(second.port) == {"two"}


def test_in_process_work_starts_only_the_providers_it_calls(tmp_path: Path) -> None:
    text = BASE + """
[providers.vendor]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "VETERAN_TEST_UNSET_KEY"
"""
    ws = write_workspace(tmp_path, text)

    async def main() -> None:
        store = Store.open(f"sqlite:///{tmp_path}/veteran.db")
        try:
            # The vendor's key is missing, but nothing here calls the vendor.
            async with running(ws.load_config(), store, ws) as gateway:
                assert set(gateway.unstarted) == {"a", "b", "vendor"}
                assert reply(await gateway.complete(body())) == "from a"
                assert set(gateway.unstarted) == {"b", "vendor"}
        finally:
            store.close()

    asyncio.run(main())


def test_a_local_provider_adopts_new_paths_keeping_loaded_models(tmp_path: Path) -> None:
    old = LocalSettings(kind="local", paths={"kept": str(tmp_path / "k"),
                                             "moved": str(tmp_path / "m1")})
    provider = LocalProvider("loc", old)
    kept, moved = object(), object()
    provider._models.update({"kept": kept, "moved": moved})  # type: ignore[dict-item]
    new = LocalSettings(kind="local", paths={"kept": str(tmp_path / "k"),
                                             "moved": str(tmp_path / "m2"),
                                             "added": str(tmp_path / "a")})
    assert provider.adopt(new)
    assert provider.settings is new and provider.config is new
    assert provider._models == {"kept": kept}  # the moved one loads again, from its new path
    assert not provider.adopt(LocalSettings(kind="local", paths=new.paths, threads=3))


def test_team_limits_follow_a_reload() -> None:
    limiter = Limiter({"support": Limits(requests_per_minute=10)})
    [bucket] = limiter.buckets("k1", "support", Limits())
    assert bucket.limits.requests_per_minute == 10
    limiter.set_teams({"support": Limits(requests_per_minute=5)})
    [bucket] = limiter.buckets("k1", "support", Limits())
    assert bucket.limits.requests_per_minute == 5
    limiter.set_teams({})
    assert limiter.buckets("k1", "support", Limits()) == ()


def test_a_call_routed_before_a_reload_removed_its_provider_still_runs(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, BASE)

    async def main() -> None:
        async with started(ws, tmp_path) as gateway:
            call = gateway.prepare(body())  # routed to provider a
            text = BASE.split("[providers.b]")[0].replace("[providers.a]", "[providers.z]")
            text += '[functions.f.variants.one]\nmodel = "z/m"\n'
            await gateway.reload(parse_config_text(text, "veteran.toml", tmp_path))
            assert "a" not in gateway.caller.breakers
            assert reply((await gateway.call(call)).response) == "from a"

    asyncio.run(main())


def test_a_provider_that_adopts_new_settings_keeps_its_breaker_with_the_new_limits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = write_workspace(tmp_path, BASE)

    def adopt(self: MockProvider, settings: ProviderSettings) -> bool:
        self.settings = settings
        return True

    monkeypatch.setattr(MockProvider, "adopt", adopt)

    async def main() -> None:
        async with started(ws, tmp_path) as gateway:
            a, breaker = gateway.providers["a"], gateway.caller.breakers["a"]
            text = BASE.replace('reply = "from a"',
                                'reply = "from a"\n[providers.a.breaker]\nfailures = 9')
            await gateway.reload(parse_config_text(text, "veteran.toml", tmp_path))
            assert gateway.providers["a"] is a and gateway.caller.breakers["a"] is breaker
            assert breaker.settings.failures == 9

    asyncio.run(main())
