"""`Gateway`: what a running server holds (config, providers, router, store, capture writer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veteran.config import Config
from veteran.gateway.fewshot import Fewshot, FewshotCaller, wanted
from veteran.gateway.recall import Recall
from veteran.gateway.resilience import Caller
from veteran.gateway.routing import Router
from veteran.providers.base import ModelInfo, Provider
from veteran.providers.registry import provider_class
from veteran.store import CaptureWriter, Store
from veteran.types import TrajectoryRecord

if TYPE_CHECKING:
    from veteran.workspace import Workspace

log = logging.getLogger("veteran.gateway")


class Gateway:
    def __init__(self, config: Config, store: Store, *, spool_dir: Path | None = None,
                 memory_dir: Path | None = None, workspace: Workspace | None = None) -> None:
        """`spool_dir`: where captures wait while the store is unavailable (the workspace's
        `spool/` under `veteran serve`); without it they are dropped and counted.
        `memory_dir`: where search indexes are cached (the workspace's `memory/`); without it
        they are rebuilt from the store when first used.
        `workspace`: where `[canaries]` suites live; given (`veteran serve`), the gateway runs
        them on their schedule in a background task (evals/canary.py). Fewshot models are read
        from its `models/` (else from that of the folder the config was read from)."""
        self.config = config
        self.store = store
        self.providers: dict[str, Provider] = {
            name: provider_class(settings.kind)(name, settings)
            for name, settings in config.providers.items()
        }
        self.router = Router(config, self.providers)
        self.memory_dir = memory_dir
        self.recall = Recall(config, store, memory_dir)
        self.caller = Caller(self.providers, disabled={})
        self.fewshot: Fewshot | None = None
        if wanted(config):  # variants with fewshot: their examples are put in by the caller
            folder = workspace.path if workspace is not None else config.folder
            self.fewshot = Fewshot(config, self.recall, folder / "models" if folder else None)
            self.caller = FewshotCaller(self.providers, {}, self.fewshot)
        self.switch_poll_interval = 1.0  # seconds: how soon `veteran providers disable` applies
        self._switch_poller: asyncio.Task[None] | None = None
        self.workspace = workspace
        self._canaries: asyncio.Task[None] | None = None
        self.writer: CaptureWriter = store.writer(
            batch_max=config.capture.batch_max, spool_dir=spool_dir,
            spool_max_bytes=config.capture.spool_max_bytes,
        )
        self.durable = config.capture.durable
        self.max_body = config.server.max_body_bytes

    async def start(self) -> None:
        await self.refresh_switches()
        await self.recall.start()
        if self.fewshot is not None:
            await self.fewshot.start()  # a missing model is a ConfigError: refuse to start
        self.writer.start()
        started: list[Provider] = []
        try:
            for provider in self.providers.values():
                await provider.start()
                started.append(provider)
        except BaseException:
            for provider in started:
                await provider.close()
            await self.writer.close()
            raise
        self._switch_poller = asyncio.create_task(self._poll_switches(), name="veteran-switches")
        if self.workspace is not None and self.config.canaries.suites:
            from veteran.evals.canary import canary_loop  # the runner imports this module

            self._canaries = asyncio.create_task(
                canary_loop(self.workspace, self.config, self.store), name="veteran-canaries")

    async def refresh_switches(self) -> None:
        """Read which providers an operator switched off (the store is the source of truth)."""
        disabled = await asyncio.to_thread(self.store.disabled_providers)
        if disabled != self.caller.disabled:
            for name in disabled.keys() - self.caller.disabled.keys():
                log.warning("provider %s switched off by an operator", name)
            for name in self.caller.disabled.keys() - disabled.keys():
                log.warning("provider %s switched back on", name)
            self.caller.disabled = disabled

    async def _poll_switches(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.switch_poll_interval)
            try:
                await self.refresh_switches()
            except Exception as exc:  # the store is away: keep the last known switches
                if not failing:
                    log.warning("reading provider switches failed (%s); keeping the last known "
                                "ones until the store answers", type(exc).__name__)
                failing = True
            else:
                failing = False

    async def close(self) -> None:
        if self._canaries is not None:  # a canary run in flight is cancelled (stored: failed)
            self._canaries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._canaries
            self._canaries = None
        if self._switch_poller is not None:
            self._switch_poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._switch_poller
            self._switch_poller = None
        for provider in self.providers.values():
            try:
                await provider.close()
            except Exception:
                log.exception("closing provider %s failed", provider.name)
        await self.writer.close()

    async def capture(self, record: TrajectoryRecord) -> None:
        """Hand the trajectory to the writer; in durable mode, return once it is committed."""
        if self.durable:
            await self.writer.submit(record)
        else:
            self.writer.submit_nowait(record)

    def capture_nowait(self, record: TrajectoryRecord) -> None:
        self.writer.submit_nowait(record)


def cost(prices: ModelInfo | None, usage: dict[str, Any] | None) -> float | None:
    """Cost of one call from per-million-token prices, when the config gives them."""
    if prices is None or usage is None:
        return None
    if prices.input_per_mtok is None and prices.output_per_mtok is None:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    per_mtok = prompt * (prices.input_per_mtok or 0) + completion * (prices.output_per_mtok or 0)
    return per_mtok / 1e6
